-- Where and in which order each event reached ClickHouse: the ingest node
-- (one server's data directory) and a sequence number that grows with the
-- node's write-ahead log (record number << 16 | position in the record).
-- A node inserts its batches one after another, so every row with a
-- sequence number up to the last one it confirmed is visible: stream
-- dispatchers read "after my cursor, up to the confirmed one" in order,
-- with nothing skipped. The minmax index lets that read skip old parts.
ALTER TABLE events ADD COLUMN IF NOT EXISTS ingest_node LowCardinality(String) DEFAULT '';
ALTER TABLE events ADD COLUMN IF NOT EXISTS ingest_seq UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));
ALTER TABLE events ADD INDEX IF NOT EXISTS idx_ingest_seq ingest_seq TYPE minmax GRANULARITY 1;
