package l2_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// sidecar is a tier over its own store, as one cachee process has.
type sidecar struct {
	*l2.Tier
	st  *store.Store
	reg *prometheus.Registry
	log *strings.Builder
}

func newSidecar(t testing.TB, url string, edit ...func(*l2.Config)) *sidecar {
	t.Helper()
	st, err := store.Open(store.Config{MaxMemory: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := l2.Config{
		URL:   url,
		L1TTL: time.Minute,
		// Generous, so that a loaded machine (the whole suite under -race on 2 cores)
		// does not turn reads into timeouts; the tests about timeouts set their own.
		Timeout:    2 * time.Second,
		Registerer: reg,
		// The tests drive the canary and the hotset themselves.
		CanaryInterval: -1,
		HotsetKey:      "",
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	for _, e := range edit {
		e(&cfg)
	}
	tier, err := l2.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tier.Close()
		st.Close()
	})
	return &sidecar{Tier: tier, st: st, reg: reg}
}

// metric reads a counter or gauge of the sidecar, summed over its labels.
func (s *sidecar) metric(t testing.TB, name string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// l1 reads key from the sidecar's store only.
func (s *sidecar) l1(key string) (string, bool) {
	v, ok, _ := s.st.Get([]byte(key), nil)
	return string(v), ok
}

// client is an ordinary Redis client: "another pod" writing to L2.
func client(t testing.TB, url string) rueidis.Client {
	t.Helper()
	ep, err := l2.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: ep.Addrs, Password: ep.Password, DisableCache: true, ForceSingleClient: !ep.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func do(t testing.TB, c rueidis.Client, args ...string) rueidis.RedisResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cmd rueidis.Completed
	if len(args) > 1 {
		cmd = c.B().Arbitrary(args[0]).Keys(args[1]).Args(args[2:]...).Build()
	} else {
		cmd = c.B().Arbitrary(args[0]).Build()
	}
	return c.Do(ctx, cmd)
}

// waitUntil polls cond. It spins (yielding) for the first 20 ms, because a sleep on
// this kind of machine lasts about a millisecond whatever it asks for, which would
// round every measured lag up to that; then it sleeps between polls.
func waitUntil(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	for !cond() {
		now := time.Now()
		if now.After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		if now.Sub(start) < 20*time.Millisecond {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// histogram summarizes a histogram metric of the sidecar: count, mean, and the
// upper bounds of the buckets holding the median and the 99th percentile.
func (s *sidecar) histogram(t testing.TB, name string) string {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		n := h.GetSampleCount()
		if n == 0 {
			return "no samples"
		}
		q := func(p float64) string {
			for _, b := range h.GetBucket() {
				if float64(b.GetCumulativeCount()) >= p*float64(n) {
					return "<= " + time.Duration(b.GetUpperBound()*float64(time.Second)).String()
				}
			}
			return "> last bucket"
		}
		return fmt.Sprintf("n=%d mean=%v p50 %s p99 %s", n, time.Duration(h.GetSampleSum()/float64(n)*float64(time.Second)).Round(time.Microsecond), q(0.5), q(0.99))
	}
	return "no such metric"
}

// quantiles summarizes durations for the test log.
func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v p99=%v max=%v", len(s), s[0], q(0.5), q(0.9), q(0.99), s[len(s)-1])
}

type rueidisCompleted = rueidis.Completed
