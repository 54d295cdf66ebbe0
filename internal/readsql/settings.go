package readsql

import (
	"strconv"
	"strings"
)

// Setting is one ClickHouse setting of the reads through a filter.
type Setting struct {
	Name  string
	Value int
}

// ReadSettings are the settings of every read through a filter (lists,
// counts, aggregates, exports). Each is sound because the copies of a
// re-sent event (same org_id, timestamp and id) carry the same event: they
// differ at most in received_at, expires_at and the ingest columns, which
// no filter but the expiry looks at:
//
//   - do_not_merge_across_partitions_select_final: the partition key is
//     (retention days, event day), the same for every copy, so FINAL may
//     fold each partition on its own; a partition of one part needs no
//     merging at all. Measured about 2x faster on the page and count shapes.
//   - use_skip_indexes_if_final with exact mode off: a skip index drops a
//     granule only when none of its rows can match; the copies of an event
//     all match or all fail, so reading only the surviving copies still
//     yields each matching event once. Exact mode would re-add every granule
//     with the same key range (for the bloom filters on resource, trace and
//     actor ids: all of the org's range), costing 3-6x on those shapes.
//   - optimize_move_to_prewhere_if_final: filtering copies before the merge
//     gives the same result for the same reason.
//   - use_uncompressed_cache: read column blocks through the server's cache
//     of decompressed blocks, where it has one (uncompressed_cache_size;
//     the embedded engine's is engine.Config.UncompressedCache, an
//     external server's its own configuration, 0 by default: then this
//     does nothing). A cache, not a change of meaning: parts are
//     immutable, so a block cached is the block on disk. The newest hours
//     a page reads, the columns a count or a filtered view scans again,
//     come from memory instead of being decompressed at every request.
//
// The one filter on a column copies may not share is the expiry: a copy
// received later expires later, so for at most the delay between the two
// receipts the event is still shown by its later copy, and only once.
//
// Settings unknown to the server (older releases) are left out: run
// SettingsProbe and keep those KnownSettings returns.
var ReadSettings = []Setting{
	{"do_not_merge_across_partitions_select_final", 1},
	{"use_skip_indexes_if_final", 1},
	{"use_skip_indexes_if_final_exact_mode", 0},
	{"optimize_move_to_prewhere_if_final", 1},
	{"use_uncompressed_cache", 1},
}

// ReadSettingsText returns ReadSettings as text, for a server that knows
// them all (benchmarks running the same statements straight on ClickHouse).
func ReadSettingsText() map[string]string {
	m := make(map[string]string, len(ReadSettings))
	for _, st := range ReadSettings {
		m[st.Name] = strconv.Itoa(st.Value)
	}
	return m
}

// SettingsProbe selects the names of the ReadSettings the server knows
// (one String column).
func SettingsProbe() Statement {
	names := make([]string, len(ReadSettings))
	for i, st := range ReadSettings {
		names[i] = "'" + st.Name + "'" // our constants
	}
	return Statement{SQL: "SELECT name FROM system.settings WHERE name IN (" + strings.Join(names, ", ") + ")"}
}

// KnownSettings returns the ReadSettings among the names SettingsProbe
// returned.
func KnownSettings(known []string) []Setting {
	var out []Setting
	for _, st := range ReadSettings {
		for _, n := range known {
			if n == st.Name {
				out = append(out, st)
				break
			}
		}
	}
	return out
}
