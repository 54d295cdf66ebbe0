-- Let a retried INSERT (same insert_deduplication_token) be a no-op on a
-- non-replicated MergeTree too: the ingest path retries a batch whose first
-- attempt may have landed, with the same token.
ALTER TABLE events MODIFY SETTING non_replicated_deduplication_window = 10000;
