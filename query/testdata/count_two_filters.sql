-- total of GET /v1/events?eventType=create-secret&actorId=u-1
SELECT count()
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND event_type = {eventType0:String}
  AND actor_id = {actorId0:String}
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})

-- parameters
-- actorId0 = "u-1"
-- eventType0 = "create-secret"
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- org = "acme"
