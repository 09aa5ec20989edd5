package server

import (
	"context"
	"fmt"
	"time"
)

// gateOnHitRate holds readiness until the hit rate over the last ReadyWindow reaches
// ReadyHitRate (see Config), sampling the store's counters ten times a window.
func (s *Server) gateOnHitRate(ctx context.Context) {
	cfg := s.cfg
	if cfg.ReadyHitRate <= 0 {
		return
	}
	const cond = "hit-rate"
	want := fmt.Sprintf("hit rate %.2f over %v (at least %d reads)", cfg.ReadyHitRate, cfg.ReadyWindow, cfg.ReadyMinReads)
	s.ready.Hold(cond, "waiting for "+want)
	go func() {
		defer s.ready.Release(cond)
		type sample struct {
			at           time.Time
			hits, misses uint64
		}
		step := max(cfg.ReadyWindow/10, 10*time.Millisecond)
		tick := time.NewTicker(step)
		defer tick.Stop()
		giveUp := time.NewTimer(cfg.ReadyMaxWait)
		defer giveUp.Stop()
		st := s.st.Stats()
		samples := []sample{{time.Now(), st.Hits, st.Misses}}
		for {
			select {
			case <-ctx.Done():
				return
			case <-giveUp.C:
				s.log.Warn("readiness: the hit rate did not reach its threshold within max wait; ready anyway",
					"want", want, "max_wait", cfg.ReadyMaxWait)
				return
			case now := <-tick.C:
				st := s.st.Stats()
				samples = append(samples, sample{now, st.Hits, st.Misses})
				for len(samples) > 2 && now.Sub(samples[1].at) >= cfg.ReadyWindow {
					samples = samples[1:]
				}
				first := samples[0]
				hits, misses := st.Hits-first.hits, st.Misses-first.misses
				if hits+misses < cfg.ReadyMinReads {
					s.ready.Hold(cond, fmt.Sprintf("%d reads in the last %v, waiting for %s", hits+misses, now.Sub(first.at).Round(time.Millisecond), want))
					continue
				}
				rate := float64(hits) / float64(hits+misses)
				if rate >= cfg.ReadyHitRate {
					s.log.Info("readiness: hit rate reached", "rate", rate, "want", cfg.ReadyHitRate)
					return
				}
				s.ready.Hold(cond, fmt.Sprintf("hit rate %.3f, waiting for %s", rate, want))
			}
		}
	}()
}
