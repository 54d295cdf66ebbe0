package stream

import (
	"context"
	"time"

	"github.com/auditstore/auditstore/exporter/internal/flow"
)

// staleState is how long another node's recorded state counts: a node
// that stopped keeps its last row.
const staleState = 15 * time.Minute

// view is a stream as the API shows it, with its status.
func (s *Service) view(ctx context.Context, d def, snap *snapshot) (Stream, error) {
	v := Stream{ID: d.id, OrgID: d.org, Name: d.name, Provider: d.provider, Filter: d.filter,
		Paused: d.paused, CreatedAt: d.created, UpdatedAt: d.updated}
	if v.Filter.EventTypes == nil {
		v.Filter.EventTypes = []string{}
	}
	if v.Filter.ActorTypes == nil {
		v.Filter.ActorTypes = []string{}
	}
	if snap.cfg != nil {
		v.Config = snap.cfg.masked()
	}
	st, err := s.status(ctx, d, snap)
	if err != nil {
		return Stream{}, err
	}
	v.Status = &st
	return v, nil
}

// status merges the stream's cursors on every node (this node's from its
// running worker, which is fresher) and measures its lag.
func (s *Service) status(ctx context.Context, d def, snap *snapshot) (Status, error) {
	cs, err := s.store.cursors(ctx, d.id)
	if err != nil {
		return Status{}, err
	}
	node := s.wm.NodeID()
	live := false
	if w := s.worker(d.id); w != nil {
		if c, _, _, loaded := w.status(); loaded {
			cs[node], live = c, true
		}
	}
	var st Status
	var lastEvent, lastDelivery, lastErrorAt time.Time
	state := StateActive
	seqs := map[string]uint64{}
	now := s.now()
	for n, c := range cs {
		seqs[n] = c.seq
		st.Delivered += c.delivered
		st.Failed += c.failed
		lastEvent, lastDelivery = later(lastEvent, c.lastEvent), later(lastDelivery, c.lastDelivery)
		if c.lastError != "" && c.lastErrorAt.After(lastErrorAt) {
			st.LastError, lastErrorAt = c.lastError, c.lastErrorAt
		}
		if n == node && live || now.Sub(c.updated) < staleState {
			state = worse(state, c.state)
		}
	}
	st.LastEventAt, st.LastDeliveryAt, st.LastErrorAt = timePtr(lastEvent), timePtr(lastDelivery), timePtr(lastErrorAt)
	switch {
	case d.paused:
		state = StatePaused
	case snap.err != nil:
		state = StateFailing
		if st.LastError == "" {
			st.LastError = snap.err.Error()
		}
	case state == StatePaused: // unpaused, the workers have not run yet
		state = StateActive
	}
	st.State = state
	n, oldest, err := s.ev.lag(ctx, d.org, d.filter, seqs)
	if err != nil {
		return Status{}, err
	}
	st.LagEvents, st.LagSeconds = n, flow.LagSeconds(oldest, now)
	return st, nil
}

// worse returns the more alarming of two states.
func worse(a, b string) string {
	rank := map[string]int{StateActive: 0, StatePaused: 1, StateRetrying: 2, StateFailing: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// timePtr is nil for a zero (or epoch: never set in ClickHouse) time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() || t.Unix() <= 0 {
		return nil
	}
	u := t.UTC()
	return &u
}
