package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditstore/auditstore/exporter/internal/flow"
)

// metrics are the streams' Prometheus series, labelled by stream id.
type metrics struct {
	flow.Gauges                          // lag and state, by stream
	delivered   *prometheus.CounterVec   // by stream
	failed      *prometheus.CounterVec   // by stream
	latency     *prometheus.HistogramVec // by provider
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		Gauges: flow.NewGauges("stream", "stream",
			"Events of this server's node not yet delivered by a stream.",
			"Age of the oldest event of this server's node not yet delivered by a stream.",
			"A stream's state on this server: 1 for the current one of active, retrying, failing, paused."),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditstore_stream_events_delivered_total",
			Help: "Events acknowledged by a stream's destination.",
		}, []string{"stream"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditstore_stream_events_failed_total",
			Help: "Events of failed delivery attempts (each is retried; the cursor stays).",
		}, []string{"stream"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditstore_stream_delivery_duration_seconds",
			Help:    "Duration of one delivery attempt (one request, and a token request when one is needed).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"provider"}),
	}
	for _, c := range append(m.Collectors(), m.delivered, m.failed, m.latency) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// forget drops the series of a deleted stream.
func (m *metrics) forget(stream string) {
	m.delivered.DeleteLabelValues(stream)
	m.failed.DeleteLabelValues(stream)
	m.Forget(stream)
}
