package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// The quarantine keeps, in files that survive restarts, what ClickHouse
// refuses for good (see permanent) and write-ahead log records that fail
// their checksum or cannot be decoded: set aside, they no longer block the
// events behind them, and the operator lists, replays or discards them
// (GET /v1/quarantine, auditctl quarantine).
//
// On disk: WALDIR/quarantine/ID.json, one per entry, written durably
// (fsync, rename, fsync of the directory) before the log is committed past
// the record it came from.
const quarantineDirName = "quarantine"

// QuarantineEntry describes events (or a damaged record) set aside.
type QuarantineEntry struct {
	ID            string    `json:"id"`
	QuarantinedAt time.Time `json:"quarantinedAt"`
	// LSN is the write-ahead log record it came from.
	LSN uint64 `json:"lsn"`
	// Events and EventIDs are what it holds (none for a damaged record).
	Events   int      `json:"events"`
	EventIDs []string `json:"eventIds,omitempty"`
	Orgs     []string `json:"orgs,omitempty"`
	// Reason is why: ClickHouse's error, or the damage found.
	Reason string `json:"reason"`
	// ClickHouseCode is ClickHouse's error code, when it refused the events.
	ClickHouseCode int32 `json:"clickhouseCode,omitempty"`
	// Damaged is true for a record that cannot be read back into events:
	// it can only be discarded (its bytes are kept in the file for analysis).
	Damaged bool `json:"damaged,omitempty"`
}

// quarantineFile is an entry with its record: rows in the log's encoding,
// or the damaged bytes as they were read.
type quarantineFile struct {
	QuarantineEntry
	Record []byte `json:"record"`
}

var quarantineID = regexp.MustCompile(`^[0-9a-z]{1,32}-[0-9]{1,20}-[0-9a-z]{1,16}$`)

type quarantine struct {
	dir    string
	mu     sync.Mutex
	events map[string]int // id -> events held
}

func openQuarantine(walDir string) (*quarantine, error) {
	q := &quarantine{dir: filepath.Join(walDir, quarantineDirName), events: map[string]int{}}
	if err := os.MkdirAll(q.dir, 0o755); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	entries, err := q.list()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		q.events[e.ID] = e.Events
	}
	return q, nil
}

// put stores an entry durably; storing the same id again (a batch replayed
// after a crash) replaces it.
func (q *quarantine) put(e QuarantineEntry, record []byte) error {
	b, err := json.Marshal(quarantineFile{QuarantineEntry: e, Record: record})
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := writeDurable(q.dir, e.ID+".json", b); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	q.events[e.ID] = e.Events
	return nil
}

// list returns the entries, oldest first.
func (q *quarantine) list() ([]QuarantineEntry, error) {
	names, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	var out []QuarantineEntry
	for _, n := range names {
		id, ok := strings.CutSuffix(n.Name(), ".json")
		if !ok || !quarantineID.MatchString(id) {
			continue // a temporary file left by a crash, or not ours
		}
		f, err := q.get(id)
		if err != nil {
			return nil, err
		}
		out = append(out, f.QuarantineEntry)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].QuarantinedAt.Before(out[j].QuarantinedAt) })
	return out, nil
}

var errNoEntry = errors.New("no such quarantine entry")

// get reads one entry; an id that is not of the quarantine's form is
// simply not found (it never becomes a path).
func (q *quarantine) get(id string) (quarantineFile, error) {
	var f quarantineFile
	if !quarantineID.MatchString(id) {
		return f, errNoEntry
	}
	b, err := os.ReadFile(filepath.Join(q.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return f, errNoEntry
	}
	if err != nil {
		return f, fmt.Errorf("quarantine: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("quarantine: entry %s: %w", id, err)
	}
	return f, nil
}

// remove deletes an entry.
func (q *quarantine) remove(id string) error {
	if !quarantineID.MatchString(id) {
		return errNoEntry
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	err := os.Remove(filepath.Join(q.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return errNoEntry
	}
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	delete(q.events, id)
	return syncDir(q.dir)
}

// size returns the entries and the events they hold.
func (q *quarantine) size() (entries, events int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, n := range q.events {
		events += n
	}
	return len(q.events), events
}

// writeDurable replaces dir/name with b: temporary file, fsync, rename,
// fsync of the directory.
func writeDurable(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
