package server_test

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// TestReadinessMetrics: /metrics says whether /ready holds, what holds it and for how
// long, and how long the warm-up conditions may hold it, so that an alert can compare
// the two.
func TestReadinessMetrics(t *testing.T) {
	st, err := store.Open(store.Config{MaxMemory: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := server.DefaultConfig()
	cfg.ReadyHitRate, cfg.ReadyMaxWait = 0.5, 90*time.Second
	srv, err := server.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	gather := func() map[string][]*dto.Metric {
		t.Helper()
		mfs, err := srv.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]*dto.Metric{}
		for _, mf := range mfs {
			m[mf.GetName()] = mf.GetMetric()
		}
		return m
	}
	label := func(m *dto.Metric) string { return m.GetLabel()[0].GetValue() }

	// Before Serve, "serving" holds readiness (starting).
	time.Sleep(10 * time.Millisecond)
	m := gather()
	if v := m["cachee_ready"][0].GetGauge().GetValue(); v != 0 {
		t.Errorf("cachee_ready %v while starting", v)
	}
	if h := m["cachee_readiness_held_seconds"]; len(h) != 1 || label(h[0]) != "serving" || h[0].GetGauge().GetValue() < 0.01 {
		t.Errorf("held while starting: %v", h)
	}
	if w := m["cachee_readiness_max_wait_seconds"]; len(w) != 1 || label(w[0]) != "hit-rate" || w[0].GetGauge().GetValue() != 90 {
		t.Errorf("max wait: %v", w)
	}
	srv.Readiness().Hold("prewarm", "loading")
	srv.Readiness().Release("serving")
	if h := gather()["cachee_readiness_held_seconds"]; len(h) != 1 || label(h[0]) != "prewarm" {
		t.Errorf("held by prewarm alone: %v", h)
	}
	srv.Readiness().Release("prewarm")
	m = gather()
	if v := m["cachee_ready"][0].GetGauge().GetValue(); v != 1 || len(m["cachee_readiness_held_seconds"]) != 0 {
		t.Errorf("ready: cachee_ready %v, held %v", v, m["cachee_readiness_held_seconds"])
	}
}
