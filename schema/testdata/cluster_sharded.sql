-- 0001_events statement 1
CREATE TABLE IF NOT EXISTS events_local
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

-- 0002_tenancy statement 1
CREATE TABLE IF NOT EXISTS orgs
(
    id         String,
    plan       LowCardinality(String),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

-- 0002_tenancy statement 2
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

-- 0003_query statement 1
CREATE TABLE IF NOT EXISTS events_by_key_local
(
    org_id         LowCardinality(String),
    key_kind       LowCardinality(String),
    key            String CODEC(ZSTD(1)),
    timestamp      DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    id             UUID,
    expires_at     DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    retention_days UInt16
)
ENGINE = ReplacingMergeTree
PARTITION BY (retention_days, toYYYYMM(timestamp))
ORDER BY (org_id, key_kind, key, timestamp, id)
TTL toDateTime(expires_at) DELETE
SETTINGS index_granularity = 8192, merge_with_ttl_timeout = 3600, non_replicated_deduplication_window = 10000;

-- 0003_query statement 2
CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_key_mv TO events_by_key_local AS
SELECT org_id, k.1 AS key_kind, k.2 AS key, timestamp, id, expires_at,
       toUInt16(intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400)) AS retention_days
FROM events_local
ARRAY JOIN [('resource', concat(resource_type, '/', resource_id)), ('actor', actor_id)] AS k
WHERE (k.1 = 'resource' AND resource_id != '') OR (k.1 = 'actor' AND actor_id != '');

-- 0003_query statement 3
INSERT INTO events_by_key_local
SELECT org_id, k.1, k.2, timestamp, id, expires_at,
       toUInt16(intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400))
FROM events_local
ARRAY JOIN [('resource', concat(resource_type, '/', resource_id)), ('actor', actor_id)] AS k
WHERE ((k.1 = 'resource' AND resource_id != '') OR (k.1 = 'actor' AND actor_id != ''))
  AND expires_at > now64(3);

-- 0004_insert_dedup statement 1
ALTER TABLE events_local MODIFY SETTING non_replicated_deduplication_window = 10000;

-- 0005_ingest_seq statement 1
ALTER TABLE events_local ADD COLUMN IF NOT EXISTS ingest_node LowCardinality(String) DEFAULT '';

-- 0005_ingest_seq statement 2
ALTER TABLE events_local ADD COLUMN IF NOT EXISTS ingest_seq UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));

-- 0005_ingest_seq statement 3
ALTER TABLE events_local ADD INDEX IF NOT EXISTS idx_ingest_seq ingest_seq TYPE minmax GRANULARITY 1;

-- 0006_streams statement 1
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

-- 0006_streams statement 2
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

-- 0007_events_monthly statement 1
CREATE TABLE IF NOT EXISTS events_0007_local
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
    ingest_node     LowCardinality(String) DEFAULT '',
    ingest_seq      UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1)),
    metadata_hashes Array(UInt64) DEFAULT arrayFlatten(arrayMap(kv -> multiIf(
        JSONType(kv.2) = 'String', [xxHash64(concat('s1', toString(length(kv.1)), ':', kv.1, JSONExtractString(kv.2)))],
        JSONType(kv.2) IN ('Int64', 'UInt64', 'Double'), [xxHash64(concat('n1', toString(length(kv.1)), ':', kv.1, reinterpretAsFixedString(JSONExtractFloat(kv.2) + 0)))],
        JSONType(kv.2) = 'Bool', [xxHash64(concat('b1', toString(length(kv.1)), ':', kv.1, if(JSONExtractBool(kv.2), '1', '0')))],
        JSONType(kv.2) = 'Object', arrayFilter(h -> h != 0, arrayMap(kv2 -> multiIf(
            JSONType(kv2.2) = 'String', xxHash64(concat('s2', toString(length(kv.1)), ':', kv.1, toString(length(kv2.1)), ':', kv2.1, JSONExtractString(kv2.2))),
            JSONType(kv2.2) IN ('Int64', 'UInt64', 'Double'), xxHash64(concat('n2', toString(length(kv.1)), ':', kv.1, toString(length(kv2.1)), ':', kv2.1, reinterpretAsFixedString(JSONExtractFloat(kv2.2) + 0))),
            JSONType(kv2.2) = 'Bool', xxHash64(concat('b2', toString(length(kv.1)), ':', kv.1, toString(length(kv2.1)), ':', kv2.1, if(JSONExtractBool(kv2.2), '1', '0'))),
            toUInt64(0)), JSONExtractKeysAndValuesRaw(kv.2))),
        CAST([], 'Array(UInt64)')), JSONExtractKeysAndValuesRaw(event_metadata))) CODEC(ZSTD(1)),
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 4,
    INDEX idx_event_type event_type TYPE set(512) GRANULARITY 4,
    INDEX idx_actor_id actor_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_actor_email lower(actor_email) TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_resource_id resource_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_ip_address ip_address TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_ingest_seq ingest_seq TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY (intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400), toYYYYMM(timestamp))
ORDER BY (org_id, timestamp, id)
TTL toDateTime(expires_at) DELETE
SETTINGS index_granularity = 8192, index_granularity_bytes = 1048576, merge_with_ttl_timeout = 3600, non_replicated_deduplication_window = 10000;

-- 0007_events_monthly statement 2
-- when: SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'events_local' AND position(partition_key, 'toYYYYMMDD') > 0
INSERT INTO events_0007_local (org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email,
    actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name,
    ip_address, user_agent, user_agent_type, trace_id, received_at, created_at, expires_at, ingest_node, ingest_seq)
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email,
    actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name,
    ip_address, user_agent, user_agent_type, trace_id, received_at, created_at, expires_at, ingest_node, ingest_seq
FROM events_local
SETTINGS max_partitions_per_insert_block = 0;

-- 0007_events_monthly statement 3
-- when: SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'events_local' AND position(partition_key, 'toYYYYMMDD') > 0
DROP VIEW IF EXISTS events_by_key_mv;

-- 0007_events_monthly statement 4
-- when: SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'events_local' AND position(partition_key, 'toYYYYMMDD') > 0
EXCHANGE TABLES events_local AND events_0007_local;

-- 0007_events_monthly statement 5
DROP TABLE IF EXISTS events_0007_local;

-- 0007_events_monthly statement 6
CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_key_mv TO events_by_key_local AS
SELECT org_id, k.1 AS key_kind, k.2 AS key, timestamp, id, expires_at,
       toUInt16(intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400)) AS retention_days
FROM events_local
ARRAY JOIN [('resource', concat(resource_type, '/', resource_id)), ('actor', actor_id)] AS k
WHERE (k.1 = 'resource' AND resource_id != '') OR (k.1 = 'actor' AND actor_id != '');

-- 0008_viewer_sessions statement 1
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

-- 0010_lake statement 1
CREATE TABLE IF NOT EXISTS lake_destinations
(
    org_id        String,
    id            String,
    name          String,
    kind          LowCardinality(String),
    config_sealed String,
    paused        UInt8,
    deleted       UInt8,
    created_at    DateTime64(3, 'UTC'),
    updated_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (org_id, id);

-- 0010_lake statement 2
CREATE TABLE IF NOT EXISTS lake_watermarks
(
    dest_id        String,
    node           String,
    seq            UInt64,
    pending_upto   UInt64,
    files          UInt64,
    rows           UInt64,
    bytes          UInt64,
    last_file      String,
    last_file_at   DateTime64(3, 'UTC'),
    last_event_at  DateTime64(3, 'UTC'),
    last_error     String,
    last_error_at  DateTime64(3, 'UTC'),
    version        UInt64,
    updated_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (dest_id, node);

-- 0010_lake statement 3
CREATE TABLE IF NOT EXISTS lake_files
(
    dest_id    String,
    partition  String,
    name       String,
    node       String,
    seq_from   UInt64,
    seq_to     UInt64,
    rows       UInt64,
    bytes      UInt64,
    checksum   String,
    min_time   DateTime64(3, 'UTC'),
    max_time   DateTime64(3, 'UTC'),
    written_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(written_at)
ORDER BY (dest_id, partition, name);

-- 0010_lake statement 4
CREATE TABLE IF NOT EXISTS lake_backfills
(
    dest_id    String,
    id         String,
    from_time  DateTime64(3, 'UTC'),
    to_time    DateTime64(3, 'UTC'),
    next_day   Date,
    state      LowCardinality(String),
    rows       UInt64,
    last_error String,
    version    UInt64,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (dest_id, id);

-- 0011_console_settings statement 1
ALTER TABLE orgs ADD COLUMN IF NOT EXISTS trace_url String DEFAULT '';

-- 0011_console_settings statement 2
ALTER TABLE viewer_sessions ADD COLUMN IF NOT EXISTS session_salt String DEFAULT '';

-- 0012_event_hours statement 1
CREATE TABLE IF NOT EXISTS event_hours_local
(
    org_id  LowCardinality(String),
    hour    DateTime('UTC'),
    written DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(written)
ORDER BY (org_id, hour)
SETTINGS index_granularity = 8192;

-- 0012_event_hours statement 2
CREATE MATERIALIZED VIEW IF NOT EXISTS event_hours_mv TO event_hours_local AS
SELECT org_id, toStartOfHour(timestamp) AS hour, now64(6) AS written
FROM events_local
GROUP BY org_id, hour;

-- 0012_event_hours statement 3
INSERT INTO event_hours_local
SELECT org_id, toStartOfHour(timestamp), now64(6)
FROM events_local
GROUP BY org_id, toStartOfHour(timestamp);

-- 0013_day_groups statement 1
CREATE TABLE IF NOT EXISTS event_day_groups
(
    org_id   LowCardinality(String),
    shape    String,
    day      Date,
    days     UInt16,
    run      UInt64,
    kind     UInt8,
    computed DateTime64(3, 'UTC'),
    mark     DateTime64(6, 'UTC'),
    rows     UInt64,
    expires  DateTime64(3, 'UTC'),
    g0       String,
    g1       String,
    g2       String,
    n        UInt64
)
ENGINE = MergeTree
ORDER BY (org_id, shape, kind, day, run, g0, g1, g2)
TTL least(toDateTime(expires), toDateTime(computed) + INTERVAL 30 DAY) DELETE
SETTINGS index_granularity = 8192, merge_with_ttl_timeout = 3600;

-- 0014_compress_blocks statement 1
ALTER TABLE events_local MODIFY SETTING min_compress_block_size = 8192, max_compress_block_size = 65536;

-- Distributed tables
CREATE OR REPLACE TABLE events AS events_local ENGINE = Distributed('auditstore', currentDatabase(), 'events_local', xxHash64(concat(org_id, ':', toString(id))));
CREATE OR REPLACE TABLE events_by_key AS events_by_key_local ENGINE = Distributed('auditstore', currentDatabase(), 'events_by_key_local', xxHash64(concat(org_id, ':', toString(id))));
CREATE OR REPLACE TABLE event_hours AS event_hours_local ENGINE = Distributed('auditstore', currentDatabase(), 'event_hours_local');
