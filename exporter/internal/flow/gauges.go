package flow

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The states of a delivery on this node.
const (
	StateActive   = "active"   // delivering, or caught up
	StateRetrying = "retrying" // a step failed; retrying with backoff
	StateFailing  = "failing"  // refused, or the configuration cannot be used
	StatePaused   = "paused"
)

// States lists every state, in the order of StateActive..StatePaused.
var States = []string{StateActive, StateRetrying, StateFailing, StatePaused}

// Gauges are a kind of delivery's lag and state series, labelled by the
// delivery's id.
type Gauges struct {
	LagEvents  *prometheus.GaugeVec
	LagSeconds *prometheus.GaugeVec
	State      *prometheus.GaugeVec
}

// NewGauges returns the gauges auditstore_<kind>_lag_events,
// auditstore_<kind>_lag_seconds and auditstore_<kind>_state, labelled by
// label ("stream", "destination"), with their help texts.
func NewGauges(kind, label, lagHelp, ageHelp, stateHelp string) Gauges {
	by := []string{label}
	return Gauges{
		LagEvents:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditstore_" + kind + "_lag_events", Help: lagHelp}, by),
		LagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditstore_" + kind + "_lag_seconds", Help: ageHelp}, by),
		State: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditstore_" + kind + "_state", Help: stateHelp},
			[]string{label, "state"}),
	}
}

// Collectors returns the gauges, to register.
func (g Gauges) Collectors() []prometheus.Collector {
	return []prometheus.Collector{g.LagEvents, g.LagSeconds, g.State}
}

// SetLag sets id's lag: events not yet delivered, and the age in seconds
// of the oldest.
func (g Gauges) SetLag(id string, events uint64, seconds float64) {
	g.LagEvents.WithLabelValues(id).Set(float64(events))
	g.LagSeconds.WithLabelValues(id).Set(seconds)
}

// SetState sets id's state series: 1 for state, 0 for the others.
func (g Gauges) SetState(id, state string) {
	for _, s := range States {
		v := 0.0
		if s == state {
			v = 1
		}
		g.State.WithLabelValues(id, s).Set(v)
	}
}

// Forget drops the series of a deleted delivery.
func (g Gauges) Forget(id string) {
	g.LagEvents.DeleteLabelValues(id)
	g.LagSeconds.DeleteLabelValues(id)
	for _, s := range States {
		g.State.DeleteLabelValues(id, s)
	}
}

// LagSeconds is the age of the oldest undelivered event at now (0 when
// none, never negative).
func LagSeconds(oldest, now time.Time) float64 {
	if oldest.IsZero() {
		return 0
	}
	return max(now.Sub(oldest).Seconds(), 0)
}
