-- total of GET /v1/events?eventType=create-secret&actorId=u-1
SELECT count()
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND event_type = {eventType0:String}
  AND actor_id = {actorId0:String}

-- parameters
-- actorId0 = "u-1"
-- eventType0 = "create-secret"
-- org = "acme"
