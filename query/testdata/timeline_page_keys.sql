-- keys of the page after a cursor of GET /v1/resources/secret/s-42/events
SELECT timestamp, id
FROM events_by_key FINAL
WHERE org_id = {org:String}
  AND key_kind = {keyKind:String}
  AND key = {key:String}
  AND expires_at > now64(3)
  AND timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp <= {afterTime:DateTime64(3, 'UTC')}
  AND (timestamp < {afterTime:DateTime64(3, 'UTC')} OR (timestamp = {afterTime:DateTime64(3, 'UTC')} AND id < {afterID:UUID}))
ORDER BY timestamp DESC, id DESC
LIMIT {limit:UInt32}

-- parameters
-- afterID = "0192f8a4-6f7e-7cc3-9a51-5d0e4c1e2b3a"
-- afterTime = "2026-05-01 12:00:00.123"
-- from = "2026-04-01 00:00:00.000"
-- key = "secret/s-42"
-- keyKind = "resource"
-- limit = "51"
-- org = "acme"
