-- GET /v1/aggregates?groupBy=eventType,actorType&interval=day&top=5&metrics=count,actors&resourceType=secret
SELECT (event_type, actor_type) IN (
  SELECT event_type, actor_type
  FROM events FINAL
  WHERE org_id = {org:String}
    AND expires_at > now64(3)
    AND resource_type = {resourceType0:String}
  GROUP BY event_type, actor_type
  ORDER BY count() DESC, event_type ASC, actor_type ASC
  LIMIT {top:UInt32}
) AS is_top,
  if(is_top, event_type, '') AS g0,
  if(is_top, actor_type, '') AS g1,
  toDateTime(toStartOfDay(timestamp), 'UTC') AS t,
  count() AS n,
  count() AS m0,
  uniqExactIf(actor_id, actor_id != '') AS m1
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND resource_type = {resourceType0:String}
GROUP BY is_top, g0, g1, t
ORDER BY t ASC, is_top DESC, n DESC, g0 ASC, g1 ASC
LIMIT {limit:UInt32}

-- parameters
-- limit = "10001"
-- org = "acme"
-- resourceType0 = "secret"
-- top = "5"
