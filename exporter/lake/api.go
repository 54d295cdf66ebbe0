package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/auditstore/auditstore/schema"
)

// Destination is a destination as the API shows it: credentials masked,
// with its delivery status.
type Destination struct {
	ID    string `json:"id"`
	OrgID string `json:"orgId,omitempty"` // absent for the operator's destinations
	// Scope is "org" (the events of OrgID) or "all" (every org's events:
	// the operator's destinations).
	Scope  string  `json:"scope"`
	Name   string  `json:"name"`
	Target *Target `json:"target"` // null when it cannot be decrypted (see ConfigError)
	// ConfigError says why the target cannot be used (the key changed):
	// PATCH a full target to repair it.
	ConfigError string    `json:"configError,omitempty"`
	Paused      bool      `json:"paused"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Status      Status    `json:"status"`
}

// Status is where a destination stands, summed over the ingest nodes.
type Status struct {
	State      string     `json:"state"`
	LastFile   string     `json:"lastFile,omitempty"`
	LastFileAt *time.Time `json:"lastFileAt,omitempty"`
	// LagEvents counts the events of this server's node not yet in a file;
	// LagSeconds is the age of the oldest of them.
	LagEvents   uint64     `json:"lagEvents"`
	LagSeconds  float64    `json:"lagSeconds"`
	Files       uint64     `json:"files"`
	Rows        uint64     `json:"rows"`
	Bytes       uint64     `json:"bytes"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// CreateRequest is the body of POST /v1/lake/destinations.
type CreateRequest struct {
	Name   string `json:"name"`
	Target Target `json:"target"`
	Paused bool   `json:"paused"`
}

// UpdateRequest is the body of PATCH /v1/lake/destinations/{id}: absent
// fields keep their value. Target replaces the whole target; credentials
// sent back masked keep their value, but only while the destination keeps
// writing to the same place: a new endpoint, bucket, prefix or directory
// requires the credentials again.
type UpdateRequest struct {
	Name   *string `json:"name"`
	Target *Target `json:"target"`
	Paused *bool   `json:"paused"`
}

var errNotFound = schema.NotFound("lake_destination_not_found", "no such data-lake destination")

func decodeTarget(b []byte) (Target, error) {
	var t Target
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("the destination's sealed configuration does not decode: %w", err)
	}
	return t, nil
}

// get returns a live destination of scope org ("" the operator's).
func (s *Service) get(ctx context.Context, org, id string) (def, error) {
	if _, err := uuid.Parse(id); err != nil {
		return def{}, errNotFound
	}
	ds, err := s.store.destinations(ctx, &org, id)
	if err != nil {
		return def{}, err
	}
	if len(ds) == 0 || ds[0].deleted {
		return def{}, errNotFound
	}
	return ds[0], nil
}

func (s *Service) stamp(prev time.Time) time.Time {
	now := s.now().UTC().Truncate(time.Millisecond)
	if !now.After(prev) {
		now = prev.Add(time.Millisecond)
	}
	return now
}

// record records an org destination's change in the org's audit trail; the
// operator's destinations (no org) are logged.
func (s *Service) record(ctx context.Context, a schema.Attribution, typ string, d def, md map[string]any) error {
	if d.org == "" {
		s.log.Info("lake: operator destination changed", "event", typ, "destination", d.id, "name", d.name)
		return nil
	}
	e := a.Event(typ, &schema.Resource{Type: "lake_destination", ID: d.id, Name: d.name}, md, s.now())
	if err := s.rec.Record(ctx, d.org, e); err != nil {
		return fmt.Errorf("record %s: %w", typ, err)
	}
	return nil
}

func (s *Service) check(ctx context.Context, t Target) (Target, error) {
	t, err := t.normalize(s.cfg)
	if err != nil {
		return t, err
	}
	if err := s.checkAddress(ctx, t); err != nil {
		return t, invalid("target.s3.endpoint", err.Error())
	}
	return t, nil
}

// Create creates a destination of scope org ("" for every org). It
// delivers the events received from now on; a backfill delivers older ones.
func (s *Service) Create(ctx context.Context, a schema.Attribution, org string, req CreateRequest) (Destination, error) {
	if err := checkName(req.Name); err != nil {
		return Destination{}, err
	}
	t, err := s.check(ctx, req.Target)
	if err != nil {
		return Destination{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	all, err := s.store.destinations(ctx, &org, "")
	if err != nil {
		return Destination{}, err
	}
	live := 0
	for _, d := range all {
		if !d.deleted {
			live++
		}
	}
	if live >= s.cfg.MaxDestinationsPerOrg {
		return Destination{}, schema.Conflict("too_many_lake_destinations",
			fmt.Sprintf("at most %d data-lake destinations per org", s.cfg.MaxDestinationsPerOrg))
	}
	now := s.stamp(time.Time{})
	d := def{org: org, id: uuid.NewString(), name: req.Name, kind: t.Kind, paused: req.Paused, created: now, updated: now}
	d.sealed = s.seal.Seal(org, d.id, encodeTarget(t))
	if err := s.store.putDestination(ctx, d); err != nil {
		return Destination{}, err
	}
	s.changed()
	if err := s.record(ctx, a, "lake.create", d, map[string]any{"kind": t.Kind, "name": d.name}); err != nil {
		return Destination{}, err
	}
	return s.view(ctx, d, &snapshot{d: d, t: t})
}

// List returns the destinations of scope org, oldest first.
func (s *Service) List(ctx context.Context, org string) ([]Destination, error) {
	ds, err := s.store.destinations(ctx, &org, "")
	if err != nil {
		return nil, err
	}
	out := []Destination{}
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

// Get returns a destination of scope org (404 for another scope's).
func (s *Service) Get(ctx context.Context, org, id string) (Destination, error) {
	d, err := s.get(ctx, org, id)
	if err != nil {
		return Destination{}, err
	}
	return s.view(ctx, d, s.open(d))
}

// Update changes a destination of scope org.
func (s *Service) Update(ctx context.Context, a schema.Attribution, org, id string, req UpdateRequest) (Destination, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	d, err := s.get(ctx, org, id)
	if err != nil {
		return Destination{}, err
	}
	snap := s.open(d)
	var changed []string
	if req.Name != nil {
		if err := checkName(*req.Name); err != nil {
			return Destination{}, err
		}
		d.name, changed = *req.Name, append(changed, "name")
	}
	if req.Paused != nil {
		d.paused, changed = *req.Paused, append(changed, "paused")
	}
	t := snap.t
	if req.Target != nil {
		nt := *req.Target
		if nt.S3 != nil && snap.err == nil && snap.t.S3 != nil {
			s3 := *nt.S3
			old := snap.t.S3
			maskedKeys := s3.AccessKeyID == mask(old.AccessKeyID) && (s3.SecretAccessKey == "********" || s3.SecretAccessKey == "")
			if old.AccessKeyID != "" && (maskedKeys || s3.AccessKeyID == "" && s3.SecretAccessKey == "") {
				s3.AccessKeyID, s3.SecretAccessKey = old.AccessKeyID, old.SecretAccessKey
				nt.S3 = &s3
				probe, err := nt.normalize(s.cfg)
				if err == nil && !sameLocation(probe, snap.t) {
					return Destination{}, invalid("target.s3.secretAccessKey",
						"changing where a destination writes requires its credentials again (accessKeyId and secretAccessKey)")
				}
			}
		}
		if t, err = s.check(ctx, nt); err != nil {
			return Destination{}, err
		}
		d.kind = t.Kind
		d.sealed, changed = s.seal.Seal(d.org, d.id, encodeTarget(t)), append(changed, "target")
	}
	d.updated = s.stamp(d.updated)
	if err := s.store.putDestination(ctx, d); err != nil {
		return Destination{}, err
	}
	s.changed()
	if err := s.record(ctx, a, "lake.update", d, map[string]any{"changed": changed, "paused": d.paused}); err != nil {
		return Destination{}, err
	}
	final := &snapshot{d: d, t: t}
	if req.Target == nil {
		final.err = snap.err
	}
	return s.view(ctx, d, final)
}

// Delete deletes a destination of scope org: delivery stops within
// RefreshInterval on every server. Delivered files stay.
func (s *Service) Delete(ctx context.Context, a schema.Attribution, org, id string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	d, err := s.get(ctx, org, id)
	if err != nil {
		return err
	}
	d.deleted, d.updated = true, s.stamp(d.updated)
	if err := s.store.putDestination(ctx, d); err != nil {
		return err
	}
	s.changed()
	return s.record(ctx, a, "lake.delete", d, map[string]any{"kind": d.kind, "name": d.name})
}

// view builds the API view of d.
func (s *Service) view(ctx context.Context, d def, snap *snapshot) (Destination, error) {
	v := Destination{ID: d.id, OrgID: d.org, Scope: "org", Name: d.name, Paused: d.paused,
		CreatedAt: d.created, UpdatedAt: d.updated}
	if d.org == "" {
		v.Scope = "all"
	}
	if snap.err != nil {
		v.ConfigError = snap.err.Error()
	} else {
		t := snap.t.masked()
		v.Target = &t
	}
	marks, err := s.store.marks(ctx, d.id)
	if err != nil {
		return v, err
	}
	st := Status{State: StateActive}
	var lastErrAt time.Time
	for _, m := range marks {
		st.Files += m.files
		st.Rows += m.rows
		st.Bytes += m.bytes
		if !m.lastFileAt.IsZero() && (st.LastFileAt == nil || m.lastFileAt.After(*st.LastFileAt)) {
			at := m.lastFileAt
			st.LastFile, st.LastFileAt = m.lastFile, &at
		}
		if m.lastError != "" && m.lastErrorAt.After(lastErrAt) {
			lastErrAt = m.lastErrorAt
			at := m.lastErrorAt
			st.LastError, st.LastErrorAt = m.lastError, &at
		}
	}
	if w := s.worker(d.id); w != nil {
		w.mu.Lock()
		st.State, st.LagEvents = w.state, w.lagEvents
		if w.lagEvents > 0 {
			st.LagSeconds = s.now().Sub(w.lagOldest).Seconds()
		}
		w.mu.Unlock()
	}
	if d.paused {
		st.State = StatePaused
	}
	if snap.err != nil {
		st.State = StateFailing
	}
	v.Status = st
	return v, nil
}
