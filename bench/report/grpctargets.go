package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/cachee/cachee/bench/internal/stats"
)

// The gRPC fast path's targets, each against its reference measured in the same run:
//
//   - Go SDK gRPC Get p50 at most 1.2 × cachee's RESP GET on the socket (section 1);
//   - the Go SDK with 50 goroutines over one connection at least 1.0 × redis-server's
//     GET rate with redis-benchmark -c 50 over TCP (section 2);
//   - server CPU per gRPC Get at most 1.5 × per RESP GET on the socket (section 2).
const (
	targetP50      = 1.2
	targetRate     = 1.0
	targetCPUPerOp = 1.5
)

// grpcTargets writes the targets' figures, and says plainly which are met.
func (b *bench) grpcTargets() []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "## gRPC targets\n\n")
	fmt.Fprintf(&w, "From sections 1 and 2 of this run. Each ratio is the median of ratios of runs made back to back (paired run by run), so that the machine's load falls on both sides alike. The row of grpc-go alone (`--grpc-fast-path=false`, a second cachee in the same run) shows what the fast path changes.\n\n")
	var rows [][]string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**NOT met**"
	}
	lat := map[string]latencyResult{}
	for _, r := range b.results.Latency {
		if r.Value == 100 {
			lat[r.Path] = r
		}
	}
	if resp, ok := lat[pRESPUnix]; ok {
		for _, p := range []string{pGRPC, pGRPCGo} {
			g, ok := lat[p]
			if !ok {
				continue
			}
			ratio := stats.Median(stats.PairedRatios(durs(g.RunP50s), durs(resp.RunP50s)))
			target := fmt.Sprintf("≤ %.1f×", targetP50)
			met := verdict(ratio <= targetP50)
			if p == pGRPCGo {
				target, met = "(reference)", ""
			}
			rows = append(rows, []string{"Get p50, one call in flight, 100 B: " + pathName[p], fmtDur(g.P50),
				"cachee RESP GET on the socket: " + fmtDur(resp.P50), fmtRatio(ratio), target, met})
		}
	}
	find := func(path, load string) (throughResult, bool) {
		for _, r := range b.results.Through {
			if r.Path == path && r.Load == load && r.Skipped == "" {
				return r, true
			}
		}
		return throughResult{}, false
	}
	if redis, ok := find(pRedisTCP, "50 clients"); ok {
		for _, p := range []string{pGRPC, pGRPCGo} {
			g, ok := find(p, "50 clients")
			if !ok {
				continue
			}
			target, met := fmt.Sprintf("≥ %.1f×", targetRate), verdict(g.Ratio >= targetRate)
			if p == pGRPCGo {
				target, met = "(reference)", ""
			}
			rows = append(rows, []string{"GETs per second, 50 goroutines over one connection: " + pathName[p], fmtRate(g.Rate),
				"redis-benchmark -c 50, redis-server over TCP: " + fmtRate(redis.Rate), fmtRatio(g.Ratio), target, met})
		}
	}
	for _, load := range []string{"1 client", "50 clients"} {
		resp, ok := find(pRESPUnix, load)
		if !ok {
			continue
		}
		for _, p := range []string{pGRPC, pGRPCGo} {
			g, ok := find(p, load)
			if !ok {
				continue
			}
			ratio := stats.Median(stats.PairedRatios(g.CPUPerOp, resp.CPUPerOp))
			target, met := fmt.Sprintf("≤ %.1f×", targetCPUPerOp), verdict(ratio <= targetCPUPerOp)
			if p == pGRPCGo {
				target, met = "(reference)", ""
			}
			rows = append(rows, []string{fmt.Sprintf("server CPU per GET, %s: %s", load, pathName[p]), fmt.Sprintf("%.2f µs", stats.Median(g.CPUPerOp)),
				fmt.Sprintf("cachee RESP GET on the socket: %.2f µs", stats.Median(resp.CPUPerOp)), fmtRatio(ratio), target, met})
		}
	}
	if len(rows) == 0 {
		fmt.Fprintf(&w, "Not available: sections 1 and 2 did not finish.\n\n")
		return w.Bytes()
	}
	table(&w, []string{"figure", "gRPC", "reference, same run", "ratio", "target", ""}, "lrlrrl", rows)
	return w.Bytes()
}

// durs converts durations to float nanoseconds, for the paired ratios.
func durs(d []time.Duration) []float64 {
	v := make([]float64, len(d))
	for i, x := range d {
		v[i] = float64(x)
	}
	return v
}
