-- GET /v1/event-types?from=2026-04-01T00:00:00Z&projectId=p-1
SELECT event_type, count() AS events, max(timestamp) AS last_seen
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND timestamp >= {from:DateTime64(3, 'UTC')}
  AND project_id = {projectId0:String}
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
GROUP BY event_type
ORDER BY events DESC, event_type ASC
LIMIT {limit:UInt32}

-- parameters
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- from = "2026-04-01 00:00:00.000"
-- limit = "10001"
-- org = "acme"
-- projectId0 = "p-1"
