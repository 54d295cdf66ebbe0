package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// variant is one way of storing and inserting the same rows: the real
// schema with one part removed or changed (DDL), or the real schema
// inserted another way (insert).
type variant struct {
	name string
	// ddl changes the events table; nil keeps it.
	ddl func(t *tableDDL) error
	// noView leaves out the lookup table's materialized view; noHours the
	// hour counts' (event_hours_mv).
	noView, noHours bool
	// noHashes leaves metadata_hashes out of the INSERT (the column's
	// DEFAULT, if the table still has it, computes it in ClickHouse).
	noHashes bool
	// batch is the rows per INSERT; 0 keeps -batch.
	batch int
	// writers is the number of concurrent INSERTs; 0 means 1.
	writers int
	// chunk sends each INSERT's rows in blocks of this many rows; 0 keeps
	// the pipeline's (ingest.InsertChunk), -1 sends each INSERT as one block.
	chunk int
	// settings are added to (or, with an empty value, removed from) the
	// insert's settings; each must be known to the server.
	settings map[string]string
	// index names the skip index the variant removes, for the report of
	// what it buys.
	index string
}

// skipIndexes are the events table's skip indexes that a variant may drop;
// the list is checked against the migrated table.
var skipIndexes = []string{"idx_id", "idx_event_type", "idx_actor_id", "idx_actor_email",
	"idx_resource_id", "idx_trace_id", "idx_ip_address", "idx_ingest_seq"}

// metadataColumns hold JSON objects of a few hundred bytes.
func metadataColumns(c string) bool { return c == "event_metadata" || c == "actor_metadata" }

// variants returns every variant, baseline first.
func variants(batch int) []variant {
	vs := []variant{{name: "baseline (the migrated schema, as the pipeline inserts)"}}
	for _, idx := range skipIndexes {
		vs = append(vs, variant{name: "without " + idx, index: idx, ddl: func(t *tableDDL) error { return t.dropIndex(idx) }})
	}
	vs = append(vs, variant{name: "without any skip index", ddl: func(t *tableDDL) error {
		for _, idx := range skipIndexes {
			if err := t.dropIndex(idx); err != nil {
				return err
			}
		}
		return nil
	}})
	vs = append(vs,
		variant{name: "without the events_by_key view", noView: true},
		variant{name: "without the event_hours view", noHours: true},
		variant{name: "metadata ZSTD(3) -> ZSTD(1)", ddl: codec("ZSTD(3)", "ZSTD(1)", metadataColumns)},
		variant{name: "metadata ZSTD(3) -> LZ4", ddl: codec("ZSTD(3)", "LZ4", metadataColumns)},
		variant{name: "other ZSTD(1) columns (not times) -> LZ4", ddl: codec("ZSTD(1)", "LZ4", func(c string) bool {
			return !metadataColumns(c) && c != "timestamp" && c != "received_at" && c != "created_at" && c != "expires_at" && c != "ingest_seq"
		})},
		variant{name: "times: Delta, ZSTD(1) -> ZSTD(1)", ddl: codec("Delta(8), ZSTD(1)", "ZSTD(1)", nil)},
		variant{name: "every codec -> LZ4 (server default)", ddl: codec("", "", nil)},
		variant{name: "granules of 10 MiB (index_granularity_bytes default)", ddl: func(t *tableDDL) error {
			t.setSetting("index_granularity_bytes", "10485760")
			return nil
		}},
		variant{name: "compressed blocks of 64 KiB-1 MiB (ClickHouse's default; 8-64 KiB since 0014)", ddl: func(t *tableDDL) error {
			if !strings.Contains(t.tail, "min_compress_block_size = ") {
				return errors.New("the events table no longer sets min_compress_block_size")
			}
			t.setSetting("min_compress_block_size", "65536")
			t.setSetting("max_compress_block_size", "1048576")
			return nil
		}},
		variant{name: "parts under 2 batches Compact (min_rows_for_wide_part = 2 x -batch)", ddl: func(t *tableDDL) error {
			t.setSetting("min_rows_for_wide_part", strconv.Itoa(2*batch))
			return nil
		}},
		variant{name: "index_granularity 16384", ddl: func(t *tableDDL) error {
			t.setSetting("index_granularity", "16384")
			return nil
		}},
		variant{name: "sort key: PRIMARY KEY (org_id, timestamp), id only in the order", ddl: func(t *tableDDL) error {
			const order = "ORDER BY (org_id, timestamp, id)"
			if !strings.Contains(t.tail, order) {
				return fmt.Errorf("the events table is no longer %s", order)
			}
			t.tail = strings.Replace(t.tail, order, "PRIMARY KEY (org_id, timestamp)\n"+order, 1)
			return nil
		}},
		variant{name: "without metadata_hashes", noHashes: true, ddl: func(t *tableDDL) error { return t.dropColumn("metadata_hashes") }},
		variant{name: "metadata_hashes by the column's DEFAULT (ClickHouse computes)", noHashes: true},
		variant{name: "insert_deduplicate = 0 (no token)", settings: map[string]string{"insert_deduplicate": "0", "insert_deduplication_token": "",
			"deduplicate_blocks_in_dependent_materialized_views": ""}},
		variant{name: "optimize_on_insert = 1 (as before 2026-12-01)", settings: map[string]string{"optimize_on_insert": "1"}},
		variant{name: "materialize_skip_indexes_on_insert = 0", settings: map[string]string{"materialize_skip_indexes_on_insert": "0"}},
		variant{name: "parallel_view_processing = 1", settings: map[string]string{"parallel_view_processing": "1"}},
		variant{name: "LowCardinality columns sent as String (low_cardinality_allow_in_native_format = 0)", settings: map[string]string{"low_cardinality_allow_in_native_format": "0"}},
		variant{name: "2 concurrent INSERTs", writers: 2},
		variant{name: "each INSERT sent as one block (as before 2026-12-03)", chunk: -1},
		variant{name: "sent in blocks of 32,768 rows", chunk: 32768},
	)
	for _, b := range []int{batch / 10, batch / 2, batch * 2, batch * 5} {
		if b > 0 && b != batch {
			vs = append(vs, variant{name: fmt.Sprintf("INSERTs of %d rows", b), batch: b})
		}
	}
	return vs
}

// codec changes the codec from -> to of the columns only accepts (nil:
// all); it fails when no column has that codec, so that a schema change
// does not leave a variant silently equal to the baseline.
func codec(from, to string, only func(string) bool) func(t *tableDDL) error {
	return func(t *tableDDL) error {
		if t.setCodec(from, to, only) == 0 {
			return fmt.Errorf("no column has CODEC(%s)", from)
		}
		return nil
	}
}

// selectVariants keeps the variants whose names contain one of the
// comma-separated words (the baseline always: ratios need it).
func selectVariants(all []variant, only string) []variant {
	if only == "" {
		return all
	}
	out := all[:1:1]
	for _, v := range all[1:] {
		for _, w := range strings.Split(only, ",") {
			if w = strings.TrimSpace(w); w != "" && strings.Contains(v.name, w) {
				out = append(out, v)
				break
			}
		}
	}
	return out
}
