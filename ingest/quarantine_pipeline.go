package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/auditstore/auditstore/ingest/wal"
	"github.com/auditstore/auditstore/schema"
)

// quarantineRow sets aside row 0 of cols, which ClickHouse refused with
// err. It returns false only when ctx ended before the entry was stored.
func (p *Pipeline) quarantineRow(ctx context.Context, cols *columns, err error) bool {
	_, code := permanent(err)
	seq := cols.seq[0]
	lsn, idx := wal.LSN(seq>>16), int(seq&(1<<16-1))
	row := cols.row(0)
	e := QuarantineEntry{
		ID:            fmt.Sprintf("%s-%d-%d", p.wal.Epoch(), lsn, idx),
		QuarantinedAt: time.Now().UTC(), LSN: uint64(lsn), Events: 1,
		EventIDs: []string{row.ID.String()}, Orgs: []string{row.OrgID},
		Reason: err.Error(), ClickHouseCode: code,
	}
	if !p.putQuarantine(ctx, e, encodeRows(nil, []schema.Row{row})) {
		return false
	}
	p.m.quarantined.Inc()
	p.log.Error("ingest: ClickHouse refuses an event for good; set aside in the quarantine (see auditctl quarantine)",
		"id", e.ID, "org", row.OrgID, "event_id", e.EventIDs[0], "lsn", lsn, "clickhouse_code", code, "error", err)
	return true
}

// quarantineRecord sets aside a log record that cannot be read back into
// events (its checksum fails, or it does not decode). It returns false
// only when ctx ended before the entry was stored.
func (p *Pipeline) quarantineRecord(ctx context.Context, lsn wal.LSN, rec []byte, cause error) bool {
	e := QuarantineEntry{
		ID:            fmt.Sprintf("%s-%d-record", p.wal.Epoch(), lsn),
		QuarantinedAt: time.Now().UTC(), LSN: uint64(lsn), Damaged: true,
		Reason: cause.Error(),
	}
	if !p.putQuarantine(ctx, e, append([]byte(nil), rec...)) {
		return false
	}
	p.m.quarantinedRecords.Inc()
	p.log.Error("ingest: damaged write-ahead log record set aside in the quarantine; its events cannot be read",
		"id", e.ID, "lsn", lsn, "bytes", len(rec), "error", cause)
	return true
}

// putQuarantine stores e, retrying while the disk refuses: the log is not
// committed past the record until its entry is durable.
func (p *Pipeline) putQuarantine(ctx context.Context, e QuarantineEntry, rec []byte) bool {
	backoff := p.cfg.RetryMin
	for {
		err := p.q.put(e, rec)
		if err == nil {
			return true
		}
		p.log.Error("ingest: cannot write to the quarantine; retrying (the events stay in the write-ahead log)", "error", err)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(backoff*2, p.cfg.RetryMax)
	}
}

// Degraded returns what works but needs the operator: events in the
// quarantine, damage found in the write-ahead log when it was opened
// (reported while its copy is kept in WALDIR/damaged/). Unlike Health, none of
// it stops the node from taking and delivering events.
func (p *Pipeline) Degraded() []string {
	var out []string
	if entries, events := p.q.size(); entries > 0 {
		out = append(out, fmt.Sprintf("%d quarantine entries (%d events) that ClickHouse refused or that were damaged: list them with auditctl quarantine list",
			entries, events))
	}
	return append(out, p.wal.Damage()...)
}

var errNoQuarantineEntry = schema.NotFound("not_found", "no quarantine entry has this id on this node")

// QuarantineList returns this node's quarantine entries (never nil).
func (p *Pipeline) QuarantineList() ([]QuarantineEntry, error) {
	entries, err := p.q.list()
	if entries == nil && err == nil {
		entries = []QuarantineEntry{}
	}
	return entries, err
}

// ReplayQuarantine puts an entry's events back into the write-ahead log,
// as newly accepted events, and deletes the entry: if ClickHouse refuses
// them again they come back to the quarantine under a new id. It returns
// the number of events replayed.
func (p *Pipeline) ReplayQuarantine(ctx context.Context, id string) (int, error) {
	f, err := p.q.get(id)
	if errors.Is(err, errNoEntry) {
		return 0, errNoQuarantineEntry
	}
	if err != nil {
		return 0, err
	}
	if f.Damaged {
		return 0, schema.Conflict("not_replayable", "this entry is a damaged write-ahead log record: its events cannot be read back; discard it")
	}
	rows, err := decodeRows(f.Record, nil)
	if err != nil {
		return 0, schema.Conflict("not_replayable", "this entry's events cannot be decoded; discard it")
	}
	if err := p.Append(ctx, rows); err != nil {
		return 0, err
	}
	// Durable in the log now; a crash before the removal replays it twice,
	// which inserts identical rows (reads fold them).
	if err := p.q.remove(f.ID); err != nil && !errors.Is(err, errNoEntry) {
		return 0, err
	}
	p.log.Info("ingest: quarantine entry replayed into the write-ahead log", "id", f.ID, "events", len(rows))
	return len(rows), nil
}

// DiscardQuarantine deletes an entry and its events for good.
func (p *Pipeline) DiscardQuarantine(id string) error {
	err := p.q.remove(id)
	if errors.Is(err, errNoEntry) {
		return errNoQuarantineEntry
	}
	if err != nil {
		return err
	}
	p.log.Warn("ingest: quarantine entry discarded by the operator", "id", id)
	return nil
}
