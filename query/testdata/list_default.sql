-- GET /v1/events?
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at, created_at
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
ORDER BY timestamp DESC, id DESC
LIMIT {limit:UInt32}

-- parameters
-- limit = "50"
-- org = "acme"
