package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// spool keeps the events handed to Send on disk until the server has
// acknowledged (or refused) them: append-only NDJSON files, fsynced before
// Send returns, each deleted once it is closed and every event in it is
// settled. A producer started on the directory sends what is left (again:
// ids make that harmless).
type spool struct {
	dir      string
	segBytes int64
	log      *slog.Logger

	mu   sync.Mutex
	cur  *segment
	next int
}

type segment struct {
	path    string
	f       *os.File // the file being appended to; nil once closed
	size    int64
	pending int // events not yet settled
}

const spoolExt = ".ndjson"

// openSpool opens dir (creating it) and returns the events its files hold.
func openSpool(dir string, segBytes int64, log *slog.Logger) (*spool, []*item, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("client: spool: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+spoolExt))
	if err != nil {
		return nil, nil, fmt.Errorf("client: spool: %w", err)
	}
	sort.Strings(names)
	s := &spool{dir: dir, segBytes: segBytes, log: log}
	var items []*item
	for _, name := range names {
		seq, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(name), spoolExt))
		if err != nil {
			continue // not ours
		}
		s.next = max(s.next, seq+1)
		got, err := s.read(name)
		if err != nil {
			return nil, nil, err
		}
		items = append(items, got...)
	}
	return s, items, nil
}

// read returns the events of one file of an earlier run. A last line
// without its newline was cut by a crash during the write that Send was
// still waiting for: it was never handed over, and is dropped.
func (s *spool) read(name string) ([]*item, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("client: spool: %w", err)
	}
	seg := &segment{path: name, size: int64(len(b))}
	var items []*item
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // an unterminated tail: never handed over
		}
		line := b[:i]
		b = b[i+1:]
		if len(line) == 0 {
			continue
		}
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(line, &head); err != nil || head.ID == "" {
			s.log.Warn("auditstore client: skipping an unreadable spool line", "file", name)
			continue
		}
		items = append(items, &item{raw: line, id: head.ID, index: -1, seg: seg})
	}
	seg.pending = len(items)
	if seg.pending == 0 {
		if err := os.Remove(name); err != nil {
			return nil, fmt.Errorf("client: spool: %w", err)
		}
	}
	return items, nil
}

// append writes items to the current file and fsyncs it.
func (s *spool) append(items []*item) error {
	var buf bytes.Buffer
	for _, it := range items {
		buf.Write(it.raw)
		buf.WriteByte('\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		path := filepath.Join(s.dir, fmt.Sprintf("%012d%s", s.next, spoolExt))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("client: spool: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
		s.next++
		s.cur = &segment{path: path, f: f}
	}
	seg := s.cur
	_, err := seg.f.Write(buf.Bytes())
	if err == nil {
		err = seg.f.Sync()
	}
	if err != nil {
		// What was written may be torn: never append after it.
		s.seal(seg)
		return fmt.Errorf("client: spool write: %w", err)
	}
	seg.size += int64(buf.Len())
	seg.pending += len(items)
	for _, it := range items {
		it.seg = seg
	}
	if seg.size >= s.segBytes {
		s.seal(seg)
	}
	return nil
}

// seal closes the current file; it is deleted once settled.
func (s *spool) seal(seg *segment) {
	if seg.f != nil {
		seg.f.Close()
		seg.f = nil
	}
	if s.cur == seg {
		s.cur = nil
	}
	s.removeIfSettled(seg)
}

// done settles n events of seg.
func (s *spool) done(seg *segment, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg.pending -= n
	if seg.pending == 0 {
		s.seal(seg) // a settled current file too: the spool holds only what is unsettled
	}
}

func (s *spool) removeIfSettled(seg *segment) {
	if seg.pending > 0 || seg.path == "" {
		return
	}
	if err := os.Remove(seg.path); err != nil && !os.IsNotExist(err) {
		s.log.Warn("auditstore client: cannot remove a settled spool file", "file", seg.path, "error", err)
	}
	seg.path = ""
}

// close closes the current file, deleting it if settled.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.seal(s.cur)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("client: spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("client: spool: sync dir: %w", err)
	}
	return nil
}
