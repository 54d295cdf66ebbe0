-- The web console's per-org setting and the viewer exchange's salt.
--
-- orgs.trace_url: the org's link-out template from a trace id to its own
-- execution-log tool ('' : the server's -console-trace-url applies).
ALTER TABLE orgs ADD COLUMN IF NOT EXISTS trace_url String DEFAULT '';

-- viewer_sessions.session_salt: a random secret made with the token, never
-- given out. A token's session secret is HMAC-SHA256(salt, token secret), so
-- that every instance exchanging the same token derives the same session:
-- two exchanges racing on two instances open one session, not two.
ALTER TABLE viewer_sessions ADD COLUMN IF NOT EXISTS session_salt String DEFAULT '';
