-- Audit log streams: each org's destinations (Datadog, Splunk, Cribl,
-- Azure Monitor, any HTTPS endpoint). Each change inserts a new version of
-- the row; the latest updated_at wins (read with FINAL); a deleted stream
-- keeps a last version with deleted = 1. config_sealed is the provider
-- configuration, credentials included, sealed with AES-256-GCM under the
-- server's stream key: no credential is stored in clear.
CREATE TABLE IF NOT EXISTS streams
(
    org_id        String,
    id            String,
    name          String,
    provider      LowCardinality(String),
    config_sealed String,
    filter        String,
    paused        UInt8,
    deleted       UInt8,
    created_at    DateTime64(3, 'UTC'),
    updated_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (org_id, id);

-- Where each stream stands in each ingest node's log: every event of that
-- node with ingest_seq <= seq was acknowledged by the destination. The
-- counters, the last error and the state are the stream's status on that
-- node. Each write inserts a new version; the highest version wins (read
-- with FINAL).
CREATE TABLE IF NOT EXISTS stream_cursors
(
    stream_id        String,
    node             String,
    seq              UInt64,
    delivered        UInt64,
    failed           UInt64,
    last_event_at    DateTime64(3, 'UTC'),
    last_delivery_at DateTime64(3, 'UTC'),
    last_error       String,
    last_error_at    DateTime64(3, 'UTC'),
    state            LowCardinality(String),
    version          UInt64,
    updated_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (stream_id, node);
