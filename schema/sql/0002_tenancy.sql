-- Orgs and their API keys. Each change inserts a new version of the row;
-- the row with the latest updated_at wins (read with FINAL). Secrets are
-- never stored: secret_hash is the SHA-256 of a key's random secret.
CREATE TABLE IF NOT EXISTS orgs
(
    id         String,
    plan       LowCardinality(String),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS api_keys
(
    id          String,
    org_id      String,
    name        String,
    role        LowCardinality(String),
    secret_hash String,
    created_at  DateTime64(3, 'UTC'),
    revoked_at  Nullable(DateTime64(3, 'UTC')),
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;
