package lake

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the lake's Prometheus series, labelled by destination id.
type metrics struct {
	files      *prometheus.CounterVec
	rows       *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	failures   *prometheus.CounterVec
	lagEvents  *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	state      *prometheus.GaugeVec
}

var states = []string{StateActive, StateRetrying, StateFailing, StatePaused}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	by := []string{"destination"}
	m := &metrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_files_total",
			Help: "Files delivered to a data-lake destination by this server."}, by),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_rows_total",
			Help: "Events delivered to a data-lake destination by this server."}, by),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_bytes_total",
			Help: "Bytes of the files delivered to a data-lake destination by this server."}, by),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_failures_total",
			Help: "Failed delivery steps (each is retried with backoff)."}, by),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditstore_lake_lag_events",
			Help: "Events of this server's node not yet delivered to a data-lake destination."}, by),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditstore_lake_lag_seconds",
			Help: "Age of the oldest of those events."}, by),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "auditstore_lake_state",
			Help: "A destination's state on this server: 1 for the current one of active, retrying, failing, paused."},
			[]string{"destination", "state"}),
	}
	for _, c := range []prometheus.Collector{m.files, m.rows, m.bytes, m.failures, m.lagEvents, m.lagSeconds, m.state} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) delivered(dest string, r result) {
	for _, f := range r.files {
		m.files.WithLabelValues(dest).Inc()
		m.rows.WithLabelValues(dest).Add(float64(f.rows))
		m.bytes.WithLabelValues(dest).Add(float64(f.bytes))
	}
}

func (m *metrics) setLag(dest string, events uint64, seconds float64) {
	m.lagEvents.WithLabelValues(dest).Set(float64(events))
	m.lagSeconds.WithLabelValues(dest).Set(seconds)
}

func (m *metrics) setState(dest, state string) {
	for _, s := range states {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(dest, s).Set(v)
	}
}

func (m *metrics) forget(dest string) {
	for _, v := range []*prometheus.CounterVec{m.files, m.rows, m.bytes, m.failures} {
		v.DeleteLabelValues(dest)
	}
	m.lagEvents.DeleteLabelValues(dest)
	m.lagSeconds.DeleteLabelValues(dest)
	for _, s := range states {
		m.state.DeleteLabelValues(dest, s)
	}
}
