-- Partial aggregates of whole days, kept by readers: the event counts of
-- a block of whole UTC days (one day, or a week for days more than a week
-- old) of one org per group (the values of an aggregate's groupBy
-- fields), counted with FINAL and without the expired events. A top-N
-- over 90 days then adds up the rows of 12 known weeks and a few known
-- days and reads the events of the partial days at its ends (and of the
-- days written lately) instead of grouping every event of the range.
--
-- A reader writes a block's rows under a run (a random number of its
-- own), then one marker row (kind 0) saying which block (day: its first
-- day, days: its length) and run they are, the block's latest write (max
-- of schema.HoursTable's marks over its hours) when it was counted, how
-- many group rows (kind 1) the run holds, and the earliest expiry among
-- the block's events. Readers use a run only through its marker: while
-- the block's latest write is still the one recorded (any write into it,
-- a re-sent copy included, leaves a later mark), the earliest expiry is
-- ahead, and the run is younger than 30 days; and they check that they
-- read as many group rows as the markers say. Rows of an interrupted run
-- have no marker and are never read. Runs of the same block by two
-- readers at once are both complete; a reader takes the latest.
--
-- shape is a digest of the aggregate's filter (its conditions besides
-- time, as compiled) and its groupBy fields; g0..g2 hold the group values.
-- Rows leave when they could no longer be used (TTL): at the expiry of the
-- day's first event to expire, or 30 days after the run. This is a cache
-- each ClickHouse node keeps for the readers connected to it (in a
-- cluster too: it is not sharded), filled from the events as any node
-- reads them.
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
