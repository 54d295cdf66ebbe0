-- Embedded viewers: a short-lived, one-time token an org's admin key asks
-- for one of its users, exchanged for a session. One row per token and its
-- session; each change inserts a new version (latest updated_at wins, read
-- with FINAL). Only SHA-256 hashes of the secrets are stored. Rows leave a
-- day after they expire.
CREATE TABLE IF NOT EXISTS viewer_sessions
(
    id           String,
    org_id       String,
    user_id      String,
    scope        String,
    capabilities Array(LowCardinality(String)),
    token_hash   String,
    session_hash String,
    created_at   DateTime64(3, 'UTC'),
    expires_at   DateTime64(3, 'UTC'),
    exchanged_at Nullable(DateTime64(3, 'UTC')),
    revoked_at   Nullable(DateTime64(3, 'UTC')),
    updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id
TTL toDateTime(expires_at) + INTERVAL 1 DAY DELETE;
