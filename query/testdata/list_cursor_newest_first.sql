-- GET /v1/events?limit=20
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at, created_at
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
  AND timestamp <= {afterTime:DateTime64(3, 'UTC')}
  AND (timestamp < {afterTime:DateTime64(3, 'UTC')} OR (timestamp = {afterTime:DateTime64(3, 'UTC')} AND id < {afterID:UUID}))
ORDER BY timestamp DESC, id DESC
LIMIT {limit:UInt32}

-- parameters
-- afterID = "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a"
-- afterTime = "2026-05-01 12:00:00.123"
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- limit = "21"
-- org = "acme"
