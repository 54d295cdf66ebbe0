-- the events of a page of keys
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at, created_at
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND (timestamp, id) IN (({t0:DateTime64(3, 'UTC')}, {i0:UUID}), ({t1:DateTime64(3, 'UTC')}, {i1:UUID}))
ORDER BY timestamp DESC, id DESC

-- parameters
-- i0 = "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a"
-- i1 = "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3b"
-- org = "acme"
-- t0 = "2026-05-01 12:00:00.123"
-- t1 = "2026-05-01 11:59:59.123"
