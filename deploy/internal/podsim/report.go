package podsim

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Report is what one pod run measured.
type Report struct {
	Workload   string
	CacheeArgs []string
	Identity   string

	L2Mode    string
	L2Missing []string // L2 flags the manifest passes and this cachee lacks
	L2Dropped []string // arguments not passed because of that (or -l2=off)
	L2Addr    string

	MemoryLimit string
	GOMEMLIMIT  string

	StartupPassed time.Duration
	GateOpened    bool
	ReadyAfter    time.Duration
	Probes        []ProbeResult

	Load     LoadResult
	App      AppStats
	Health   map[string]any
	Memory   map[string]string
	Segment  int64 // bytes the segment file holds on tmpfs
	L2Direct *TierLatency

	AppStop, CacheeStop     time.Duration
	AppKilled, CacheeKilled bool
	AppExit, CacheeExit     int
	Termination             time.Duration
	GracePeriod             time.Duration
	SocketLeft              bool
}

// ProbeResult counts one probe's outcomes over the run.
type ProbeResult struct {
	Name             string
	Passes, Failures int
	LastError        string
}

// LoadResult is the load generator's view: HTTP requests to the app.
type LoadResult struct {
	Requests, Errors int
	P50, P99         time.Duration
}

// AppStats is the example app's /stats.
type AppStats struct {
	Requests      int                `json:"requests"`
	HitRate       float64            `json:"hit_rate"`
	SidecarErrors map[string]int64   `json:"sidecar_errors"`
	Mismatches    int64              `json:"mismatches"`
	Tiers         map[string]AppTier `json:"tiers"`
}

// AppTier is one tier's line in the app's /stats.
type AppTier struct {
	Count int     `json:"count"`
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
}

// TierLatency is a measured latency distribution.
type TierLatency struct {
	Count, Hits int
	P50, P99    time.Duration
}

// Print writes the report for a person.
func (r *Report) Print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("== pod %s", r.Workload)
	p("identity:   %s", r.Identity)
	p("memory:     limit %s, GOMEMLIMIT %s (from the downward API); segment file %d MiB on tmpfs, all of it charged to cachee's cgroup", r.MemoryLimit, r.GOMEMLIMIT, r.Segment>>20)
	p("            cachee %s", fmtMem(r.Memory))
	p("L2:         %s", r.L2Mode)
	if r.L2Addr != "" {
		p("            redis-server on %s stands in for the L2 Service", r.L2Addr)
	}
	if len(r.L2Dropped) > 0 {
		p("            not passed: %s", strings.Join(r.L2Dropped, " "))
	}
	p("startup:    grpc_health_probe on the socket passed after %v; app started then", r.StartupPassed.Round(time.Millisecond))
	if r.GateOpened {
		p("readiness:  gate OPENED after %v (cachee /ready and app /readyz both passing)", r.ReadyAfter.Round(time.Millisecond))
	} else {
		p("readiness:  gate did NOT open")
	}
	for _, pr := range r.Probes {
		line := fmt.Sprintf("            %-17s %d passed, %d failed", pr.Name, pr.Passes, pr.Failures)
		if pr.LastError != "" {
			line += " (last: " + pr.LastError + ")"
		}
		p("%s", line)
	}
	p("load:       %d requests, %d errors; HTTP round trip p50 %v p99 %v", r.Load.Requests, r.Load.Errors, r.Load.P50.Round(time.Microsecond), r.Load.P99.Round(time.Microsecond))
	p("app:        hit rate %.3f over %d reads; sidecar errors %s; %d values differing from the origin", r.App.HitRate, r.App.Requests, fmtCodes(r.App.SidecarErrors), r.App.Mismatches)
	tiers := make([]string, 0, len(r.App.Tiers))
	for t := range r.App.Tiers {
		tiers = append(tiers, t)
	}
	order := map[string]int{"shm": 0, "sidecar": 1, "origin": 2}
	sort.Slice(tiers, func(i, j int) bool { return order[tiers[i]] < order[tiers[j]] })
	p("tiers (time the app waited for the data):")
	for _, t := range tiers {
		x := r.App.Tiers[t]
		p("  %-8s %8d reads  p50 %9.1f µs  p99 %9.1f µs  %s", t, x.Count, x.P50us, x.P99us, tierNote(t))
	}
	if r.L2Direct != nil {
		p("  %-8s %8d reads  p50 %9.1f µs  p99 %9.1f µs  %s (%d hits)", "L2", r.L2Direct.Count, us(r.L2Direct.P50), us(r.L2Direct.P99), "redis-server GET over loopback TCP, sampled during the load", r.L2Direct.Hits)
	}
	if r.Health != nil {
		p("cachee:     /health hit_rate %v, entries %v, memory %v of %v", r.Health["hit_rate"], r.Health["entries"], r.Health["memory_used"], r.Health["memory_limit"])
	}
	p("shutdown:   app drained in %v (exit %d), cachee in %v (exit %d), %v in all with preStops; grace period %v; socket removed: %v",
		r.AppStop.Round(time.Millisecond), r.AppExit, r.CacheeStop.Round(time.Millisecond), r.CacheeExit,
		r.Termination.Round(time.Millisecond), r.GracePeriod, !r.SocketLeft)
}

func tierNote(t string) string {
	switch t {
	case "shm":
		return "segment read in the app's process"
	case "sidecar":
		return "gRPC over the Unix socket (an L2 read-through when L2 is on)"
	case "origin":
		return "cache miss: the simulated database, then a Set"
	}
	return ""
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func fmtMem(m map[string]string) string {
	if m == nil {
		return "(memory unknown)"
	}
	return fmt.Sprintf("RSS %s = anon %s (Go heap, stacks) + shmem %s (segment pages touched) + file %s (binary)", m["VmRSS"], m["RssAnon"], m["RssShmem"], m["RssFile"])
}

func fmtCodes(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
