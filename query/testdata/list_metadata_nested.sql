-- GET /v1/events?metadata.a.b.c=x&metadata.a.b.c=1e3&metadata.env=staging
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at, created_at
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND ((JSONType(event_metadata, {md0_k0:String}, {md0_k1:String}, {md0_k2:String}) = 'String' AND JSONExtractString(event_metadata, {md0_k0:String}, {md0_k1:String}, {md0_k2:String}) IN ({md0_s0:String}, {md0_s1:String})) OR (JSONType(event_metadata, {md0_k0:String}, {md0_k1:String}, {md0_k2:String}) IN ('Int64', 'UInt64', 'Double') AND JSONExtractFloat(event_metadata, {md0_k0:String}, {md0_k1:String}, {md0_k2:String}) = {md0_n0:Float64}))
  AND hasAny(metadata_hashes, {md1_h:Array(UInt64)})
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
ORDER BY timestamp DESC, id DESC
LIMIT {limit:UInt32}

-- parameters
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- limit = "50"
-- md0_k0 = "a"
-- md0_k1 = "b"
-- md0_k2 = "c"
-- md0_n0 = "1000"
-- md0_s0 = "1e3"
-- md0_s1 = "x"
-- md1_h = "[3485138047038757481]"
-- org = "acme"
