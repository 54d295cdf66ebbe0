package pg

import (
	"fmt"
	"os"
	"strings"
)

// ProductionSettings are what a production user tunes for a bulk, append-
// mostly audit table on a dedicated machine of memBytes of memory: the
// common guidance (shared_buffers a quarter of memory, capped at 8 GiB;
// effective_cache_size half; a large max_wal_size so that bulk loads do not
// checkpoint every few seconds; SSD costs; compressed full-page images).
// Durability stays PostgreSQL's default: fsync, synchronous_commit and
// full_page_writes on.
func ProductionSettings(memBytes int64) map[string]string {
	const gib = 1 << 30
	mib := func(b int64) string { return fmt.Sprintf("%dMB", b>>20) }
	shared := min(memBytes/4, 8*gib)
	return map[string]string{
		"shared_buffers":               mib(shared),
		"effective_cache_size":         mib(memBytes / 2),
		"maintenance_work_mem":         mib(min(memBytes/16, 2*gib)),
		"work_mem":                     "64MB",
		"wal_buffers":                  "64MB",
		"max_wal_size":                 "16GB",
		"min_wal_size":                 "1GB",
		"checkpoint_timeout":           "15min",
		"checkpoint_completion_target": "0.9",
		"wal_compression":              "lz4",
		"random_page_cost":             "1.1",
		"effective_io_concurrency":     "200",
		"fsync":                        "on",
		"synchronous_commit":           "on",
		"full_page_writes":             "on",
	}
}

// MemTotal returns the machine's memory in bytes (0 if unknown).
func MemTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
