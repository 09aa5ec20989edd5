package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cachee/cachee/bench/internal/stats"
)

// The "SDK paths" section: each language's bench runner reads one 100-byte hot key from
// one sidecar through each of its paths (shared memory, gRPC, a Redis client over the
// socket) and prints one JSON object per path:
//
//	{"sdk":"rust","path":"shm","p50_ns":41,"p99_ns":60,"mean_ns":45,"n":20000,"timing":"batch"}
//
// "timing" is "spaced" when each call is timed on its own, "batch" when a batch of calls
// is timed and divided. A runner is started with CACHEE_SOCKET (the socket path),
// CACHEE_SHM (the segment directory), BENCH_KEY, BENCH_N (calls per path) and
// BENCH_TIME_LIMIT (seconds for the whole runner).

// sdkRunner is one language's runner: how to build it (in Dir, from the repository
// root) and how to run it.
type sdkRunner struct {
	SDK   string
	Dir   string
	Build []string // nil: nothing to build
	Run   []string // relative to Dir
}

// sdkRunners lists one runner per language. Smoke runs build debug binaries, which
// make test's SDK tests build anyway; full runs build optimized ones.
func sdkRunners(smoke bool) []sdkRunner {
	profile, flag := "release", []string{"--release"}
	if smoke {
		profile, flag = "debug", nil
	}
	return []sdkRunner{
		{SDK: "rust", Dir: "sdk/rust",
			Build: append([]string{"cargo", "build", "--locked", "--quiet", "--example", "bench"}, flag...),
			Run:   []string{"target/" + profile + "/examples/bench"}},
		// The wheel make builds (always release: it is the package as published, and
		// make test's Python tests install the same one) in the venv, with redis-py.
		// JMH benchmarks built by mvn -Pbench (kept out of the test build), run from the
		// classpath that build writes.
		{SDK: "java", Dir: "sdk/java",
			Build: []string{"./bench.sh", "--build-only"},
			Run:   []string{"./bench.sh"}},
		{SDK: "python", Dir: "sdk/python",
			Build: []string{"make", "-C", "../..", "--no-print-directory", "install-python"},
			Run:   []string{"../../.tmp/venv/bin/python", "bench/paths.py"}},
		// The addon of the tarball make packs (always release: the package as
		// published), tsc's output and ioredis in sdk/typescript.
		{SDK: "typescript", Dir: "sdk/typescript",
			Build: []string{"make", "-C", "../..", "--no-print-directory", "install-typescript"},
			Run:   []string{"node", "dist/bench/paths.js"}},
	}
}

// sdkLine is what a runner prints per path.
type sdkLine struct {
	SDK    string  `json:"sdk"`
	Path   string  `json:"path"`
	P50    float64 `json:"p50_ns"`
	P99    float64 `json:"p99_ns"`
	Mean   float64 `json:"mean_ns"`
	N      int     `json:"n"`
	Timing string  `json:"timing"`
}

// sdkResult is one SDK's path over the runs: medians of the runs' figures.
type sdkResult struct {
	SDK      string    `json:"sdk"`
	Path     string    `json:"path"`
	Timing   string    `json:"timing"`
	P50      float64   `json:"p50_ns"`
	P99      float64   `json:"p99_ns"`
	Mean     float64   `json:"mean_ns"`
	N        int       `json:"calls_per_run"`
	RunP50s  []float64 `json:"run_p50s_ns"`
	RatioP50 float64   `json:"ratio_p50_to_redis_client"`
}

// sdkPathOrder orders a runner's paths in the table; others follow in their own order.
var sdkPathOrder = []string{"shm", "client-shm", "grpc", "redis"}

const sdkValueSize = 100

func (b *bench) sdkPaths(s *section) error {
	e, err := b.env()
	if err != nil {
		return err
	}
	runs, n, limit := 3, 20_000, 60.0
	if b.cfg.Smoke {
		runs, n, limit = 1, 2000, 30
	}
	shmDir := filepath.Dir(e.cachee.Segment)
	key := hotKey(sdkValueSize)
	runners := sdkRunners(b.cfg.Smoke)
	for _, r := range runners {
		if r.Build == nil {
			continue
		}
		log.Printf("sdk paths: building the %s runner", r.SDK)
		s.command(fmt.Sprintf("`%s` in `%s`", strings.Join(r.Build, " "), r.Dir))
		cmd := exec.CommandContext(e.ctx, r.Build[0], r.Build[1:]...)
		cmd.Dir = r.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build the %s runner: %v\n%s", r.SDK, err, out)
		}
	}
	s.command(fmt.Sprintf("each runner with CACHEE_SOCKET, CACHEE_SHM, BENCH_KEY=%s, BENCH_N=%d, BENCH_TIME_LIMIT=%g", key, n, limit))
	s.runs = fmt.Sprintf("%d per runner, alternating the runners' order; each figure is the median over the runs of that run's figure", runs)
	s.spread = "the last column gives the lowest and highest p50 of the runs"
	lines := map[[2]string][]sdkLine{}
	var order [][2]string
	for r := range runs {
		rs := slices.Clone(runners)
		if r%2 == 1 {
			slices.Reverse(rs)
		}
		for _, rn := range rs {
			out, err := runSDK(e.ctx, rn, e.cachee.Socket, shmDir, key, n, limit)
			if err != nil {
				return err
			}
			for _, l := range out {
				id := [2]string{l.SDK, l.Path}
				if _, seen := lines[id]; !seen {
					order = append(order, id)
				}
				lines[id] = append(lines[id], l)
			}
		}
	}
	slices.SortStableFunc(order, func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return pathRank(a[1]) - pathRank(b[1])
	})
	var rows [][]string
	var res []sdkResult
	for _, id := range order {
		ls := lines[id]
		med := func(f func(sdkLine) float64) float64 {
			v := make([]float64, len(ls))
			for i, l := range ls {
				v[i] = f(l)
			}
			return stats.Median(v)
		}
		r := sdkResult{SDK: id[0], Path: id[1], Timing: ls[0].Timing, N: ls[0].N,
			P50: med(func(l sdkLine) float64 { return l.P50 }), P99: med(func(l sdkLine) float64 { return l.P99 }),
			Mean: med(func(l sdkLine) float64 { return l.Mean })}
		for _, l := range ls {
			r.RunP50s = append(r.RunP50s, l.P50)
		}
		if base := lines[[2]string{id[0], "redis"}]; len(base) == len(ls) {
			r.RatioP50 = stats.Median(stats.PairedRatios(r.RunP50s, pick50(base)))
		}
		res = append(res, r)
		rows = append(rows, []string{r.SDK, r.Path, r.Timing, fmtNs(r.P50), fmtNs(r.P99), fmtNs(r.Mean),
			fmtRatio(r.RatioP50), strconv.Itoa(r.N), fmtNs(slices.Min(r.RunP50s)) + " – " + fmtNs(slices.Max(r.RunP50s))})
	}
	s.printf("One sidecar (the one of sections 1 and 2, `%s`) and one %s hot key; each SDK's runner reads it through each path it has, one call in flight. Paths: `shm`, the SDK's client reading the shared-memory segment; `grpc`, the SDK's client over gRPC on the Unix socket; `redis`, that language's Redis client (GET) on the same socket, cachee's RESP: the reference each ratio is taken to, measured by the same runner in the same run. Timing: `spaced` times each call on its own (the clock's own cost included); `batch` times batches of calls and divides, for paths whose calls are not much longer than reading the clock (the p99 is then of batch means).\n\n",
		b.shortArgs(e.cachee.Args), sizeName(sdkValueSize))
	table(&s.body, []string{"SDK", "path", "timing", "p50", "p99", "mean", "p50 ÷ its Redis client", "calls per run", "p50 of the runs (min – max)"},
		"lllrrrrrr", rows)
	b.results.SDKs = res
	return nil
}

func pathRank(p string) int {
	if i := slices.Index(sdkPathOrder, p); i >= 0 {
		return i
	}
	return len(sdkPathOrder)
}

func pick50(ls []sdkLine) []float64 {
	v := make([]float64, len(ls))
	for i, l := range ls {
		v[i] = l.P50
	}
	return v
}

// fmtNs shows nanoseconds as fmtDur does durations, keeping a fraction below 10 ns.
func fmtNs(ns float64) string {
	if ns > 0 && ns < 10 {
		return fmt.Sprintf("%.1f ns", ns)
	}
	return fmtDur(time.Duration(ns))
}

// runSDK runs one runner and parses its lines.
func runSDK(ctx context.Context, r sdkRunner, sock, shm, key string, n int, limit float64) ([]sdkLine, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(limit*float64(time.Second))+time.Minute)
	defer cancel()
	// A relative program path is taken relative to cmd.Dir.
	cmd := exec.CommandContext(ctx, r.Run[0], r.Run[1:]...)
	cmd.Dir = r.Dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CACHEE_") && !strings.HasPrefix(kv, "CACHE_") && !strings.HasPrefix(kv, "BENCH_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "CACHEE_SOCKET="+sock, "CACHEE_SHM="+shm, "BENCH_KEY="+key,
		fmt.Sprintf("BENCH_N=%d", n), fmt.Sprintf("BENCH_TIME_LIMIT=%g", limit))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("the %s runner: %v\n%s", r.SDK, err, stderr.Bytes())
	}
	var lines []sdkLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l sdkLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("the %s runner printed %q: %w", r.SDK, sc.Text(), err)
		}
		if l.SDK != r.SDK || l.Path == "" || l.N <= 0 || l.P50 <= 0 || (l.Timing != "spaced" && l.Timing != "batch") {
			return nil, fmt.Errorf("the %s runner printed an incomplete line %q", r.SDK, sc.Text())
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("the %s runner printed nothing", r.SDK)
	}
	return lines, nil
}
