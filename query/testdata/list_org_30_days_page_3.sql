-- GET /v1/events?from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00.0005Z&page=3&limit=100
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at, created_at
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp < {to:DateTime64(3, 'UTC')}
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
ORDER BY timestamp DESC, id DESC
LIMIT {limit:UInt32} OFFSET {offset:UInt64}

-- parameters
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- from = "2026-04-01 00:00:00.000"
-- limit = "100"
-- offset = "200"
-- org = "acme"
-- to = "2026-05-01 00:00:00.001"
