-- GET /v1/events?eventType=login&actorType=user&actorType=service&actorId=u-1,u-2&actorEmail=Ada@Example.com&actorEmailPrefix=ADA&actorEmailContains=example&ipAddress=203.0.113.7,10.0.0.0/8,2001:db8::/32,::ffff:192.168.0.0/112&userAgentType=web&projectId=p-1&resourceType=secret&resourceId=s-42&traceId=tr-1&from=2026-04-01T00:00:00Z&to=2026-05-01T00:00:00Z&metadata.environment=prod&metadata.count=3&metadata.flags.enabled=true&sort=eventType
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email, actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name, ip_address, user_agent, user_agent_type, trace_id, received_at, expires_at, created_at
FROM events FINAL
WHERE org_id = {org:String}
  AND expires_at > now64(3)
  AND timestamp >= {from:DateTime64(3, 'UTC')}
  AND timestamp < {to:DateTime64(3, 'UTC')}
  AND event_type = {eventType0:String}
  AND actor_type IN ({actorType0:String}, {actorType1:String})
  AND actor_id IN ({actorId0:String}, {actorId1:String}, {actorId2:String})
  AND lower(actor_email) = {emailLower0:String}
  AND actor_email = {actorEmail0:String}
  AND user_agent_type = {userAgentType0:String}
  AND project_id = {projectId0:String}
  AND resource_type = {resourceType0:String}
  AND resource_id = {resourceId0:String}
  AND trace_id = {traceId0:String}
  AND startsWith(lower(actor_email), {emailPrefix0:String})
  AND position(lower(actor_email), {emailContains0:String}) > 0
  AND (ip_address = {ip0:String} OR (isIPv4String(ip_address) AND toIPv4OrZero(ip_address) BETWEEN {ipLo0:IPv4} AND {ipHi0:IPv4}) OR (isIPv4String(ip_address) AND toIPv4OrZero(ip_address) BETWEEN {ipLo1:IPv4} AND {ipHi1:IPv4}) OR (isIPv6String(ip_address) AND toIPv6OrZero(ip_address) BETWEEN {ipLo2:IPv6} AND {ipHi2:IPv6}))
  AND hasAny(metadata_hashes, {md0_h:Array(UInt64)})
  AND hasAny(metadata_hashes, {md1_h:Array(UInt64)})
  AND hasAny(metadata_hashes, {md2_h:Array(UInt64)})
  AND event_type NOT IN ({excludeType0:String}, {excludeType1:String}, {excludeType2:String}, {excludeType3:String})
ORDER BY event_type ASC, timestamp DESC, id DESC
LIMIT {limit:UInt32}

-- parameters
-- actorEmail0 = "Ada@Example.com"
-- actorId0 = "u-1"
-- actorId1 = "u-1,u-2"
-- actorId2 = "u-2"
-- actorType0 = "service"
-- actorType1 = "user"
-- emailContains0 = "example"
-- emailLower0 = "ada@example.com"
-- emailPrefix0 = "ada"
-- eventType0 = "login"
-- excludeType0 = "audit-log.export"
-- excludeType1 = "audit-log.query"
-- excludeType2 = "audit-log.session"
-- excludeType3 = "audit-log.viewer-session"
-- from = "2026-04-01 00:00:00.000"
-- ip0 = "203.0.113.7"
-- ipHi0 = "10.255.255.255"
-- ipHi1 = "192.168.255.255"
-- ipHi2 = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
-- ipLo0 = "10.0.0.0"
-- ipLo1 = "192.168.0.0"
-- ipLo2 = "2001:db8::"
-- limit = "50"
-- md0_h = "[15703425521096281018,3302056690048956286]"
-- md1_h = "[18416246371718772634]"
-- md2_h = "[8611496471252319946,3311474647437388882]"
-- org = "acme"
-- projectId0 = "p-1"
-- resourceId0 = "s-42"
-- resourceType0 = "secret"
-- to = "2026-05-01 00:00:00.000"
-- traceId0 = "tr-1"
-- userAgentType0 = "web"
