-- When each hour of each org last received events: one row per (org, hour
-- of the events' timestamps) written by every INSERT into events, whoever
-- writes it (the ingest path, a migration, a bench loading raw rows).
--
-- Readers keep the exact number of events of an hour (counted with FINAL,
-- without the expired ones) and use it again while the hour has had no
-- write since and none of its events has expired: a page's total over 30
-- days adds 720 known hours instead of scanning millions of events. A
-- re-sent copy of an event is a write, so the hour is counted again and
-- the copies still count once. Readers trust only marks older than a few
-- minutes (a view's row may become visible just before its events' part).
--
-- The rows of a write carry its time; ReplacingMergeTree keeps the latest
-- of an hour in time, and readers take max(written) over any copies not yet
-- merged. A copy-and-swap of events (as 0007 did) must recreate the view.
CREATE TABLE IF NOT EXISTS event_hours
(
    org_id  LowCardinality(String),
    hour    DateTime('UTC'),
    written DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(written)
ORDER BY (org_id, hour)
SETTINGS index_granularity = 8192;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_hours_mv TO event_hours AS
SELECT org_id, toStartOfHour(timestamp) AS hour, now64(6) AS written
FROM events
GROUP BY org_id, hour;

-- The hours of the events stored before this migration.
INSERT INTO event_hours
SELECT org_id, toStartOfHour(timestamp), now64(6)
FROM events
GROUP BY org_id, toStartOfHour(timestamp);
