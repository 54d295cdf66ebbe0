-- GET /v1/aggregates?groupBy=actorId&top=10&metrics=count,resources,ips
SELECT rk <= {top:UInt32} AS is_top,
  if(is_top, k0, '') AS g0,
  sum(c) AS n,
  countMerge(s0) AS m0,
  uniqExactIfMerge(s1) AS m1,
  uniqExactIfMerge(s2) AS m2
FROM (
  SELECT *, dense_rank() OVER (ORDER BY total DESC, k0 ASC) AS rk
  FROM (
    SELECT *, sum(c) OVER (PARTITION BY k0) AS total
    FROM (
      SELECT actor_id AS k0, count() AS c, countState() AS s0, uniqExactIfState(resource_type, resource_id, resource_id != '') AS s1, uniqExactIfState(ip_address, ip_address != '') AS s2
      FROM events FINAL
      WHERE org_id = {org:String}
        AND expires_at > now64(3)
        AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
      GROUP BY k0
    )
  )
)
GROUP BY is_top, g0
ORDER BY is_top DESC, n DESC, g0 ASC
LIMIT {limit:UInt32}

-- parameters
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- limit = "10001"
-- org = "acme"
-- top = "10"
