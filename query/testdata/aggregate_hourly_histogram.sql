-- GET /v1/aggregates?interval=hour&from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00Z
SELECT 1 AS is_top,
  toDateTime(toStartOfHour(timestamp), 'UTC') AS t,
  count() AS n,
  count() AS m0
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp < {to:DateTime64(3, 'UTC')}
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
GROUP BY t
ORDER BY t ASC, is_top DESC, n DESC
LIMIT {limit:UInt32}

-- parameters
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- from = "2026-04-01 00:00:00.000"
-- limit = "10001"
-- org = "acme"
-- to = "2026-05-01 00:00:00.000"
