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
ORDER BY is_top DESC, n DESC
LIMIT {limit:UInt32}

-- parameters
-- limit = "10001"
-- org = "acme"
