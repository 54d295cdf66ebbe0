-- total of GET /v1/resources/secret/s-42/events?from=2026-04-01T00:00:00Z
SELECT count()
FROM events_by_key FINAL
WHERE org_id = {org:String}
  AND key_kind = {keyKind:String}
  AND key = {key:String}
  AND expires_at > now64(3)
  AND timestamp >= {from:DateTime64(3, 'UTC')}

-- parameters
-- from = "2026-04-01 00:00:00.000"
-- key = "secret/s-42"
-- keyKind = "resource"
-- org = "acme"
