package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ingest path's Prometheus collectors, one per stage.
type metrics struct {
	accepted      prometheus.Counter
	rejected      *prometheus.CounterVec // by reason
	requests      *prometheus.CounterVec // by status code
	latency       prometheus.Histogram
	walBytes      prometheus.GaugeFunc
	walSegments   prometheus.GaugeFunc
	batchSize     prometheus.Histogram
	flushLatency  prometheus.Histogram
	insertErrors  prometheus.Counter
	pending       prometheus.GaugeFunc
	inserted      prometheus.Counter
	dedupReplaced prometheus.Counter
	walFaults     prometheus.CounterFunc

	quarantined        prometheus.Counter
	quarantinedRecords prometheus.Counter
	quarantineEntries  prometheus.GaugeFunc
	walLost            prometheus.CounterFunc
	walDamaged         prometheus.GaugeFunc
	shardFailing       *prometheus.GaugeVec // by shard number, on a cluster only
}

func newMetrics(reg prometheus.Registerer, p *Pipeline) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditstore_ingest_events_accepted_total",
			Help: "Events acknowledged to clients (durable in the write-ahead log).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditstore_ingest_events_rejected_total",
			Help: "Events refused, by reason (the error code).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditstore_ingest_requests_total",
			Help: "Ingest requests, by HTTP status.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "auditstore_ingest_request_duration_seconds",
			Help:    "Time from request start to the answer (durable acknowledgement or error).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		walBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "auditstore_wal_bytes",
			Help: "Bytes of the write-ahead log on disk.",
		}, func() float64 { b, _ := p.wal.Stats(); return float64(b) }),
		walSegments: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "auditstore_wal_segments",
			Help: "Segment files of the write-ahead log.",
		}, func() float64 { _, s := p.wal.Stats(); return float64(s) }),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "auditstore_ingest_batch_events",
			Help:    "Events per INSERT into ClickHouse.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		flushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "auditstore_ingest_flush_duration_seconds",
			Help:    "Time to insert one batch into ClickHouse, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditstore_ingest_insert_errors_total",
			Help: "Failed INSERT attempts (each is retried; nothing is dropped).",
		}),
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "auditstore_ingest_events_pending",
			Help: "Events durable in the write-ahead log and not yet confirmed by ClickHouse.",
		}, func() float64 { return float64(p.pending.Load()) }),
		inserted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditstore_ingest_events_inserted_total",
			Help: "Events confirmed by ClickHouse.",
		}),
		dedupReplaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditstore_ingest_resent_events_total",
			Help: "Events whose id had been accepted recently without a timestamp; the first timestamp was reused so the copy collapses into the original.",
		}),
		walFaults: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "auditstore_wal_write_errors_total",
			Help: "Writes or fsyncs of the write-ahead log that failed (disk full, I/O error); each refused its records with 503 wal_unavailable.",
		}, func() float64 { return float64(p.wal.Faults()) }),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditstore_ingest_quarantined_events_total",
			Help: "Events ClickHouse refused for good (by error code), set aside in the quarantine instead of blocking the others.",
		}),
		quarantinedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditstore_wal_quarantined_records_total",
			Help: "Write-ahead log records that failed their checksum or could not be decoded, set aside in the quarantine.",
		}),
		quarantineEntries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "auditstore_ingest_quarantine_entries",
			Help: "Entries in this node's quarantine, waiting for the operator (auditctl quarantine).",
		}, func() float64 { n, _ := p.q.size(); return float64(n) }),
		walLost: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "auditstore_wal_lost_records_total",
			Help: "Write-ahead log records found damaged beyond reading when the log was opened, before they reached ClickHouse (should stay 0).",
		}, func() float64 { return float64(p.wal.LostRecords()) }),
		walDamaged: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "auditstore_wal_damaged_segments",
			Help: "Damaged write-ahead log segments set aside by recovery and kept for review (WALDIR/damaged/).",
		}, func() float64 { return float64(len(p.wal.Damage())) }),
		shardFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "auditstore_ingest_shard_failing",
			Help: "1 while inserts into the shard fail (its part of the batch waits in the write-ahead log), else 0; on a cluster only.",
		}, []string{"shard"}),
	}
	// Export the usual series from the start, at zero.
	for _, reason := range []string{"invalid_events", "invalid_body", "no_events", "body_too_large", "too_many_events",
		"unsupported_media_type", "unsupported_encoding", "wal_full", "wal_unavailable"} {
		m.rejected.WithLabelValues(reason)
	}
	for _, code := range []string{"202", "400", "413", "415", "503"} {
		m.requests.WithLabelValues(code)
	}
	reg.MustRegister(m.accepted, m.rejected, m.requests, m.latency, m.walBytes, m.walSegments, m.batchSize,
		m.flushLatency, m.insertErrors, m.pending, m.inserted, m.dedupReplaced, m.walFaults,
		m.quarantined, m.quarantinedRecords, m.quarantineEntries, m.walLost, m.walDamaged, m.shardFailing)
	return m
}
