package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/auditstore/auditstore/ingest/wal"
)

// A batch's boundaries depend on timing (FlushInterval, what had arrived),
// so a replay after a crash would cut its batches differently, and its
// first batch would get another deduplication token than the batch that
// was in flight: rows ClickHouse had already taken would be written a
// second time. Before the first INSERT attempt of a batch, its exact
// extent (records, token, and the sub-batches of a bisection) is recorded
// durably in WALDIR/inflight.json; at the next start, if it names records
// not yet committed, the replay's first batch is exactly that extent, sent
// with the same tokens, and ClickHouse deduplicates what it had taken.
//
// Only the batch being inserted is recorded: batches are inserted and
// committed one at a time, in log order, and the batch the filler prepares
// meanwhile has not been sent.
const inflightFile = "inflight.json"

// inflight is the batch being inserted.
type inflight struct {
	// Epoch is the log's (a wiped log starts over).
	Epoch string `json:"epoch"`
	// First and Last are its write-ahead log records: all their rows.
	First wal.LSN `json:"first"`
	Last  wal.LSN `json:"last"`
	// Token is its insert deduplication token; a sub-batch of a bisection
	// has Token and its path ("a" first half, "b" second, "ab"...).
	Token string `json:"token"`
	// Split lists the paths ClickHouse refused whole and that were
	// bisected: a replay bisects them at once (sending one whole again
	// might store the halves that had landed a second time, if the cause
	// of the refusal was lifted in between).
	Split []string `json:"split,omitempty"`
	// Quarantined lists the paths (single events) set aside in the
	// quarantine: a replay does not send them.
	Quarantined []string `json:"quarantined,omitempty"`

	// mu guards Split and Quarantined: on a cluster, the parts of a batch
	// for each shard are inserted at once (a path of a shard's part starts
	// with "-s<shard number>", and its token is Token and that path).
	mu sync.Mutex
}

func (f *inflight) split(path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.Split, path)
}

func (f *inflight) quarantined(path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.Quarantined, path)
}

// addSplit and addQuarantined record path in f, durably.
func (p *Pipeline) addSplit(f *inflight, path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Split = append(f.Split, path)
	p.saveInflightLocked(f)
}

func (p *Pipeline) addQuarantined(f *inflight, path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Quarantined = append(f.Quarantined, path)
	p.saveInflightLocked(f)
}

// saveInflight records f durably (temporary file, fsync, rename, fsync of
// the directory). A failure is logged, not fatal: the batch is inserted
// all the same (a crash before the next record may then store the rows
// ClickHouse had taken a second time, which reads fold), since stopping
// inserts would also stop the log from freeing its space.
func (p *Pipeline) saveInflight(f *inflight) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.saveInflightLocked(f)
}

func (p *Pipeline) saveInflightLocked(f *inflight) {
	b, err := json.Marshal(f)
	if err == nil {
		err = writeDurable(p.cfg.WAL.Dir, inflightFile, b)
	}
	if err != nil {
		p.log.Error("ingest: cannot record the batch being inserted; inserting it all the same", "first", f.First, "last", f.Last, "error", err)
	}
}

// loadInflight returns the batch that was being inserted when the previous
// run stopped, if its records are not yet committed, else nil.
func (p *Pipeline) loadInflight() *inflight {
	b, err := os.ReadFile(filepath.Join(p.cfg.WAL.Dir, inflightFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var f inflight
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		err = fmt.Errorf("read %s: %w", inflightFile, err)
	}
	committed, durable := p.wal.Committed(), p.wal.Durable()
	if err == nil && f.Epoch == p.wal.Epoch() && f.First > committed+1 && f.First <= f.Last && f.Last <= durable {
		// A batch is recorded only once the one before it is confirmed:
		// the records before it are in ClickHouse (or the quarantine), and
		// only their commit failed to reach the disk. Commit them now
		// rather than replay them in batches cut differently.
		if err = p.wal.Commit(f.First - 1); err == nil {
			p.log.Info("ingest: committed the records confirmed before the batch in flight", "from", committed+1, "to", f.First-1)
			committed = f.First - 1
		}
	}
	switch {
	case err != nil:
	case f.Epoch != p.wal.Epoch() || f.Last <= committed:
		return nil // committed, or of a log since wiped
	case f.First != committed+1 || f.Last < f.First || f.Last > durable || f.Token == "":
		err = fmt.Errorf("%s names records %d to %d; the log has %d to %d uncommitted", inflightFile, f.First, f.Last, committed+1, durable)
	}
	if err != nil {
		p.log.Warn("ingest: the batch in flight when the server stopped is unknown; replaying with fresh batches (rows ClickHouse had taken may be stored twice, which reads fold)", "error", err)
		return nil
	}
	return &f
}
