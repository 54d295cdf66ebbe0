-- GET /v1/aggregates?groupBy=eventType,actorType&interval=day&top=5&metrics=count,actors&resourceType=secret
SELECT rk <= {top:UInt32} AS is_top,
  if(is_top, k0, '') AS g0,
  if(is_top, k1, '') AS g1,
  t,
  sum(c) AS n,
  countMerge(s0) AS m0,
  uniqExactIfMerge(s1) AS m1
FROM (
  SELECT *, dense_rank() OVER (ORDER BY total DESC, k0 ASC, k1 ASC) AS rk
  FROM (
    SELECT *, sum(c) OVER (PARTITION BY k0, k1) AS total
    FROM (
      SELECT event_type AS k0, actor_type AS k1, toDateTime(toStartOfDay(timestamp), 'UTC') AS t, count() AS c, countState() AS s0, uniqExactIfState(actor_id, actor_id != '') AS s1
      FROM events FINAL
      WHERE org_id = {org:String}
        AND expires_at > now64(3)
        AND resource_type = {resourceType0:String}
        AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
      GROUP BY k0, k1, t
    )
  )
)
GROUP BY is_top, g0, g1, t
ORDER BY t ASC, is_top DESC, n DESC, g0 ASC, g1 ASC
LIMIT {limit:UInt32}

-- parameters
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- limit = "10001"
-- org = "acme"
-- resourceType0 = "secret"
-- top = "5"
