-- The audit events of every org, one row per event.
--
-- Order key (org_id, timestamp, id): the common access path is one org's
-- events over a time range, newest first; id makes the key unique so that
-- ReplacingMergeTree folds a re-inserted event (same org, time and id) into one.
-- Retention: expires_at is fixed at receive time from the org's plan; the TTL
-- deletes rows after it. Partitions are (retention in days, day of the event):
-- the rows of a partition expire together (within the day, plus the rare
-- late arrival), so expired data leaves as whole parts; a time range prunes
-- whole partitions; and every copy of a re-sent event (same timestamp, same
-- plan) lands in the same partition, so FINAL may fold partitions one by
-- one. TTL runs only at merges: every read also filters expires_at > now().
CREATE TABLE IF NOT EXISTS events
(
    org_id          LowCardinality(String),
    timestamp       DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    id              UUID,
    event_type      LowCardinality(String),
    event_metadata  String CODEC(ZSTD(3)),
    actor_type      LowCardinality(String),
    actor_id        String CODEC(ZSTD(1)),
    actor_email     String CODEC(ZSTD(1)),
    actor_username  String CODEC(ZSTD(1)),
    actor_name      String CODEC(ZSTD(1)),
    actor_metadata  String CODEC(ZSTD(3)),
    project_id      LowCardinality(String),
    project_name    LowCardinality(String),
    resource_type   LowCardinality(String),
    resource_id     String CODEC(ZSTD(1)),
    resource_name   String CODEC(ZSTD(1)),
    ip_address      String CODEC(ZSTD(1)),
    user_agent      LowCardinality(String),
    user_agent_type LowCardinality(String),
    trace_id        String CODEC(ZSTD(1)),
    received_at     DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    created_at      DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    expires_at      DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 4,
    INDEX idx_event_type event_type TYPE set(512) GRANULARITY 4,
    INDEX idx_actor_id actor_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_actor_email lower(actor_email) TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_resource_id resource_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_ip_address ip_address TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY (intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400), toYYYYMMDD(timestamp))
ORDER BY (org_id, timestamp, id)
TTL toDateTime(expires_at) DELETE
SETTINGS index_granularity = 8192, merge_with_ttl_timeout = 3600;
