package main

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// maxSamples caps the latencies kept per tier (8 MiB each at most); past it, the
// percentiles describe the first maxSamples requests, which a bounded load never
// exceeds in practice.
const maxSamples = 1 << 20

// tierStats records how long the app waited for data, per tier that answered.
type tierStats struct {
	mu      sync.Mutex
	samples map[tier][]time.Duration
	errors  map[string]int64 // sidecar errors by gRPC code, answered from the origin instead
	wrong   int64            // cached values that differ from the origin's
}

func newTierStats() *tierStats {
	return &tierStats{samples: make(map[tier][]time.Duration), errors: make(map[string]int64)}
}

func (s *tierStats) record(t tier, d time.Duration) {
	s.mu.Lock()
	if len(s.samples[t]) < maxSamples {
		s.samples[t] = append(s.samples[t], d)
	}
	s.mu.Unlock()
}

func (s *tierStats) sidecarError(code string) {
	s.mu.Lock()
	s.errors[code]++
	s.mu.Unlock()
}

func (s *tierStats) mismatch() {
	s.mu.Lock()
	s.wrong++
	s.mu.Unlock()
}

// tierSummary is one tier's line in /stats.
type tierSummary struct {
	Count int     `json:"count"`
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
}

// statsReport is what /stats answers.
type statsReport struct {
	Requests      int                    `json:"requests"`
	HitRate       float64                `json:"hit_rate"` // answered by shm or sidecar
	SidecarErrors map[string]int64       `json:"sidecar_errors"`
	Mismatches    int64                  `json:"mismatches"`
	Tiers         map[string]tierSummary `json:"tiers"`
}

func (s *tierStats) report() statsReport {
	s.mu.Lock()
	copies := make(map[tier][]time.Duration, len(s.samples))
	for t, d := range s.samples {
		copies[t] = slices.Clone(d)
	}
	r := statsReport{SidecarErrors: maps.Clone(s.errors), Mismatches: s.wrong, Tiers: make(map[string]tierSummary)}
	s.mu.Unlock()
	hits := 0
	for t, d := range copies {
		slices.Sort(d)
		r.Tiers[string(t)] = tierSummary{Count: len(d), P50us: micros(quantile(d, 0.50)), P99us: micros(quantile(d, 0.99))}
		r.Requests += len(d)
		if t != tierOrigin {
			hits += len(d)
		}
	}
	if r.Requests > 0 {
		r.HitRate = float64(hits) / float64(r.Requests)
	}
	return r
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
