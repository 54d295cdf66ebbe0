package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/auditstore/auditstore/internal/readsql"
)

// stepSel is a continuous step: the events of node after..upto.
type stepSel struct {
	node        string
	after, upto uint64
}

// result is what a step wrote.
type result struct {
	files []fileRow
}

func (s *Service) acquire(ctx context.Context) bool {
	select {
	case s.writes <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Service) release() { <-s.writes }

// pending counts the destination's events of node after..upto, and returns
// the receive time of the oldest.
func (s *Service) pending(ctx context.Context, d def, node string, after, upto uint64) (uint64, time.Time, error) {
	p := clickhouse.Parameters{}
	sel := stepSelection(d.org, node, after, upto, d.created, p)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	var n uint64
	var oldest time.Time
	if err := s.store.conn.QueryRow(params(ctx, p), sel.sel.Pending().SQL).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("count pending events: %w", err)
	}
	return n, oldest, nil
}

// nthSeq returns the ingest_seq of the n-th of the destination's events of
// node after..upto: the end of a step of n events.
func (s *Service) nthSeq(ctx context.Context, d def, node string, after, upto, n uint64) (uint64, error) {
	st := readsql.LakeStep(d.org, node, after, upto, d.created).Nth(n)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	var seq uint64
	if err := s.store.conn.QueryRow(params(ctx, st.Params), st.SQL).Scan(&seq); err != nil {
		return 0, fmt.Errorf("cut a step: %w", err)
	}
	return seq, nil
}

// startSeq is where a destination starts on a node that has no watermark
// yet: after the node's last event of its scope received before the
// destination was created.
func (s *Service) startSeq(ctx context.Context, d def, node string, upto uint64) (uint64, error) {
	st := readsql.StreamStart(d.org, node, d.created, upto)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	var seq uint64
	if err := s.store.conn.QueryRow(params(ctx, st.Params), st.SQL).Scan(&seq); err != nil {
		return 0, fmt.Errorf("find the destination's start on node %s: %w", node, err)
	}
	return seq, nil
}

// deliver writes a step: the files, their rows in lake_files, the
// manifests of the partitions they touch.
func (s *Service) deliver(ctx context.Context, snap *snapshot, st stepSel, name string) (result, error) {
	p := clickhouse.Parameters{}
	sel := stepSelection(snap.d.org, st.node, st.after, st.upto, snap.d.created, p)
	return s.write(ctx, snap, sel, p, name, st)
}

// write writes the events of sel (parameters in p) as file name in each
// partition, then records and lists them.
func (s *Service) write(ctx context.Context, snap *snapshot, sel selection, p clickhouse.Parameters, name string, st stepSel) (result, error) {
	lay := snap.t.layout()
	parts, err := s.partitions(ctx, lay, sel, p)
	if err != nil || len(parts) == 0 {
		return result{}, err
	}
	if !s.acquire(ctx) {
		return result{}, ctx.Err()
	}
	defer s.release()
	if err := s.checkAddress(ctx, snap.t); err != nil {
		return result{}, err
	}
	wp := clickhouse.Parameters{}
	for k, v := range p {
		wp[k] = v
	}
	out := outputOf(snap.t, wp)
	q := writeSQL(snap.loc, lay, out, sel, name, wp)
	if err := s.at("writing"); err != nil {
		return result{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	err = s.store.conn.Exec(params(wctx, wp, clickhouse.WithSettings(writeSettings(snap.loc))), q)
	cancel()
	if err != nil {
		return result{}, fmt.Errorf("write files: %s", scrub(err.Error(), snap.loc.secrets))
	}
	if err := s.at("written"); err != nil {
		return result{}, err
	}
	var res result
	now := s.now().UTC()
	for _, part := range parts {
		f, ok, err := s.stat(ctx, snap, out, part, name)
		if err != nil {
			return result{}, err
		}
		if !ok { // no event of this partition was left to write (expired meanwhile)
			continue
		}
		f.node, f.written = st.node, now
		if st.node != "" {
			f.seqFrom, f.seqTo = st.after+1, st.upto
		}
		if err := s.store.putFile(ctx, f); err != nil {
			return result{}, err
		}
		res.files = append(res.files, f)
	}
	if err := s.at("recorded"); err != nil {
		return result{}, err
	}
	for _, f := range res.files {
		if err := s.writeManifest(ctx, snap, f.partition); err != nil {
			return result{}, err
		}
	}
	return res, s.at("manifests")
}

// partitions lists the partitions of the events of sel.
func (s *Service) partitions(ctx context.Context, lay layout, sel selection, p clickhouse.Parameters) ([]string, error) {
	qp := clickhouse.Parameters{}
	for k, v := range p {
		qp[k] = v
	}
	q := partitionsSQL(lay, sel, qp)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	rows, err := s.store.conn.Query(params(ctx, qp), q)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var part string
		var n uint64
		if err := rows.Scan(&part, &n); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		out = append(out, part)
	}
	return out, rows.Err()
}

// stat reads a written file back: its rows, time range, size and checksum
// (S3: the object's ETag; a directory: the SHA-256 of the file). ok is
// false when the file does not exist.
func (s *Service) stat(ctx context.Context, snap *snapshot, out output, part, name string) (fileRow, bool, error) {
	p := clickhouse.Parameters{"furl": snap.loc.base + part + name}
	sum := "''"
	if snap.loc.s3 {
		sum = "concat('etag:', replaceAll(any(_etag), '\"', ''))"
	}
	q := "SELECT count(), min(" + out.timeExpr + "), max(" + out.timeExpr + "), any(_size), " + sum +
		" FROM " + snap.loc.function("furl", "Parquet", p)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	f := fileRow{dest: snap.d.id, partition: part, name: name}
	var size *uint64
	if err := s.store.conn.QueryRow(params(ctx, p), q).Scan(&f.rows, &f.minTime, &f.maxTime, &size, &f.checksum); err != nil {
		if missing(err) {
			return f, false, nil
		}
		return f, false, fmt.Errorf("read back %s: %s", part+name, scrub(err.Error(), snap.loc.secrets))
	}
	if size != nil {
		f.bytes = *size
	}
	if !snap.loc.s3 {
		rp := clickhouse.Parameters{"furl": p["furl"]}
		if err := s.store.conn.QueryRow(params(ctx, rp), "SELECT concat('sha256:', lower(hex(SHA256(raw)))) FROM "+
			"file({furl:String}, 'RawBLOB', 'raw String')").Scan(&f.checksum); err != nil {
			return f, false, fmt.Errorf("checksum %s: %w", part+name, err)
		}
	}
	return f, true, nil
}

// writeFileAtomic writes a file through a temporary one renamed into
// place, synced, so that a reader sees the old or the new file whole.
func writeFileAtomic(name string, body []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".manifest-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// missing tells a file or object that does not exist from other errors.
func missing(err error) bool {
	msg := err.Error()
	for _, s := range []string{"FILE_DOESNT_EXIST", "CANNOT_STAT", "HTTP response code: 404", "NoSuchKey", "NO_SUCH_KEY"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Manifest is a partition's _manifest.json: every file of the partition.
// It is written after its files, so a reader that goes by it never meets a
// partial file; files not listed (an attempt cut short) are to be ignored.
type Manifest struct {
	Version     int            `json:"version"`
	Destination string         `json:"destination"`
	Partition   string         `json:"partition"`
	Format      string         `json:"format"`
	Rows        uint64         `json:"rows"`
	Files       []ManifestFile `json:"files"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

// ManifestFile is one file of a manifest. Checksum is "etag:<ETag>" (S3:
// the MD5 of a single-part upload, S3's multipart digest otherwise) or
// "sha256:<hex>" (a directory).
type ManifestFile struct {
	Name      string    `json:"name"`
	Rows      uint64    `json:"rows"`
	Bytes     uint64    `json:"bytes"`
	Checksum  string    `json:"checksum"`
	MinTime   time.Time `json:"minTime"`
	MaxTime   time.Time `json:"maxTime"`
	Node      string    `json:"node,omitempty"`
	SeqFrom   uint64    `json:"seqFrom,omitempty"`
	SeqTo     uint64    `json:"seqTo,omitempty"`
	WrittenAt time.Time `json:"writtenAt"`
}

// ManifestName is the name of a partition's manifest.
const ManifestName = "_manifest.json"

// writeManifest writes a partition's manifest from lake_files, then checks
// that no file was added meanwhile (by another node): the last manifest
// written therefore lists every file recorded before it.
func (s *Service) writeManifest(ctx context.Context, snap *snapshot, part string) error {
	var written []string
	for attempt := 0; attempt < 5; attempt++ {
		files, err := s.store.files(ctx, snap.d.id, part)
		if err != nil {
			return err
		}
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.name
		}
		if written != nil && slices.Equal(names, written) {
			return nil
		}
		m := Manifest{Version: 1, Destination: snap.d.id, Partition: part, Format: snap.t.Format,
			Files: make([]ManifestFile, 0, len(files)), UpdatedAt: s.now().UTC()}
		for _, f := range files {
			m.Rows += f.rows
			m.Files = append(m.Files, ManifestFile{Name: f.name, Rows: f.rows, Bytes: f.bytes, Checksum: f.checksum,
				MinTime: f.minTime, MaxTime: f.maxTime, Node: f.node, SeqFrom: f.seqFrom, SeqTo: f.seqTo, WrittenAt: f.written})
		}
		body, _ := json.MarshalIndent(m, "", " ")
		if !snap.loc.s3 && s.cfg.DirLocal {
			if err := writeFileAtomic(snap.loc.base+part+ManifestName, body); err != nil {
				return fmt.Errorf("write manifest of %s: %w", part, err)
			}
			written = names
			continue
		}
		p := clickhouse.Parameters{"murl": snap.loc.base + part + ManifestName, "body": string(body)}
		q := "INSERT INTO FUNCTION " + snap.loc.function("murl", "RawBLOB", p) + " SELECT {body:String}"
		wctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
		err = s.store.conn.Exec(params(wctx, p, clickhouse.WithSettings(clickhouse.Settings{snap.loc.truncate(): 1})), q)
		cancel()
		if err != nil {
			return fmt.Errorf("write manifest of %s: %s", part, scrub(err.Error(), snap.loc.secrets))
		}
		written = names
	}
	return fmt.Errorf("manifest of %s: files kept being added; retrying", part)
}
