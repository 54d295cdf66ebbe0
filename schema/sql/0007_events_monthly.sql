-- The events table, rebuilt with two changes (ClickHouse cannot alter a
-- partition key, so the table is copied and swapped):
--
-- 1. Partitions are (retention days, event month) instead of (retention
--    days, event day). Every copy of a re-sent event still shares a
--    partition (same timestamp, same plan), so FINAL may still fold
--    partitions one by one. But a read pays for every part it touches
--    (index analysis, one seek and one decompressed block per column), and
--    daily partitions kept each day in its own parts: 30 days of one org
--    were ~65 parts of a few granules each. Monthly partitions merge into a
--    few large parts; measured on 10M events (bench/query): a filtered
--    30-day count 30 ms -> 5 ms, its FINAL hourly counts 55 ms -> 21 ms.
--    Expired rows now leave at TTL merges (merge_with_ttl_timeout) rather
--    than with whole daily parts; reads filter on expires_at as before.
--
-- 2. metadata_hashes: one 64-bit hash per scalar leaf of event_metadata at
--    depth 1 or 2 (a key, or a key of an object under a key): of its kind
--    (string, number, bool), its path and its value (schema.MetadataLeafHash
--    defines it). A metadata filter on such a path compares hashes (8 bytes
--    per leaf) instead of reading and parsing the JSON (a few hundred bytes
--    per event); deeper paths still read the JSON. The kinds and values are
--    those of the JSON conditions: strings compare decoded, numbers as
--    Float64 (-0 as 0), bools as bools; null, arrays and objects hash to
--    nothing. Writers compute the hashes (schema.MetadataHashes, about a
--    microsecond per event); the DEFAULT computes the same for a writer that
--    leaves the column out, and for the rows copied below, but costs
--    ClickHouse ~3 us per event, which would halve its insert rate. Two
--    different leaves share a hash with probability 2^-64 per comparison,
--    which a filter accepts.
--
-- 3. Granules of at most 1 MiB (index_granularity_bytes; 10 MiB before),
--    about 1,500 events of the bench's ~700 bytes instead of 8,192. A page
--    of a timeline or of a sparse filter reads a few events from each of
--    many granules, and a granule is read whole: a resource's 50 events
--    spread over three months read 104 MB in 38 granules, now 24 MB (83 ->
--    58 ms); range scans pay a few ms more for the extra marks.
--
-- Stop every writer of this database while it runs (`auditstore migrate`,
-- or the first start of the new version, which migrates before it serves):
-- an event inserted into the old table after the copy would stay there.
-- Each step can run again: a migration stopped half-way resumes at the next
-- start (the steps that cannot repeat are guarded by the layout of
-- "events"; a repeated copy would only add copies that reads fold).

CREATE TABLE IF NOT EXISTS events_0007
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

-- Steps 2-4 run while "events" still has the daily layout.
-- when: SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'events' AND position(partition_key, 'toYYYYMMDD') > 0
INSERT INTO events_0007 (org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email,
    actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name,
    ip_address, user_agent, user_agent_type, trace_id, received_at, created_at, expires_at, ingest_node, ingest_seq)
SELECT org_id, timestamp, id, event_type, event_metadata, actor_type, actor_id, actor_email,
    actor_username, actor_name, actor_metadata, project_id, project_name, resource_type, resource_id, resource_name,
    ip_address, user_agent, user_agent_type, trace_id, received_at, created_at, expires_at, ingest_node, ingest_seq
FROM events
SETTINGS max_partitions_per_insert_block = 0;

-- The view feeding events_by_key follows its source table; it is created
-- again on the new one below. events_by_key already holds every row copied.
-- when: SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'events' AND position(partition_key, 'toYYYYMMDD') > 0
DROP VIEW IF EXISTS events_by_key_mv;

-- when: SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'events' AND position(partition_key, 'toYYYYMMDD') > 0
EXCHANGE TABLES events AND events_0007;

-- events_0007 is now the old table (or, when this runs again after the
-- swap, an empty one).
DROP TABLE IF EXISTS events_0007;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_key_mv TO events_by_key AS
SELECT org_id, k.1 AS key_kind, k.2 AS key, timestamp, id, expires_at,
       toUInt16(intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400)) AS retention_days
FROM events
ARRAY JOIN [('resource', concat(resource_type, '/', resource_id)), ('actor', actor_id)] AS k
WHERE (k.1 = 'resource' AND resource_id != '') OR (k.1 = 'actor' AND actor_id != '');
