package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/stats"
)

// load is one column of the throughput table.
type load struct {
	id       string // key of config.TpN
	name     string
	clients  int
	pipeline int
}

func (b *bench) loads() []load {
	return []load{
		{"c1", "1 client", 1, 1},
		{"c8", "8 clients", 8, 1},
		{"c50", "50 clients", 50, 1},
		{"pipe", fmt.Sprintf("50 clients, pipeline %d", b.cfg.TpPipeline), 50, b.cfg.TpPipeline},
	}
}

// throughResult is one path under one load.
type throughResult struct {
	Path      string    `json:"path"`
	Load      string    `json:"load"`
	Rates     []float64 `json:"rates"` // GETs per second, one per run
	Rate      float64   `json:"rate"`  // median
	Ratio     float64   `json:"ratio"` // median of the per-run ratios to redis-server TCP
	CPUPerOp  []float64 `json:"server_cpu_us_per_op"`
	Skipped   string    `json:"skipped,omitempty"`
	Generator string    `json:"generator"`
}

// isRESP tells the paths redis-benchmark drives from those Go goroutines drive.
func isRESP(p string) bool { return p != pShm && p != pGRPC && p != pGRPCGo }

func (b *bench) throughput(s *section) error {
	e, err := b.env()
	if err != nil {
		return err
	}
	defer b.closeEnv()
	cfg := b.cfg
	loads := b.loads()
	s.command(fmt.Sprintf("RESP and redis rows: `redis-benchmark -t get -d 100 -c C -P P -n N --csv` (`-s SOCKET` or `-h 127.0.0.1 -p PORT`), N = %d, %d, %d and %d for the four columns",
		cfg.TpN["c1"], cfg.TpN["c8"], cfg.TpN["c50"], cfg.TpN["pipe"]))
	s.command(fmt.Sprintf("shared-memory and gRPC rows: C goroutines in the report's process calling the Go SDK's GetInto on one shared client for %v; the pipelined gRPC column is BatchGet of %d keys per call, counted as %d GETs", cfg.TpDuration, cfg.TpPipeline, cfg.TpPipeline))
	s.runs = fmt.Sprintf("%d per path and column, alternating order (the paths in order, then in reverse); each figure is the median of the runs, each ratio the median of the per-run ratios to redis-server TCP", cfg.TpRuns)
	s.spread = "the second table gives the lowest and highest rate of the runs"
	s.printf("GET of one hot key with a 100-byte value. The load generator (redis-benchmark, or the report's own goroutines) runs on the same %d CPUs as the server it drives, as an application in the same pod would. A gRPC client multiplexes its goroutines' calls over one HTTP/2 connection; redis-benchmark opens one connection per client.\n\n", b.machine.CPUs)
	var rs []throughResult
	for _, ld := range loads {
		log.Printf("throughput: %s, %d runs", ld.name, cfg.TpRuns)
		byPath := map[string]*throughResult{}
		for _, p := range pathOrder {
			byPath[p] = &throughResult{Path: p, Load: ld.name, Generator: "redis-benchmark"}
			if !isRESP(p) {
				byPath[p].Generator = "Go SDK goroutines"
			}
		}
		if ld.pipeline > 1 {
			byPath[pShm].Skipped = "n/a: a shared-memory read has no round trip to pipeline"
		}
		for r := range cfg.TpRuns {
			order := slices.Clone(pathOrder)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, p := range order {
				res := byPath[p]
				if res.Skipped != "" {
					continue
				}
				pid := e.pid(p)
				cpu0, err := procs.CPUTime(pid)
				if err != nil {
					return fmt.Errorf("%s, %s: server CPU time: %w", pathName[p], ld.name, err)
				}
				var rate float64
				var ops int
				if isRESP(p) {
					rate, ops, err = e.redisBenchmark(p, ld, cfg.TpN[ld.id])
				} else {
					rate, ops, err = e.goLoad(p, ld, cfg.TpDuration)
				}
				if err != nil {
					return fmt.Errorf("%s, %s: %w", pathName[p], ld.name, err)
				}
				cpu1, err := procs.CPUTime(pid)
				if err != nil {
					return fmt.Errorf("%s, %s: server CPU time: %w", pathName[p], ld.name, err)
				}
				res.Rates = append(res.Rates, rate)
				res.CPUPerOp = append(res.CPUPerOp, float64((cpu1-cpu0).Microseconds())/float64(ops))
			}
		}
		for _, p := range pathOrder {
			res := byPath[p]
			if res.Skipped == "" {
				res.Rate = stats.Median(res.Rates)
				res.Ratio = stats.Median(stats.PairedRatios(res.Rates, byPath[pRedisTCP].Rates))
			}
			rs = append(rs, *res)
		}
	}
	b.results.Through = rs
	find := func(p, l string) throughResult {
		for _, r := range rs {
			if r.Path == p && r.Load == l {
				return r
			}
		}
		return throughResult{}
	}
	header := []string{"path"}
	for _, ld := range loads {
		header = append(header, ld.name)
	}
	align := "l" + strings.Repeat("r", len(loads))
	var rows, spread, cpu [][]string
	for _, p := range pathOrder {
		row, srow, crow := []string{pathName[p]}, []string{pathName[p]}, []string{pathName[p]}
		for _, ld := range loads {
			r := find(p, ld.name)
			if r.Skipped != "" {
				row, srow, crow = append(row, "n/a"), append(srow, "n/a"), append(crow, "n/a")
				continue
			}
			row = append(row, fmt.Sprintf("%s (%s)", fmtRate(r.Rate), fmtRatio(r.Ratio)))
			srow = append(srow, fmtRate(slices.Min(r.Rates))+" – "+fmtRate(slices.Max(r.Rates)))
			crow = append(crow, fmt.Sprintf("%.2f", stats.Median(r.CPUPerOp)))
		}
		rows, spread, cpu = append(rows, row), append(spread, srow), append(cpu, crow)
	}
	s.printf("GETs per second, median of %d runs (ratio to redis-server TCP):\n\n", cfg.TpRuns)
	table(&s.body, header, align, rows)
	s.printf("Lowest and highest rate of the runs:\n\n")
	table(&s.body, header, align, spread)
	s.printf("Server CPU time per GET in µs, median of the runs (from /proc/PID/stat, whose 10 ms ticks make it coarse on short runs). For the shared-memory row this is the sidecar's share only: the read itself is the client's.\n\n")
	table(&s.body, header, align, cpu)
	s.printf("%s.\n\n", find(pShm, loads[len(loads)-1].name).Skipped)
	g50, r50, g1 := find(pGRPC, loads[2].name), find(pRedisTCP, loads[2].name), find(pGRPC, loads[0].name)
	b.results.GRPC.Rate50, b.results.GRPC.Redis50, b.results.GRPC.RatioRedis50 = g50.Rate, r50.Rate, g50.Ratio
	b.results.GRPC.CPUOneClient = stats.Median(g1.CPUPerOp)
	s.printf("**gRPC with the Go SDK, %d goroutines over one connection: %s GETs/s, %s of redis-server's with `redis-benchmark -c %d` over TCP (%s; target at least 0.6×, %s). Server CPU per gRPC GET with one client: %.1f µs (target at most 40 µs, %s).**\n\n",
		loads[2].clients, fmtRate(g50.Rate), fmtRatio(g50.Ratio), loads[2].clients, fmtRate(r50.Rate), meets(g50.Ratio >= 0.6),
		b.results.GRPC.CPUOneClient, meets(b.results.GRPC.CPUOneClient <= 40))
	file := "throughput.png"
	if err := throughputChart(filepath.Join(cfg.Out, file), loads, rs); err != nil {
		return err
	}
	s.chart("throughput", file)
	return nil
}

// redisBenchmark runs redis-benchmark once against a RESP path and returns GETs per
// second and the number of GETs.
func (e *env) redisBenchmark(path string, ld load, n int) (float64, int, error) {
	args := []string{"-t", "get", "-d", "100", "-c", strconv.Itoa(ld.clients), "-P", strconv.Itoa(ld.pipeline),
		"-n", strconv.Itoa(n), "--csv"}
	switch path {
	case pRESPUnix:
		args = append(args, "-s", e.cachee.Socket)
	case pRedisUnix:
		args = append(args, "-s", e.redis.Socket)
	case pRESPTCP, pRedisTCP:
		addr := e.cachee.TCP
		if path == pRedisTCP {
			addr = e.redis.Addr
		}
		host, port, _ := strings.Cut(addr, ":")
		args = append(args, "-h", host, "-p", port)
	}
	cmd := exec.Command("redis-benchmark", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("redis-benchmark %v: %w: %s", args, err, errb.String())
	}
	rate, err := procs.ParseBenchmarkCSV(out.Bytes(), "GET")
	if err != nil {
		return 0, 0, fmt.Errorf("%w (stderr %q)", err, errb.String())
	}
	return rate, n, nil
}

// goLoad runs ld.clients goroutines calling path for d and returns GETs per second and
// the number of GETs. Each goroutine has its own buffer; all share one SDK client, as
// the goroutines of one application would.
func (e *env) goLoad(path string, ld load, d time.Duration) (float64, int, error) {
	const size = 100
	key := hotKey(size)
	var stop atomic.Bool
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, ld.clients)
	ready := make(chan struct{})
	for range ld.clients {
		var op func() (int, error)
		if ld.pipeline > 1 {
			keys := slices.Repeat([]string{key}, ld.pipeline)
			c := e.sdk(path)
			op = func() (int, error) {
				res, err := c.BatchGet(e.ctx, keys)
				if err == nil {
					for _, r := range res {
						if !r.Found || len(r.Value) != size {
							return 0, fmt.Errorf("BatchGet: %s found %v, %d bytes", key, r.Found, len(r.Value))
						}
					}
				}
				return len(keys), err
			}
		} else {
			get := e.getter(path, key, size)
			op = func() (int, error) { return 1, get() }
		}
		wg.Go(func() {
			<-ready
			n := 0
			for !stop.Load() {
				k, err := op()
				if err != nil {
					errs <- err
					return
				}
				n += k
			}
			total.Add(int64(n))
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	t0 := time.Now()
	close(ready)
	<-ctx.Done()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	select {
	case err := <-errs:
		return 0, 0, err
	default:
	}
	n := int(total.Load())
	return float64(n) / elapsed.Seconds(), n, nil
}
