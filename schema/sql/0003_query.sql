-- Timelines of one resource or one actor, the frequent paths the events
-- table's order (org, time) cannot serve: a busy resource or actor has
-- events in every granule of its org, so no skip index prunes them, and a
-- page with its total would read the org's whole range. This narrow table
-- holds one row per (event, key), sorted by (org, key, time): a timeline's
-- total and the ids of its page come from a contiguous range, and the page
-- reads its events from the events table by key.
--
-- key_kind is 'resource' (key: resource type, '/', resource id; a type never
-- holds '/') or 'actor' (key: the actor id). Like events, the table is a
-- ReplacingMergeTree read with FINAL (a re-sent event gives identical rows)
-- whose partition, (retention days, event month), is shared by every copy;
-- rows leave with their event's expiry (TTL) and reads filter on it too.
CREATE TABLE IF NOT EXISTS events_by_key
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

-- Every insert into events feeds the table, whatever writes it. A writer
-- that retries an INSERT with insert_deduplicate should also set
-- deduplicate_blocks_in_dependent_materialized_views = 1, so that a retry
-- completes this table too when the first attempt stopped between the two
-- (the deduplication window above makes that retry a no-op otherwise).
CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_key_mv TO events_by_key AS
SELECT org_id, k.1 AS key_kind, k.2 AS key, timestamp, id, expires_at,
       toUInt16(intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400)) AS retention_days
FROM events
ARRAY JOIN [('resource', concat(resource_type, '/', resource_id)), ('actor', actor_id)] AS k
WHERE (k.1 = 'resource' AND resource_id != '') OR (k.1 = 'actor' AND actor_id != '');

-- Events stored before this migration. Should it run twice (a crash before
-- it was recorded, or two servers at once), the copies fold like re-sent
-- events.
INSERT INTO events_by_key
SELECT org_id, k.1, k.2, timestamp, id, expires_at,
       toUInt16(intDiv(toUnixTimestamp(expires_at) - toUnixTimestamp(received_at), 86400))
FROM events
ARRAY JOIN [('resource', concat(resource_type, '/', resource_id)), ('actor', actor_id)] AS k
WHERE ((k.1 = 'resource' AND resource_id != '') OR (k.1 = 'actor' AND actor_id != ''))
  AND expires_at > now64(3);
