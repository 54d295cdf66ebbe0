package main

import (
	"context"
	"fmt"
	"log"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// load inserts events [from, to) of org inside ClickHouse: realistic rows
// (the vocabulary of the products auditstore replaces, metadata of a few
// hundred bytes, 90 days of time) without shipping them through Go.
func load(ctx context.Context, conn driver.Conn, from, to int) {
	const chunk = 2_000_000
	for lo := from; lo < to; lo += chunk {
		hi := min(lo+chunk, to)
		q := fmt.Sprintf(`INSERT INTO events (org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id,
  actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id,
  resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at)
SELECT 'bench',
  now64(3) - toIntervalMillisecond(intHash64(number) %% 7776000000),
  generateUUIDv4(number),
  ['get-secrets','create-secret','update-secret','delete-secret','USER_LOGIN','SESSION_STARTED','api_key.create','project.update','execute','sync'][1 + number %% 10],
  concat('{"secretPath":"/apps/service-', toString(number %% 50), '/config","environment":"', ['dev','staging','prod'][1 + number %% 3],
         '","numberOfSecrets":', toString(number %% 120), ',"secretKeys":["DATABASE_URL","REDIS_URL","API_TOKEN_', toString(number %% 9),
         '"],"change":{"from":', toString(number %% 10), ',"to":', toString(number %% 7), ',"reason":"rotation policy"}}'),
  ['user','user','service','identity','apiKey'][1 + intHash32(number) %% 5],
  concat('usr_', toString(intHash32(number) %% 5000)),
  concat('user', toString(intHash32(number) %% 5000), '@example-', toString(intHash32(number) %% 40), '.com'),
  concat('user', toString(intHash32(number) %% 5000)),
  '',
  concat('{"userId":"usr_', toString(intHash32(number) %% 5000), '","permission":{"metadata":{},"auth":{"method":"sso"}}}'),
  concat('prj_', toString(number %% 200)), concat('project-', toString(number %% 200)),
  ['secret','project','environment','role','api-key'][1 + number %% 5], concat('res_', toString(intHash32(number) %% 100000)), '',
  IPv4NumToString(toUInt32(intHash32(number))),
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  ['web','cli','k8-operator','terraform','node-sdk'][1 + number %% 5],
  toString(generateUUIDv4(number + 1)),
  now64(3), now64(3) + INTERVAL 90 DAY
FROM numbers(%d, %d)`, lo, hi-lo)
		if err := conn.Exec(ctx, q); err != nil {
			log.Fatalf("load: %v", err)
		}
	}
}
