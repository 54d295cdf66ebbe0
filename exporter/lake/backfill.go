package lake

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// A backfill delivers the events of a time range that were received before
// the destination was created: the continuous delivery takes every event
// received since, so the two never overlap. It runs day by day (one file
// per partition per day, named backfill-<id>-<YYYYMMDD>.parquet, written
// again identically if a day is repeated), and overlapping backfills of
// one destination are refused.

// BackfillRequest is the body of POST /v1/lake/destinations/{id}/backfills:
// the events with a timestamp in [from, to).
type BackfillRequest struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// The states of a backfill.
const (
	BackfillPending = "pending"
	BackfillDone    = "done"
)

// BackfillStatus is a backfill as the API shows it.
type BackfillStatus struct {
	ID        string    `json:"id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	State     string    `json:"state"`
	NextDay   string    `json:"nextDay,omitempty"` // the first day not yet delivered
	Rows      uint64    `json:"rows"`
	LastError string    `json:"lastError,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

type backfill struct {
	dest, id         string
	from, to         time.Time
	nextDay          time.Time
	state            string
	rows             uint64
	lastError        string
	version          uint64
	created, updated time.Time
}

func (b backfill) view() BackfillStatus {
	v := BackfillStatus{ID: b.id, From: b.from, To: b.to, State: b.state, Rows: b.rows, LastError: b.lastError,
		CreatedAt: b.created, UpdatedAt: b.updated}
	if b.state != BackfillDone {
		v.NextDay = b.nextDay.Format(time.DateOnly)
	}
	return v
}

func (s *store) putBackfill(ctx context.Context, b backfill) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.conn.Exec(params(ctx, clickhouse.Parameters{
		"dest": b.dest, "id": b.id, "from": chconn.Time(b.from), "to": chconn.Time(b.to), "next": b.nextDay.Format(time.DateOnly),
		"state": b.state, "rows": u64(b.rows), "err": b.lastError, "version": u64(b.version),
		"c": chconn.Time(b.created), "u": chconn.Time(b.updated)}),
		`INSERT INTO lake_backfills (dest_id, id, from_time, to_time, next_day, state, rows, last_error, version,
		                             created_at, updated_at)
		 VALUES ({dest:String}, {id:String}, {from:`+dt+`}, {to:`+dt+`}, {next:Date}, {state:String}, {rows:UInt64},
		         {err:String}, {version:UInt64}, {c:`+dt+`}, {u:`+dt+`})`)
	if err != nil {
		return fmt.Errorf("write lake backfill: %w", err)
	}
	return nil
}

// backfills returns the backfills of dest ("" for every destination).
func (s *store) backfills(ctx context.Context, dest string) ([]backfill, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	q := `SELECT dest_id, id, from_time, to_time, next_day, state, rows, last_error, version, created_at, updated_at
	      FROM lake_backfills FINAL`
	p := clickhouse.Parameters{}
	if dest != "" {
		q += " WHERE dest_id = {dest:String}"
		p["dest"] = dest
	}
	rows, err := s.conn.Query(params(ctx, p), q+" ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("read lake backfills: %w", err)
	}
	defer rows.Close()
	var out []backfill
	for rows.Next() {
		var b backfill
		if err := rows.Scan(&b.dest, &b.id, &b.from, &b.to, &b.nextDay, &b.state, &b.rows, &b.lastError, &b.version,
			&b.created, &b.updated); err != nil {
			return nil, fmt.Errorf("read lake backfills: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Backfill starts the delivery of a destination's events with a timestamp in
// [from, to) received before the destination was created.
func (s *Service) Backfill(ctx context.Context, a schema.Attribution, org, id string, req BackfillRequest) (BackfillStatus, error) {
	from, to := req.From.UTC().Truncate(time.Millisecond), req.To.UTC().Truncate(time.Millisecond)
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return BackfillStatus{}, schema.Invalid("invalid_backfill", "from and to (RFC 3339) are required, from before to",
			schema.FieldError{Index: -1, Field: "from", Code: "invalid", Message: "want from < to"})
	}
	if to.Sub(from) > 3660*24*time.Hour {
		return BackfillStatus{}, schema.Invalid("invalid_backfill", "a backfill covers at most 10 years",
			schema.FieldError{Index: -1, Field: "to", Code: "invalid", Message: "at most 10 years after from"})
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	d, err := s.get(ctx, org, id)
	if err != nil {
		return BackfillStatus{}, err
	}
	existing, err := s.store.backfills(ctx, d.id)
	if err != nil {
		return BackfillStatus{}, err
	}
	for _, b := range existing {
		if from.Before(b.to) && b.from.Before(to) {
			return BackfillStatus{}, schema.Conflict("backfill_overlap",
				fmt.Sprintf("backfill %s already covers part of this range (%s to %s): its events would be delivered twice",
					b.id, b.from.Format(time.RFC3339), b.to.Format(time.RFC3339)))
		}
	}
	now := s.stamp(time.Time{})
	b := backfill{dest: d.id, id: strings.ReplaceAll(uuid.NewString(), "-", ""), from: from, to: to,
		nextDay: from.Truncate(24 * time.Hour), state: BackfillPending, version: uint64(now.UnixNano()),
		created: now, updated: now}
	if err := s.store.putBackfill(ctx, b); err != nil {
		return BackfillStatus{}, err
	}
	s.changed()
	if err := s.record(ctx, a, "lake.backfill", d, map[string]any{"from": from, "to": to}); err != nil {
		return BackfillStatus{}, err
	}
	return b.view(), nil
}

// Backfills lists a destination's backfills.
func (s *Service) Backfills(ctx context.Context, org, id string) ([]BackfillStatus, error) {
	d, err := s.get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	bs, err := s.store.backfills(ctx, d.id)
	if err != nil {
		return nil, err
	}
	out := []BackfillStatus{}
	for _, b := range bs {
		out = append(out, b.view())
	}
	return out, nil
}

// runBackfills advances every pending backfill by one day each; it reports
// whether there is more to do. Two servers may run the same day at once:
// they write the same files, whose rows fold.
func (s *Service) runBackfills(ctx context.Context) (bool, error) {
	bs, err := s.store.backfills(ctx, "")
	if err != nil {
		return false, err
	}
	more := false
	var defs map[string]def
	for _, b := range bs {
		if b.state != BackfillPending || ctx.Err() != nil {
			continue
		}
		if defs == nil {
			all, err := s.store.destinations(ctx, nil, "")
			if err != nil {
				return false, err
			}
			defs = map[string]def{}
			for _, d := range all {
				defs[d.id] = d
			}
		}
		d, ok := defs[b.dest]
		if !ok || d.deleted || d.paused {
			continue
		}
		snap := s.open(d)
		if snap.err != nil {
			continue
		}
		dayEnd := b.nextDay.Add(24 * time.Hour)
		from, to := maxTime(b.from, b.nextDay), minTime(b.to, dayEnd)
		p := clickhouse.Parameters{}
		sel := backfillSelection(snap.d.org, from, to, snap.d.created, p)
		name := fmt.Sprintf("backfill-%s-%s.parquet", b.id, b.nextDay.Format("20060102"))
		res, err := s.write(ctx, snap, sel, p, name, stepSel{})
		b.updated, b.version = s.now().UTC(), max(uint64(s.now().UnixNano()), b.version+1)
		if err != nil {
			b.lastError = scrub(err.Error(), snap.loc.secrets)
			_ = s.store.putBackfill(ctx, b)
			return more, err
		}
		for _, f := range res.files {
			b.rows += f.rows
		}
		b.lastError, b.nextDay = "", dayEnd
		if !dayEnd.Before(b.to) {
			b.state = BackfillDone
		} else {
			more = true
		}
		if err := s.store.putBackfill(ctx, b); err != nil {
			return more, err
		}
	}
	return more, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
