package lake

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/exporter/internal/flow"
)

// metrics are the lake's Prometheus series, labelled by destination id.
type metrics struct {
	flow.Gauges // lag and state, by destination
	files       *prometheus.CounterVec
	rows        *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	failures    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	by := []string{"destination"}
	m := &metrics{
		Gauges: flow.NewGauges("lake", "destination",
			"Events of this server's node not yet delivered to a data-lake destination.",
			"Age of the oldest of those events.",
			"A destination's state on this server: 1 for the current one of active, retrying, failing, paused."),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_files_total",
			Help: "Files delivered to a data-lake destination by this server."}, by),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_rows_total",
			Help: "Events delivered to a data-lake destination by this server."}, by),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_bytes_total",
			Help: "Bytes of the files delivered to a data-lake destination by this server."}, by),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "auditstore_lake_failures_total",
			Help: "Failed delivery steps (each is retried with backoff)."}, by),
	}
	for _, c := range append(m.Collectors(), m.files, m.rows, m.bytes, m.failures) {
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

func (m *metrics) forget(dest string) {
	for _, v := range []*prometheus.CounterVec{m.files, m.rows, m.bytes, m.failures} {
		v.DeleteLabelValues(dest)
	}
	m.Forget(dest)
}
