package l2

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tier's Prometheus series, all prefixed cachee_l2_.
type metrics struct {
	reads, misses, negHits, fills, fillsSkipped prometheus.Counter
	errors                                      *prometheus.CounterVec // by op and reason
	readSeconds                                 prometheus.Histogram
	writes                                      *prometheus.CounterVec // by result
	writeSeconds                                prometheus.Histogram
	invReceived, invApplied                     prometheus.Counter
	breaks, flushes                             *prometheus.CounterVec // by reason
	lag                                         prometheus.Histogram
	up                                          prometheus.Gauge
	prewarmKeys                                 *prometheus.CounterVec // by result
	prewarmRuns                                 *prometheus.CounterVec // by outcome
	prewarmSeconds                              prometheus.Gauge
	hotsetPublished                             *prometheus.CounterVec // by result
}

// Why the invalidation stream broke, the reason label of cachee_l2_stream_breaks_total.
const (
	breakConnClosed    = "connection-closed" // a tracking connection closed
	breakCanaryMissing = "canary-missing"    // the canary's invalidation never came
)

// Why L1 was emptied, the reason label of cachee_l2_flushes_total.
const (
	flushL2Flushed   = "l2-flushed"   // L2 said it was flushed
	flushStreamBreak = "stream-break" // after a stream break, before L2 is used again
)

// latencyBuckets span a loopback round trip (tens of µs) to a timeout (50 ms) and
// beyond: 25 µs doubling up to about 1.6 s.
var latencyBuckets = prometheus.ExponentialBuckets(25e-6, 2, 17)

func newMetrics(r prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "cachee_l2_" + name, Help: help})
	}
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cachee_l2_" + name, Help: help}, labels)
	}
	h := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cachee_l2_" + name, Help: help, Buckets: latencyBuckets})
	}
	m := &metrics{
		reads:           c("reads_total", "Keys read from L2 after an L1 miss (read-through) or by a prewarm."),
		misses:          c("misses_total", "Keys L2 did not have either."),
		negHits:         c("negative_hits_total", "L1 misses answered from the negative cache (--negative-ttl) without asking L2."),
		fills:           c("fills_total", "Values read through from L2 and stored in L1."),
		fillsSkipped:    c("fills_skipped_total", "Values read from L2 but not stored in L1, because the key was invalidated or written while the read was in flight."),
		errors:          cv("errors_total", "L2 calls (one pipeline each) that failed: op is read or write; reason is down (not attempted), timeout or error.", "op", "reason"),
		readSeconds:     h("read_seconds", "Time of one read-through round trip to L2 (one pipeline of GET and PTTL per missing key)."),
		writes:          cv("writes_total", "Write-through commands sent to L2, by result: ok, rejected (L2 answered with an error) or failed.", "result"),
		writeSeconds:    h("write_seconds", "Time of one write-through round trip to L2."),
		invReceived:     c("invalidations_received_total", "Keys named in invalidation messages from L2 (CLIENT TRACKING)."),
		invApplied:      c("invalidations_applied_total", "Invalidated keys that were in L1 and were dropped."),
		breaks:          cv("stream_breaks_total", "Times the invalidation stream was lost: a tracking connection closed, or the canary's invalidation never came.", "reason"),
		flushes:         cv("flushes_total", "Times L1 was emptied to stay coherent: after a stream break, or when L2 was flushed.", "reason"),
		lag:             prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cachee_l2_invalidation_lag_seconds", Help: "Time from the canary write (on a separate connection) to its invalidation reaching this sidecar.", Buckets: latencyBuckets}),
		up:              prometheus.NewGauge(prometheus.GaugeOpts{Name: "cachee_l2_up", Help: "1 while L2 answers, 0 while misses are answered without it."}),
		prewarmKeys:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cachee_prewarm_keys_total", Help: "Keys prewarms handled, by result: loaded, skipped or failed."}, []string{"result"}),
		prewarmRuns:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cachee_prewarm_runs_total", Help: "Prewarms run, by outcome: done, timeout or failed."}, []string{"outcome"}),
		prewarmSeconds:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "cachee_prewarm_last_duration_seconds", Help: "How long the last prewarm took."}),
		hotsetPublished: cv("hotset_publishes_total", "Publications of this sidecar's hottest keys into the hotset, by result.", "result"),
	}
	// Every reason starts at 0, so that the first break or flush is an increase an
	// alert or a dashboard sees.
	for _, why := range []string{breakConnClosed, breakCanaryMissing} {
		m.breaks.WithLabelValues(why)
	}
	for _, why := range []string{flushL2Flushed, flushStreamBreak} {
		m.flushes.WithLabelValues(why)
	}
	if r != nil {
		r.MustRegister(m.collectors()...)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.reads, m.misses, m.negHits, m.fills, m.fillsSkipped, m.errors, m.readSeconds,
		m.writes, m.writeSeconds, m.invReceived, m.invApplied, m.breaks, m.flushes, m.lag, m.up, m.prewarmKeys,
		m.prewarmRuns, m.prewarmSeconds, m.hotsetPublished}
}
