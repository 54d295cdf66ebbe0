-- Data-lake destinations (exporter/lake): S3-compatible buckets and
-- directories that receive partitioned Parquet files. org_id is the org
-- whose events a destination receives, '' for the operator's destinations
-- that receive every org. config_sealed is the whole configuration,
-- credentials included, sealed with AES-256-GCM under the stream key. Each
-- change inserts a new version; the latest updated_at wins (read with
-- FINAL); a deleted destination keeps a last version with deleted = 1.
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

-- Where each destination stands in each ingest node's log: every event of
-- that node with ingest_seq <= seq is in a file listed by its partition's
-- manifest. pending_upto, when above seq, is the step under way: its files
-- are named by (node, seq, pending_upto), so a step retried after a crash
-- writes the same objects again. The other columns are the status. The
-- highest version wins (read with FINAL).
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

-- Every file delivered, by destination and partition: the source of each
-- partition's manifest (_manifest.json), which lists them all. Writing a
-- file again (a retried step) replaces its row.
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

-- Backfills: the events of a time range received before the destination
-- was created, delivered day by day. next_day is the first day not yet
-- delivered. The highest version wins.
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
