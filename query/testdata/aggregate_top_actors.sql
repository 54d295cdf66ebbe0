-- GET /v1/aggregates?groupBy=actorId&top=10&metrics=count,resources,ips
SELECT actor_id IN (
  SELECT actor_id
  FROM events FINAL
  WHERE org_id = {org:String}
    AND expires_at > now64(3)
  GROUP BY actor_id
  ORDER BY count() DESC, actor_id ASC
  LIMIT {top:UInt32}
) AS is_top,
  if(is_top, actor_id, '') AS g0,
  count() AS n,
  count() AS m0,
  uniqExactIf(resource_type, resource_id, resource_id != '') AS m1,
  uniqExactIf(ip_address, ip_address != '') AS m2
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
GROUP BY is_top, g0
ORDER BY is_top DESC, n DESC, g0 ASC
LIMIT {limit:UInt32}

-- parameters
-- limit = "10001"
-- org = "acme"
-- top = "10"
