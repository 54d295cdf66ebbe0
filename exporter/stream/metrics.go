package stream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the streams' Prometheus series, labelled by stream id.
type metrics struct {
	delivered  *prometheus.CounterVec   // by stream
	failed     *prometheus.CounterVec   // by stream
	lagEvents  *prometheus.GaugeVec     // by stream
	lagSeconds *prometheus.GaugeVec     // by stream
	state      *prometheus.GaugeVec     // by stream and state: 1 for the current state
	latency    *prometheus.HistogramVec // by provider
}

var states = []string{StateActive, StateRetrying, StateFailing, StatePaused}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditstore_stream_events_delivered_total",
			Help: "Events acknowledged by a stream's destination.",
		}, []string{"stream"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditstore_stream_events_failed_total",
			Help: "Events of failed delivery attempts (each is retried; the cursor stays).",
		}, []string{"stream"}),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditstore_stream_lag_events",
			Help: "Events of this server's node not yet delivered by a stream.",
		}, []string{"stream"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditstore_stream_lag_seconds",
			Help: "Age of the oldest event of this server's node not yet delivered by a stream.",
		}, []string{"stream"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditstore_stream_state",
			Help: "A stream's state on this server: 1 for the current one of active, retrying, failing, paused.",
		}, []string{"stream", "state"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditstore_stream_delivery_duration_seconds",
			Help:    "Duration of one delivery attempt (one request, and a token request when one is needed).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"provider"}),
	}
	for _, c := range []prometheus.Collector{m.delivered, m.failed, m.lagEvents, m.lagSeconds, m.state, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) setLag(stream string, events uint64, seconds float64) {
	m.lagEvents.WithLabelValues(stream).Set(float64(events))
	m.lagSeconds.WithLabelValues(stream).Set(seconds)
}

func (m *metrics) setState(stream, state string) {
	for _, s := range states {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(stream, s).Set(v)
	}
}

// forget drops the series of a deleted stream.
func (m *metrics) forget(stream string) {
	for _, v := range []interface{ DeleteLabelValues(...string) bool }{m.delivered, m.failed, m.lagEvents, m.lagSeconds} {
		v.DeleteLabelValues(stream)
	}
	for _, s := range states {
		m.state.DeleteLabelValues(stream, s)
	}
}
