-- GET /v1/aggregates?metrics=count,actors,resources,ips
SELECT 1 AS is_top,
  count() AS n,
  count() AS m0,
  uniqExactIf(actor_id, actor_id != '') AS m1,
  uniqExactIf(resource_type, resource_id, resource_id != '') AS m2,
  uniqExactIf(ip_address, ip_address != '') AS m3
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
ORDER BY is_top DESC, n DESC
LIMIT {limit:UInt32}

-- parameters
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- limit = "10001"
-- org = "acme"
