package main

import (
	"runtime"

	"github.com/cachee/cachee/bench/internal/procs"
)

// grpcResult are the figures of the gRPC path that its targets are about, gathered
// from sections 1 and 2.
type grpcResult struct {
	ClientAllocs float64 `json:"client_allocs_per_get"`  // the Go SDK's, in the report's process
	ServerAllocs float64 `json:"sidecar_allocs_per_get"` // the sidecar's, from its go_memstats_mallocs_total
	OverBare     float64 `json:"p50_over_bare_check"`    // 100 B Get p50 / bare grpc-go health Check p50
	OverRESP     float64 `json:"p50_over_resp_socket"`   // 100 B Get p50 / cachee RESP GET on the socket p50
	Rate50       float64 `json:"rate_50_goroutines"`     // GETs/s, 50 goroutines on one connection
	Redis50      float64 `json:"redis_rate_c50"`         // redis-benchmark -c 50, redis-server over TCP
	RatioRedis50 float64 `json:"ratio_redis_c50"`        // median of the per-run ratios
	CPUOneClient float64 `json:"server_cpu_us_per_get"`  // one client
}

// allocsPerGet counts the allocations of n Go SDK gRPC Gets made one at a time: in
// this process (the client's) and in the sidecar, from the Go runtime's count that
// its /metrics shows, less what a scrape of /metrics allocates itself.
func (e *env) allocsPerGet(n int) (client, server float64, err error) {
	get := e.getter(pGRPC, hotKey(100), 100)
	for range 1000 { // warm: buffers and pools settle
		if err := get(); err != nil {
			return 0, 0, err
		}
	}
	s0, err := e.sidecarMallocs()
	if err != nil {
		return 0, 0, err
	}
	s1, err := e.sidecarMallocs()
	if err != nil {
		return 0, 0, err
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		if err := get(); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&m1)
	s2, err := e.sidecarMallocs()
	if err != nil {
		return 0, 0, err
	}
	scrape := s1 - s0
	return float64(m1.Mallocs-m0.Mallocs) / float64(n), float64(s2-s1-scrape) / float64(n), nil
}

// sidecarMallocs is the sidecar's count of heap allocations.
func (e *env) sidecarMallocs() (uint64, error) { return procs.Mallocs(e.cachee.Metrics) }

// meets says whether a figure meets its target.
func meets(ok bool) string {
	if ok {
		return "target met"
	}
	return "target NOT met"
}
