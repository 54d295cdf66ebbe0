package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// CreateRequest is the body of POST /v1/streams.
type CreateRequest struct {
	Name     string          `json:"name"`
	Provider string          `json:"provider"`
	Config   json.RawMessage `json:"config"`
	Filter   Filter          `json:"filter"`
	Paused   bool            `json:"paused"`
}

// UpdateRequest is the body of PATCH /v1/streams/{id}: absent fields keep
// their value; config fields it names replace the stored ones (a
// credential sent back masked keeps its value).
type UpdateRequest struct {
	Name   *string         `json:"name"`
	Config json.RawMessage `json:"config"`
	Filter *Filter         `json:"filter"`
	Paused *bool           `json:"paused"`
}

// TestResult is the answer of POST /v1/streams/{id}/test.
type TestResult struct {
	OK         bool   `json:"ok"`
	Status     int    `json:"status,omitempty"` // the destination's HTTP status
	Answer     string `json:"answer,omitempty"` // its status line ("202 Accepted"), never its body
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

func (s *Service) guard() guard {
	return guard{resolver: s.cfg.Resolver, deny: s.deny, allowPrivate: s.cfg.AllowPrivate}
}

var errNotFound = schema.NotFound("stream_not_found", "no such stream")

// get returns a live stream of org.
func (s *Service) get(ctx context.Context, org, id string) (def, error) {
	if _, err := uuid.Parse(id); err != nil {
		return def{}, errNotFound
	}
	ds, err := s.store.streams(ctx, org, id)
	if err != nil {
		return def{}, err
	}
	if len(ds) == 0 || ds[0].deleted {
		return def{}, errNotFound
	}
	return ds[0], nil
}

// stamp is a new version time for a row last written at prev: now, but
// always after prev (versions at millisecond precision must differ).
func (s *Service) stamp(prev time.Time) time.Time {
	now := s.now().UTC().Truncate(time.Millisecond)
	if !now.After(prev) {
		now = prev.Add(time.Millisecond)
	}
	return now
}

func (s *Service) record(ctx context.Context, a schema.Attribution, org, typ string, d def, md map[string]any) error {
	e := a.Event(typ, &schema.Resource{Type: "stream", ID: d.id, Name: d.name}, md, s.now())
	if err := s.rec.Record(ctx, org, e); err != nil {
		return fmt.Errorf("record %s: %w", typ, err)
	}
	return nil
}

// Create creates a stream of org. It delivers every event accepted from
// now on: its cursor starts at this node's confirmed watermark (events
// accepted just before and not yet confirmed are delivered too).
func (s *Service) Create(ctx context.Context, a schema.Attribution, org string, req CreateRequest) (Stream, error) {
	if err := checkName(req.Name); err != nil {
		return Stream{}, err
	}
	filter, err := req.Filter.check()
	if err != nil {
		return Stream{}, err
	}
	cfg, err := decodeConfig(req.Provider, req.Config)
	if err != nil {
		return Stream{}, err
	}
	if err := cfg.check(ctx, s.guard()); err != nil {
		return Stream{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	all, err := s.store.streams(ctx, org, "")
	if err != nil {
		return Stream{}, err
	}
	live := 0
	for _, d := range all {
		if !d.deleted {
			live++
		}
	}
	if live >= s.cfg.MaxStreamsPerOrg {
		return Stream{}, schema.Conflict("too_many_streams", fmt.Sprintf("an org may have at most %d streams", s.cfg.MaxStreamsPerOrg))
	}
	now := s.stamp(time.Time{})
	d := def{org: org, id: uuid.NewString(), name: req.Name, provider: req.Provider, filter: filter,
		paused: req.Paused, created: now, updated: now}
	plain, _ := json.Marshal(cfg)
	d.sealed = s.seal.seal(org, d.id, plain)
	c := cursor{stream: d.id, node: s.wm.NodeID(), seq: s.wm.Confirmed(), state: StateActive,
		version: uint64(now.UnixNano()), updated: now}
	if req.Paused {
		c.state = StatePaused
	}
	if err := s.store.putCursor(ctx, c); err != nil {
		return Stream{}, err
	}
	if err := s.store.putStream(ctx, d); err != nil {
		return Stream{}, err
	}
	gone := d
	gone.deleted = true
	if err := s.recordOrUndo(ctx, a, org, "stream.create", d, map[string]any{"provider": d.provider, "name": d.name}, gone); err != nil {
		return Stream{}, err
	}
	return s.view(ctx, d, &snapshot{d: d, cfg: cfg})
}

// List returns the streams of org, oldest first.
func (s *Service) List(ctx context.Context, org string) ([]Stream, error) {
	ds, err := s.store.streams(ctx, org, "")
	if err != nil {
		return nil, err
	}
	out := []Stream{}
	for _, d := range ds {
		if d.deleted {
			continue
		}
		v, err := s.view(ctx, d, s.open(d))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Get returns a stream of org, or a KindNotFound error (also for another
// org's stream).
func (s *Service) Get(ctx context.Context, org, id string) (Stream, error) {
	d, err := s.get(ctx, org, id)
	if err != nil {
		return Stream{}, err
	}
	return s.view(ctx, d, s.open(d))
}

// Update changes a stream of org; its worker picks the change up at once
// (a failing stream retries now).
func (s *Service) Update(ctx context.Context, a schema.Attribution, org, id string, req UpdateRequest) (Stream, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	d, err := s.get(ctx, org, id)
	if err != nil {
		return Stream{}, err
	}
	snap, prev := s.open(d), d
	var changed []string
	if req.Name != nil {
		if err := checkName(*req.Name); err != nil {
			return Stream{}, err
		}
		d.name, changed = *req.Name, append(changed, "name")
	}
	if req.Filter != nil {
		if d.filter, err = req.Filter.check(); err != nil {
			return Stream{}, err
		}
		changed = append(changed, "filter")
	}
	if req.Paused != nil {
		d.paused, changed = *req.Paused, append(changed, "paused")
	}
	cfg := snap.cfg
	if len(req.Config) > 0 {
		if snap.err != nil { // unreadable: the whole configuration must be given again
			cfg, err = decodeConfig(d.provider, req.Config)
		} else {
			cfg, err = mergeConfig(d.provider, snap.cfg, req.Config)
		}
		if err != nil {
			return Stream{}, err
		}
		if err := cfg.check(ctx, s.guard()); err != nil {
			return Stream{}, err
		}
		if snap.err == nil {
			if err := retargeted(d.provider, snap.cfg, cfg, req.Config); err != nil {
				return Stream{}, err
			}
		}
		plain, _ := json.Marshal(cfg)
		d.sealed, changed = s.seal.seal(org, d.id, plain), append(changed, "config")
	}
	d.updated = s.stamp(d.updated)
	if err := s.store.putStream(ctx, d); err != nil {
		return Stream{}, err
	}
	md := map[string]any{"changed": changed, "paused": d.paused}
	if err := s.recordOrUndo(ctx, a, org, "stream.update", d, md, prev); err != nil {
		return Stream{}, err
	}
	final := &snapshot{d: d, cfg: cfg}
	if cfg == nil { // still unreadable: no config was given
		final.err = snap.err
	}
	return s.view(ctx, d, final)
}

// Delete deletes a stream of org: delivery stops within RefreshInterval on
// every server (at once on this one).
func (s *Service) Delete(ctx context.Context, a schema.Attribution, org, id string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	d, err := s.get(ctx, org, id)
	if err != nil {
		return err
	}
	prev := d
	d.deleted, d.updated = true, s.stamp(d.updated)
	if err := s.store.putStream(ctx, d); err != nil {
		return err
	}
	return s.recordOrUndo(ctx, a, org, "stream.delete", d, map[string]any{"provider": d.provider, "name": d.name}, prev)
}

// Test sends one sample event (type stream.test) through a stream of org
// and reports the destination's answer. A success wakes a failing stream.
func (s *Service) Test(ctx context.Context, a schema.Attribution, org, id string) (TestResult, error) {
	d, err := s.get(ctx, org, id)
	if err != nil {
		return TestResult{}, err
	}
	snap := s.open(d)
	var res TestResult
	if snap.err != nil {
		res.Error = snap.err.Error()
	} else {
		r := sampleRow(org, d.id, s.now())
		w := snap.prov.wire()
		body := append([]byte(w.open), encodeElement(nil, snap.prov, w, &r)...)
		body = append(body, w.close...)
		out := send(ctx, s.env, snap.prov, body, snap.secrets, s.cfg.MaxRetryAfter)
		res = TestResult{OK: out.ok, Status: out.status, Answer: out.answer, Error: out.err, DurationMs: out.elapsed.Milliseconds()}
	}
	if err := s.record(ctx, a, org, "stream.test", d, map[string]any{"ok": res.OK, "status": res.Status}); err != nil {
		return TestResult{}, err
	}
	if res.OK {
		if w := s.worker(d.id); w != nil {
			w.wake.Wake()
		}
	}
	return res, nil
}
