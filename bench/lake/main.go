// Command lake measures data-lake delivery: rows/s from the events table
// into Parquet files in a local S3 server (versitygw), through the server's
// lake path (a backfill of the events: the same write, read-back and
// manifest steps as the continuous delivery, a day per step), beside
// ClickHouse's own raw write of the same rows to the same server in one
// INSERT INTO FUNCTION s3 ... PARTITION BY (the ceiling), and the server's
// peak RSS.
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//	go run ./bench/lake -events 10000000
//
// Run it from the repository root; it builds ./cmd/auditstore itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/bench/internal/benchutil"
	"github.com/auditstore/auditstore/exporter"
	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

const (
	org    = "bench"
	access = "benchaccesskey01"
	secret = "benchsecretkey-0123456789"
	days   = 7
)

func main() {
	var (
		n   = flag.Int("events", 1_000_000, "events to deliver")
		out = flag.String("out", "", "also write the Markdown report to this file")
	)
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	work, err := os.MkdirTemp("", "auditstore-bench-lake-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)

	endpoint, stopS3 := startS3(work)
	defer stopS3()
	e := benchutil.Engine(ctx, filepath.Join(work, "ch"))
	defer e.Stop(context.Background())
	ccfg := chconn.DefaultConfig()
	ccfg.Addr = e.Addr()
	conn := benchutil.OpenMigrated(ctx, ccfg)
	defer conn.Close()
	log.Printf("loading %d events ...", *n)
	load(ctx, conn, *n)

	srv := benchutil.StartServer(work, "-data", filepath.Join(work, "data"), "-clickhouse", e.Addr(),
		"-clickhouse-http", e.HTTPAddr(), "-allow-private-destinations", "-log-level", "warn")
	defer srv.Stop()
	admin := srv.OrgKey(org, "pro", "admin")
	code, body := srv.Call("POST", "/v1/lake/destinations", admin, map[string]any{"name": "bench", "target": map[string]any{
		"kind": "s3", "s3": map[string]any{"endpoint": endpoint, "bucket": "lake", "prefix": "delivered", "pathStyle": true,
			"accessKeyId": access, "secretAccessKey": secret}}})
	if code != 201 {
		log.Fatalf("create destination: %d %v", code, body)
	}
	id := body["id"].(string)

	// The server's path: a backfill of every event (all received before
	// the destination existed).
	sampler := benchutil.Sample(srv.PID())
	start := time.Now()
	now := time.Now().UTC()
	code, body = srv.Call("POST", "/v1/lake/destinations/"+id+"/backfills", admin, map[string]any{
		"from": now.Add(-(days + 1) * 24 * time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).Format(time.RFC3339)})
	if code != 202 {
		log.Fatalf("backfill: %d %v", code, body)
	}
	var rows float64
	for {
		_, body := srv.Call("GET", "/v1/lake/destinations/"+id+"/backfills", admin, nil)
		bs, _ := body["backfills"].([]any)
		if len(bs) == 1 {
			b := bs[0].(map[string]any)
			if b["lastError"] != nil && b["lastError"] != "" {
				log.Printf("backfill error (retried): %v", b["lastError"])
			}
			if b["state"] == "done" {
				rows = b["rows"].(float64)
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	lakeSecs := time.Since(start).Seconds()
	peak := sampler.Stop()
	// The org's own audit trail (its creation, its key) rides along.
	if int(rows) < *n || int(rows) > *n+10 {
		log.Fatalf("delivered %v rows, want %d and the org's few audit events", rows, *n)
	}

	// The ceiling: ClickHouse writes the same rows, same format and
	// partitions, in one statement.
	ceilSecs := ceiling(ctx, conn, endpoint)

	var report strings.Builder
	fmt.Fprintf(&report, "\n## Data-lake benchmark\n\nMachine: %s. %d events of one org over %d days, delivered as Parquet (zstd) into a local S3 server (versitygw %s), one file per day.\n\n",
		benchutil.Machine(), *n, days, "v1.8.0")
	fmt.Fprintf(&report, "| path | rows/s | seconds | peak server RSS |\n|---|---|---|---|\n")
	fmt.Fprintf(&report, "| auditstore lake (backfill: write, read back, manifest, per day) | %.0f | %.2f | %.0f MB |\n", rows/lakeSecs, lakeSecs, float64(peak)/1e6)
	fmt.Fprintf(&report, "| ClickHouse INSERT INTO FUNCTION s3 ... PARTITION BY, one statement (ceiling) | %.0f | %.2f | — |\n", float64(*n)/ceilSecs, ceilSecs)
	fmt.Fprintf(&report, "\nauditstore = %.0f %% of the ceiling.\n", 100*ceilSecs/lakeSecs)
	fmt.Print(report.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// startS3 runs versitygw on a free port over work/s3, with bucket "lake".
func startS3(work string) (string, func()) {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		out, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			log.Fatal("versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
		}
	}
	dir := filepath.Join(work, "s3")
	if err := os.MkdirAll(filepath.Join(dir, "lake"), 0o755); err != nil {
		log.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", benchutil.FreePort())
	cmd := exec.Command(bin, "--port", addr, "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+access, "ROOT_SECRET_KEY="+secret)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log.Fatal("versitygw did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
}

// load inserts n events of org inside ClickHouse, received an hour ago,
// with timestamps over the last days.
func load(ctx context.Context, conn clickhouseConn, n int) {
	const chunk = 2_000_000
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		q := fmt.Sprintf(`INSERT INTO events (org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id,
  actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id,
  resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at)
SELECT '%s',
  now64(3) - INTERVAL 2 HOUR - toIntervalMillisecond(intHash64(number) %% %d),
  generateUUIDv4(number),
  ['get-secrets','create-secret','update-secret','delete-secret','USER_LOGIN','api_key.create','project.update'][1 + number %% 7],
  concat('{"secretPath":"/apps/service-', toString(number %% 50), '/config","environment":"', ['dev','staging','prod'][1 + number %% 3],
         '","numberOfSecrets":', toString(number %% 120), ',"reason":"rotation policy"}'),
  ['user','user','service','identity','apiKey'][1 + intHash32(number) %% 5],
  concat('usr_', toString(intHash32(number) %% 5000)),
  concat('user', toString(intHash32(number) %% 5000), '@example.com'),
  concat('user', toString(intHash32(number) %% 5000)), '',
  concat('{"userId":"usr_', toString(intHash32(number) %% 5000), '"}'),
  concat('prj_', toString(number %% 200)), concat('project-', toString(number %% 200)),
  ['secret','project','environment','role','api-key'][1 + number %% 5], concat('res_', toString(intHash32(number) %% 100000)), '',
  IPv4NumToString(toUInt32(intHash32(number))),
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  ['web','cli','k8-operator','terraform','node-sdk'][1 + number %% 5],
  toString(generateUUIDv4(number + 1)),
  now64(3) - INTERVAL 1 HOUR, now64(3) + INTERVAL 90 DAY
FROM numbers(%d, %d)`, org, int64(days)*86_400_000, lo, hi-lo)
		if err := conn.Exec(ctx, q); err != nil {
			log.Fatalf("load: %v", err)
		}
	}
}

type clickhouseConn interface {
	Exec(ctx context.Context, query string, args ...any) error
}

// ceiling writes the org's events to the S3 server in one statement, in
// the export schema and the lake's partitions and Parquet settings.
func ceiling(ctx context.Context, conn clickhouseConn, endpoint string) float64 {
	var cols []string
	for _, c := range exporter.Columns {
		cols = append(cols, c.Expr+" AS "+c.Name)
	}
	u, _ := url.JoinPath(endpoint, "lake", "raw")
	q := "INSERT INTO FUNCTION s3('" + u + "/{_partition_id}/raw.parquet', '" + access + "', '" + secret + "', 'Parquet')" +
		" PARTITION BY concat('org_id=', orgId, '/event_date=', formatDateTime(timestamp, '%Y-%m-%d', 'UTC'))" +
		" SELECT " + strings.Join(cols, ", ") + " FROM " + schema.EventsTable + " WHERE org_id = '" + org + "' AND " + schema.NotExpired
	st := clickhouse.Settings{"s3_truncate_on_insert": 1, "max_partitions_per_insert_block": 0}
	for k, v := range exporter.Formats["parquet"].Settings() {
		st[k] = v
	}
	start := time.Now()
	if err := conn.Exec(clickhouse.Context(ctx, clickhouse.WithSettings(st)), q); err != nil {
		log.Fatalf("ceiling: %v", err)
	}
	return time.Since(start).Seconds()
}
