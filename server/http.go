package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthReport is the JSON body of GET /health.
type HealthReport struct {
	Status           string  `json:"status"` // "ok", "starting" or "draining"
	Entries          int64   `json:"entries"`
	MemoryUsed       string  `json:"memory_used"`  // e.g. "231 MB"
	MemoryLimit      string  `json:"memory_limit"` // e.g. "256 MB"
	MemoryUsedBytes  int64   `json:"memory_used_bytes"`
	MemoryLimitBytes int64   `json:"memory_limit_bytes"`
	HitRate          float64 `json:"hit_rate"`
	UptimeSeconds    int64   `json:"uptime_seconds"`
}

// ReadyReport is the JSON body of GET /ready.
type ReadyReport struct {
	Ready      bool     `json:"ready"`
	WaitingFor []string `json:"waiting_for,omitempty"` // "condition: reason"
}

func (s *Server) healthMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		st := s.st.Stats()
		writeJSON(w, http.StatusOK, HealthReport{
			Status:           s.phase(),
			Entries:          st.Entries,
			MemoryUsed:       HumanBytes(st.BytesUsed),
			MemoryLimit:      HumanBytes(st.BytesLimit),
			MemoryUsedBytes:  st.BytesUsed,
			MemoryLimitBytes: st.BytesLimit,
			HitRate:          math.Round(hitRate(st)*1e4) / 1e4,
			UptimeSeconds:    int64(time.Since(s.started) / time.Second),
		})
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		ok, why := s.ready.Ready()
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, ReadyReport{Ready: ok, WaitingFor: why})
	})
	return mux
}

func (s *Server) metricsMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// HumanBytes formats n in the binary units that --max-memory takes (1 MB = 1 MiB, as
// in Redis), so that --max-memory=256mb reads back as "256 MB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	suffix := [...]string{"KB", "MB", "GB", "TB", "PB"}[i]
	if v < 10 && v != math.Trunc(v) {
		return fmt.Sprintf("%.1f %s", v, suffix)
	}
	return fmt.Sprintf("%.0f %s", v, suffix)
}
