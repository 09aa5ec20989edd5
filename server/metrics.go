package server

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cachee/cachee/store"
)

// latencySampleMask picks one gRPC call in 8 to time: a summary observation takes a
// lock, and the store operations being timed take well under a microsecond. The RESP
// shim samples its commands itself (resp.Config.Latency).
const latencySampleMask = 7

// Quantiles of cachee_latency_seconds, with their allowed rank error.
var latencyObjectives = map[float64]float64{0.5: 0.05, 0.95: 0.01, 0.99: 0.001}

// Latency is the cachee_latency_seconds summary: the time the cache takes for one
// operation, from a sample of the gRPC data-path calls (Get, Set, Delete, timed around
// the store or L2 tier) and of RESP commands (timed around the command, which the RESP
// shim reports through Observe). Share one between the server (Config.Latency) and
// the RESP shim (resp.Config.Latency = l.Observe), so that both protocols feed the
// metric and the Stats RPC's quantiles.
type Latency struct {
	summary prometheus.Summary
}

// NewLatency returns an empty summary, to register with a server (Config.Latency).
func NewLatency() *Latency {
	return &Latency{summary: prometheus.NewSummary(prometheus.SummaryOpts{
		Name:       "cachee_latency_seconds",
		Help:       "Time the cache takes for one operation (a gRPC Get, Set or Delete, or a RESP command), from a sample of operations over the last 10 minutes.",
		Objectives: latencyObjectives,
		MaxAge:     10 * time.Minute,
	})}
}

// Observe records one operation that took d.
func (l *Latency) Observe(d time.Duration) { l.summary.Observe(d.Seconds()) }

// start returns the time to pass to done, or the zero time when this operation is not
// in the sample.
func (l *Latency) start() time.Time {
	if rand.Uint32()&latencySampleMask != 0 {
		return time.Time{}
	}
	return time.Now()
}

func (l *Latency) done(t time.Time) {
	if !t.IsZero() {
		l.Observe(time.Since(t))
	}
}

// quantiles returns p50, p95 and p99; zero before anything was sampled.
func (l *Latency) quantiles() (p50, p95, p99 time.Duration) {
	var m dto.Metric
	if err := l.summary.Write(&m); err != nil {
		return 0, 0, 0
	}
	for _, q := range m.GetSummary().GetQuantile() {
		v := q.GetValue()
		if math.IsNaN(v) {
			continue
		}
		d := time.Duration(v * float64(time.Second))
		switch q.GetQuantile() {
		case 0.5:
			p50 = d
		case 0.95:
			p95 = d
		case 0.99:
			p99 = d
		}
	}
	return p50, p95, p99
}

// storeCollector exports the store's counters, reading them once per scrape.
type storeCollector struct {
	st *store.Store

	hits, misses, hitRate, memory, memoryLimit, evictions, expirations, sets, deletes, entries, windowShare *prometheus.Desc
}

func newStoreCollector(st *store.Store) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	shares := store.WindowShares()
	return &storeCollector{
		st:          st,
		hits:        d("cachee_hits_total", "Reads that found their key, including hits reported by shared-memory readers."),
		misses:      d("cachee_misses_total", "Reads that did not find their key."),
		hitRate:     d("cachee_hit_rate", "Hits divided by reads since start; 0 before the first read."),
		memory:      d("cachee_memory_bytes", "Bytes of the memory budget in use: entries, index and metadata."),
		memoryLimit: d("cachee_memory_limit_bytes", "The memory budget in bytes (--max-memory)."),
		evictions:   d("cachee_evictions_total", "Entries removed to make room."),
		expirations: d("cachee_expirations_total", "Entries removed because their time to live ran out."),
		sets:        d("cachee_sets_total", "Writes that stored a value."),
		deletes:     d("cachee_deletes_total", "Entries removed by delete."),
		entries:     d("cachee_entries", "Entries in the cache, counting expired ones not yet reclaimed."),
		windowShare: d("cachee_lfu_window_share", fmt.Sprintf("Share of the cache that cachee-lfu gives its recency window (%g favours frequency, %g recency), as it adapted to the workload; only under --eviction cachee-lfu.", shares[0], shares[len(shares)-1])),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.hitRate, c.memory, c.memoryLimit, c.evictions, c.expirations, c.sets, c.deletes, c.entries, c.windowShare} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.hits, s.Hits)
	counter(c.misses, s.Misses)
	gauge(c.hitRate, hitRate(s))
	gauge(c.memory, float64(s.BytesUsed))
	gauge(c.memoryLimit, float64(s.BytesLimit))
	counter(c.evictions, s.Evictions)
	counter(c.expirations, s.Expirations)
	counter(c.sets, s.Sets)
	counter(c.deletes, s.Deletes)
	gauge(c.entries, float64(s.Entries))
	if share, ok := c.st.WindowShare(); ok {
		gauge(c.windowShare, share)
	}
}

// hitRate is hits / (hits + misses), or 0 before the first read.
func hitRate(s store.Stats) float64 {
	if n := s.Hits + s.Misses; n > 0 {
		return float64(s.Hits) / float64(n)
	}
	return 0
}

// readinessCollector exports what holds /ready, so that a warm-up that holds it past
// its bound can be alerted on: cachee_ready, how long each condition has held it,
// and the longest the warm-up conditions are configured to hold it.
type readinessCollector struct {
	s                    *Server
	ready, held, maxWait *prometheus.Desc
}

func newReadinessCollector(s *Server) *readinessCollector {
	return &readinessCollector{
		s:     s,
		ready: prometheus.NewDesc("cachee_ready", "1 when /ready answers 200, 0 while anything holds it.", nil, nil),
		held: prometheus.NewDesc("cachee_readiness_held_seconds",
			"How long each condition now holding /ready has held it: serving (starting or draining), prewarm, hit-rate.", []string{"condition"}, nil),
		maxWait: prometheus.NewDesc("cachee_readiness_max_wait_seconds",
			"The longest a warm-up condition is configured to hold /ready: prewarm (--prewarm-timeout), hit-rate (--ready-max-wait).", []string{"condition"}, nil),
	}
}

func (c *readinessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.held
	ch <- c.maxWait
}

func (c *readinessCollector) Collect(ch chan<- prometheus.Metric) {
	ready := 0.0
	if ok, _ := c.s.ready.Ready(); ok {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready)
	for cond, d := range c.s.ready.HeldFor() {
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, d.Seconds(), cond)
	}
	cfg := c.s.cfg
	if cfg.PrewarmAtStart && cfg.Prewarmer != nil && cfg.Prewarm.Keys != 0 {
		ch <- prometheus.MustNewConstMetric(c.maxWait, prometheus.GaugeValue, cfg.Prewarm.Timeout.Seconds(), "prewarm")
	}
	if cfg.ReadyHitRate > 0 {
		ch <- prometheus.MustNewConstMetric(c.maxWait, prometheus.GaugeValue, cfg.ReadyMaxWait.Seconds(), "hit-rate")
	}
}
