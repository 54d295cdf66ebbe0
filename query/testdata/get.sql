-- GET /v1/events/{id}
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at, created_at
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND id = {id:UUID}
ORDER BY timestamp DESC
LIMIT 1

-- parameters
-- id = "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a"
-- org = "acme"
