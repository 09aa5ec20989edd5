package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/respc"
	"github.com/cachee/cachee/bench/internal/stats"
	cachee "github.com/cachee/cachee/sdk/go"
)

// env is what sections 1 and 2 share: one cachee and one redis-server, and clients of
// every path, with the hot keys stored in both.
type env struct {
	cachee  *procs.Cachee
	grpcGo  *procs.Cachee // a second cachee, serving gRPC from grpc-go alone
	redis   *procs.Redis
	viaShm  *cachee.Client
	viaGRPC *cachee.Client
	// viaGRPCGo is the Go SDK on grpcGo: the gRPC path without the fast path, in the
	// same run, for what the fast path buys.
	viaGRPCGo *cachee.Client
	rdb       map[string]*redis.Client // by path id
	ctx       context.Context
	cancel    context.CancelFunc
}

// Path ids, in the order the tables show them. redisTCP is the baseline of every ratio.
const (
	pShm       = "shm"
	pGRPC      = "grpc-unix"
	pGRPCGo    = "grpc-unix-grpc-go"
	pRESPUnix  = "resp-unix"
	pRESPTCP   = "resp-tcp"
	pRedisTCP  = "redis-tcp"
	pRedisUnix = "redis-unix"
)

// pBareHealth is the reference of the gRPC row: a bare grpc-go health Check.
const pBareHealth = "grpc-bare-health"

var pathOrder = []string{pShm, pGRPC, pGRPCGo, pRESPUnix, pRESPTCP, pRedisTCP, pRedisUnix}

// pathName is how the tables name a path; pathShort how the charts do.
var pathName = map[string]string{
	pShm:       "cachee, Go SDK, shared memory",
	pGRPC:      "cachee, Go SDK, gRPC on the Unix socket",
	pGRPCGo:    "cachee, Go SDK, gRPC on the Unix socket, grpc-go alone (--grpc-fast-path=false)",
	pRESPUnix:  "cachee, RESP on the Unix socket",
	pRESPTCP:   "cachee, RESP on TCP",
	pRedisTCP:  "redis-server, TCP (baseline)",
	pRedisUnix: "redis-server, Unix socket",
}

var pathShort = map[string]string{
	pShm: "cachee shm", pGRPC: "cachee gRPC unix", pGRPCGo: "cachee gRPC, grpc-go", pRESPUnix: "cachee RESP unix",
	pRESPTCP: "cachee RESP tcp", pRedisTCP: "redis tcp", pRedisUnix: "redis unix",
}

func hotKey(size int) string { return fmt.Sprintf("bench:hot:%d", size) }

// benchValue is a value of n bytes that is not all one byte.
func benchValue(n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

func (b *bench) env() (*env, error) {
	if b.shared != nil {
		return b.shared, nil
	}
	e, err := b.startEnv()
	if err != nil {
		return nil, err
	}
	b.shared = e
	return e, nil
}

// startEnv starts the servers and clients of an env. On an error it stops what it had
// started, so that no half-built env is left for a later section.
func (b *bench) startEnv() (_ *env, err error) {
	dir, err := os.MkdirTemp(b.tmp, "env-")
	if err != nil {
		return nil, err
	}
	shm, err := os.MkdirTemp(b.shmBase, "env-")
	if err != nil {
		return nil, err
	}
	e := &env{rdb: map[string]*redis.Client{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	// The fast path explicitly, whatever the binary's default; and a second cachee
	// without it. A build before the flag has grpc-go alone in both.
	fast, err := procs.HasFlag(b.cfg.Cachee, "--grpc-fast-path")
	if err != nil {
		return nil, err
	}
	var on, off []string
	if fast {
		on, off = []string{"--grpc-fast-path=true"}, []string{"--grpc-fast-path=false"}
	}
	if e.cachee, err = procs.StartCachee(procs.CacheeOptions{Bin: b.cfg.Cachee, Dir: dir, Shm: shm, MaxMemory: "64mb", Extra: on}); err != nil {
		return nil, err
	}
	dir2, err := os.MkdirTemp(b.tmp, "env-grpc-go-")
	if err != nil {
		return nil, err
	}
	if e.grpcGo, err = procs.StartCachee(procs.CacheeOptions{Bin: b.cfg.Cachee, Dir: dir2, MaxMemory: "64mb", Extra: off}); err != nil {
		return nil, err
	}
	if !e.cachee.RESP {
		return nil, errors.New("this cachee build serves no RESP (its serving line says resp=false)")
	}
	if e.redis, err = procs.StartRedis(dir, "redis"); err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	target := "unix://" + e.cachee.Socket
	if e.viaShm, err = cachee.Dial(e.ctx, cachee.WithTarget(target), cachee.WithShmDir(shm), cachee.WithWaitReady(), cachee.WithLogger(quiet), cachee.WithTimeout(30*time.Second)); err != nil {
		return nil, err
	}
	// The SDK's default per-call timeout (1 s) is for applications; here a call that the
	// shared machine stalls is slow, which the figures show, not failed. One full run
	// lost its throughput section to a BatchGet that passed 1 s during a load spike.
	if e.viaGRPC, err = cachee.Dial(e.ctx, cachee.WithTarget(target), cachee.WithoutShm(), cachee.WithWaitReady(), cachee.WithLogger(quiet), cachee.WithTimeout(30*time.Second)); err != nil {
		return nil, err
	}
	if e.viaGRPCGo, err = cachee.Dial(e.ctx, cachee.WithTarget("unix://"+e.grpcGo.Socket), cachee.WithoutShm(), cachee.WithWaitReady(), cachee.WithLogger(quiet), cachee.WithTimeout(30*time.Second)); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); !e.viaShm.Counters().ShmActive; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, errors.New("the Go SDK did not map the segment")
		}
	}
	// One connection each, no retries and RESP2, so that every timed call is one round
	// trip of one command, as redis-benchmark makes them.
	opts := func(network, addr string) *redis.Options {
		return &redis.Options{Network: network, Addr: addr, PoolSize: 1, MaxRetries: -1, Protocol: 2, DisableIdentity: true}
	}
	e.rdb[pRESPUnix] = redis.NewClient(opts("unix", e.cachee.Socket))
	e.rdb[pRESPTCP] = redis.NewClient(opts("tcp", e.cachee.TCP))
	e.rdb[pRedisTCP] = redis.NewClient(opts("tcp", e.redis.Addr))
	e.rdb[pRedisUnix] = redis.NewClient(opts("unix", e.redis.Socket))
	// The hot keys: one per value size, and redis-benchmark's fixed GET key (without -r
	// it asks for "key:__rand_int__" literally), in both servers.
	for _, addr := range [][2]string{{"unix", e.cachee.Socket}, {"unix", e.grpcGo.Socket}, {"unix", e.redis.Socket}} {
		c, err := respc.Dial(addr[0], addr[1])
		if err != nil {
			return nil, err
		}
		keys := map[string]int{"key:__rand_int__": 100}
		for _, n := range append(slices.Clone(b.cfg.LatValues), 100) {
			keys[hotKey(n)] = n
		}
		for k, n := range keys {
			if r, err := c.Do("SET", k, string(benchValue(n))); err != nil || r.Kind != '+' {
				c.Close()
				return nil, fmt.Errorf("SET %s on %s: %v %q", k, addr[1], err, r.Bulk)
			}
		}
		c.Close()
	}
	return e, nil
}

// shortArgs shows a command line with the run's temporary directories as $TMP and $SHM.
func (b *bench) shortArgs(args []string) string {
	return strings.NewReplacer(b.tmp, "$TMP", b.shmBase, "$SHM").Replace(strings.Join(args, " "))
}

func (b *bench) closeEnv() {
	if e := b.shared; e != nil {
		b.shared = nil
		e.close()
	}
}

// close stops the clients and servers of e, those that were started.
func (e *env) close() {
	for _, c := range e.rdb {
		c.Close()
	}
	for _, c := range []*cachee.Client{e.viaShm, e.viaGRPC, e.viaGRPCGo} {
		if c != nil {
			c.Close()
		}
	}
	e.cancel()
	for _, c := range []*procs.Cachee{e.cachee, e.grpcGo} {
		if c != nil {
			c.Stop()
		}
	}
	if e.redis != nil {
		e.redis.Stop()
	}
}

// sdk is the Go SDK client of a path that has one.
func (e *env) sdk(path string) *cachee.Client {
	switch path {
	case pShm:
		return e.viaShm
	case pGRPCGo:
		return e.viaGRPCGo
	}
	return e.viaGRPC
}

// pid is the process that serves a path.
func (e *env) pid(path string) int {
	switch {
	case path == pGRPCGo:
		return e.grpcGo.Pid()
	case strings.HasPrefix(path, "redis"):
		return e.redis.Pid()
	}
	return e.cachee.Pid()
}

// getter returns one call of a path: a GET of key that fails unless it returns size bytes.
func (e *env) getter(path, key string, size int) func() error {
	buf := make([]byte, 0, size+64)
	check := func(n int, found bool, err error) error {
		if err == nil && (!found || n != size) {
			err = fmt.Errorf("GET %s: found %v, %d bytes, want %d", key, found, n, size)
		}
		return err
	}
	switch path {
	case pShm, pGRPC, pGRPCGo:
		c := e.sdk(path)
		return func() error {
			v, found, err := c.GetInto(e.ctx, key, buf)
			return check(len(v), found, err)
		}
	default:
		c := e.rdb[path]
		return func() error {
			v, err := c.Get(e.ctx, key).Bytes()
			return check(len(v), err == nil, err)
		}
	}
}

// latencyResult is one path at one value size: the median over runs of each run's
// percentiles, the paired ratios to the baseline, and the runs' p50s.
type latencyResult struct {
	Path      string          `json:"path"`
	Name      string          `json:"name"`
	Value     int             `json:"value_bytes"`
	Calls     int             `json:"calls_per_run"`
	P50       time.Duration   `json:"p50_ns"`
	P99       time.Duration   `json:"p99_ns"`
	P999      time.Duration   `json:"p999_ns"`
	RatioP50  float64         `json:"ratio_p50"`
	RatioP99  float64         `json:"ratio_p99"`
	RatioP999 float64         `json:"ratio_p999"`
	RunP50s   []time.Duration `json:"run_p50s_ns"`
	BatchMean time.Duration   `json:"batch_mean_ns,omitempty"`
	Runs      int             `json:"runs"`
}

// timeCalls times each of n calls on its own into samples[:n].
func timeCalls(call func() error, samples []time.Duration) error {
	for i := range samples {
		t0 := time.Now()
		err := call()
		samples[i] = time.Since(t0)
		if err != nil {
			return err
		}
	}
	return nil
}

// measureRuns runs each target runs times, in an order that alternates run by run (the
// targets in order, then in reverse: A B C, C B A, ...), so that a change of load
// during the section falls on all of them alike. It returns each target's per-run
// quantiles. calls(t) is the number of timed calls of target t per run; a tenth as many
// untimed calls warm each run up.
func measureRuns(targets []string, runs int, calls func(string) int, call map[string]func() error) (map[string][]stats.Quantiles, error) {
	out := map[string][]stats.Quantiles{}
	samples := map[string][]time.Duration{}
	for _, t := range targets {
		samples[t] = make([]time.Duration, calls(t))
	}
	for r := range runs {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			s := samples[t]
			for range max(len(s)/10, 10) {
				if err := call[t](); err != nil {
					return nil, fmt.Errorf("%s: %w", t, err)
				}
			}
			if err := timeCalls(call[t], s); err != nil {
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			out[t] = append(out[t], stats.Summarize(s))
		}
	}
	return out, nil
}

// summarizeRuns turns per-run quantiles into a result, with ratios paired run by run to
// base's.
func summarizeRuns(qs, base []stats.Quantiles) latencyResult {
	med := func(f func(stats.Quantiles) time.Duration) time.Duration {
		return time.Duration(stats.Median(pick(qs, f)))
	}
	r := latencyResult{P50: med(p50Of), P99: med(p99Of), P999: med(p999Of), Runs: len(qs)}
	if len(qs) > 0 {
		r.Calls = qs[0].N
	}
	for _, q := range qs {
		r.RunP50s = append(r.RunP50s, q.P50)
	}
	r.RatioP50 = stats.Median(stats.PairedRatios(pick(qs, p50Of), pick(base, p50Of)))
	r.RatioP99 = stats.Median(stats.PairedRatios(pick(qs, p99Of), pick(base, p99Of)))
	r.RatioP999 = stats.Median(stats.PairedRatios(pick(qs, p999Of), pick(base, p999Of)))
	return r
}

// pick is one quantile of each run, as float nanoseconds.
func pick(qs []stats.Quantiles, f func(stats.Quantiles) time.Duration) []float64 {
	v := make([]float64, len(qs))
	for i, q := range qs {
		v[i] = float64(f(q))
	}
	return v
}

func p50Of(q stats.Quantiles) time.Duration  { return q.P50 }
func p99Of(q stats.Quantiles) time.Duration  { return q.P99 }
func p999Of(q stats.Quantiles) time.Duration { return q.P999 }

// clockCost is what timing a call costs by itself: time.Now and time.Since around
// nothing, p50 of n.
func clockCost(n int) time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		t0 := time.Now()
		s[i] = time.Since(t0)
	}
	return stats.Summarize(s).P50
}

// batchMean is the mean time of a call over batches of 1000 calls timed together: for
// the shared-memory path, whose calls are not much longer than the clock's own cost.
func batchMean(call func() error, batches int) (time.Duration, error) {
	var means []time.Duration
	for range batches {
		t0 := time.Now()
		for range 1000 {
			if err := call(); err != nil {
				return 0, err
			}
		}
		means = append(means, time.Since(t0)/1000)
	}
	return stats.MedianDuration(means), nil
}

func (b *bench) latency(s *section) error {
	e, err := b.env()
	if err != nil {
		return err
	}
	cfg := b.cfg
	s.command(fmt.Sprintf("`go run ./bench/report` (section 1): in one process, one call in flight, each call timed alone with `time.Now`/`time.Since`, %d timed calls per path per run (%d for shared memory) after a tenth as many untimed ones",
		cfg.LatCalls, cfg.LatShmCalls))
	s.runs = fmt.Sprintf("%d per path and value size, alternating order (the %d paths in order, then in reverse); each figure is the median over the runs of that run's percentile; each ratio is the median of the per-run ratios to redis-server TCP of the same run", cfg.LatRuns, len(pathOrder))
	s.spread = "the last column gives the lowest and highest p50 of the runs"
	s.printf("Clients: the Go SDK (`sdk/go`) for shared memory and gRPC; go-redis v9 (one connection, RESP2, no retries) for every RESP path, cachee's and redis-server's alike. cachee runs with `%s`, and a second cachee, for the gRPC row of grpc-go alone, with `%s`; redis-server with persistence off. The client process and the servers share the machine's %d CPUs with whatever else runs on it.\n\n",
		b.shortArgs(e.cachee.Args), b.shortArgs(e.grpcGo.Args), b.machine.CPUs)
	bare, err := startBareHealth(e.ctx, b.tmp)
	if err != nil {
		return err
	}
	defer bare.stop()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := clockCost(100_000)
	var rs []latencyResult
	for _, size := range cfg.LatValues {
		call := map[string]func() error{pBareHealth: bare.call(e.ctx)}
		for _, p := range pathOrder {
			call[p] = e.getter(p, hotKey(size), size)
		}
		calls := func(p string) int {
			if p == pShm {
				return cfg.LatShmCalls
			}
			return cfg.LatCalls
		}
		log.Printf("latency: %d-byte value, %d runs", size, cfg.LatRuns)
		// The bare health Check runs in the same rotation, as a reference for the gRPC row.
		qs, err := measureRuns(append(slices.Clone(pathOrder), pBareHealth), cfg.LatRuns, calls, call)
		if err != nil {
			return err
		}
		var rows [][]string
		var sizeRes []latencyResult
		for _, p := range pathOrder {
			r := summarizeRuns(qs[p], qs[pRedisTCP])
			r.Path, r.Name, r.Value = p, pathName[p], size
			if p == pShm {
				if r.BatchMean, err = batchMean(call[p], max(cfg.LatShmCalls/1000, 5)); err != nil {
					return err
				}
			}
			sizeRes = append(sizeRes, r)
			lo, hi := slices.Min(r.RunP50s), slices.Max(r.RunP50s)
			rows = append(rows, []string{r.Name, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999),
				fmtRatio(r.RatioP50), fmtRatio(r.RatioP99), fmtRatio(r.RatioP999), fmtDur(lo) + " – " + fmtDur(hi)})
		}
		rs = append(rs, sizeRes...)
		s.printf("### %s value\n\n", sizeName(size))
		table(&s.body, []string{"path", "p50", "p99", "p999", "p50 ÷ redis TCP", "p99 ÷ redis TCP", "p999 ÷ redis TCP", "p50 of the runs (min – max)"},
			"lrrrrrrr", rows)
		file := fmt.Sprintf("latency-%s.png", strings.ReplaceAll(sizeName(size), " ", ""))
		if err := latencyChart(filepath.Join(cfg.Out, file), fmt.Sprintf("Latency per call, hot key, %s value (median of %d runs)", sizeName(size), cfg.LatRuns), sizeRes); err != nil {
			return err
		}
		s.chart(fmt.Sprintf("latency, %s value", sizeName(size)), file)
		bareRes := summarizeRuns(qs[pBareHealth], qs[pGRPC])
		overBare := stats.Median(stats.PairedRatios(pick(qs[pGRPC], p50Of), pick(qs[pBareHealth], p50Of)))
		verdict := "so most of the gRPC path's cost is grpc-go's own"
		if overBare > 1.5 {
			verdict = "so the Go SDK and cachee's Get add as much as grpc-go itself costs, or more"
		}
		s.printf("For reference, a bare grpc-go server answering only `grpc.health.v1` Check on a Unix socket (in a process of its own, timed in the same rotation with a plain grpc-go client) takes p50 %s, p99 %s: cachee's gRPC row is %s of that at p50 (the median of the per-run ratios), %s.\n\n",
			fmtDur(bareRes.P50), fmtDur(bareRes.P99), fmtRatio(overBare), verdict)
		overRESP := stats.Median(stats.PairedRatios(pick(qs[pGRPC], p50Of), pick(qs[pRESPUnix], p50Of)))
		s.printf("cachee's gRPC Get p50 is %s of its RESP GET's on the same socket (median of the per-run ratios).\n\n", fmtRatio(overRESP))
		if size == 100 {
			b.results.GRPC.OverBare, b.results.GRPC.OverRESP = overBare, overRESP
			s.printf("**gRPC Get p50 against the bare health Check: %s (target at most 1.05×, %s). Against RESP GET on the socket: %s.** The Go SDK makes Get, Set and Delete over an HTTP/2 connection of its own and everything else through grpc-go; the bare Check is timed with grpc-go's client.\n\n",
				fmtRatio(overBare), meets(overBare <= 1.05), fmtRatio(overRESP))
		}
		shm := sizeRes[0]
		s.printf("The shared-memory figures include the clock's own cost, p50 %s here (`time.Now` and `time.Since` around nothing); the same %s reads timed in batches of 1000 take %s each on average (median of %d batches). p999 is the %s slowest call of %d per run in the shared-memory rows, the %s slowest of %d in the others.\n\n",
			fmtDur(clock), sizeName(size), fmtDur(shm.BatchMean), max(cfg.LatShmCalls/1000, 5),
			ordinal(cfg.LatShmCalls-p999Rank(cfg.LatShmCalls)+1), cfg.LatShmCalls, ordinal(cfg.LatCalls-p999Rank(cfg.LatCalls)+1), cfg.LatCalls)
	}
	client, server, err := e.allocsPerGet(cfg.LatCalls)
	if err != nil {
		return fmt.Errorf("allocations per gRPC Get: %w", err)
	}
	b.results.GRPC.ClientAllocs, b.results.GRPC.ServerAllocs = client, server
	s.printf("**Allocations per gRPC Get of a 100 B value, one call at a time over %d calls: %.1f in the Go SDK (target at most 25, %s), %.1f in the sidecar.** Counted by the Go runtime: this process's `runtime.MemStats.Mallocs`, and the sidecar's `go_memstats_mallocs_total` from its /metrics, less what a scrape allocates.\n\n",
		cfg.LatCalls, client, meets(client <= 25), server)
	if c := e.viaShm.Counters(); c.ShmFallbacks != 0 {
		s.printf("**Warning**: %d shared-memory reads fell back to gRPC; the shared-memory rows are mixed.\n\n", c.ShmFallbacks)
	}
	b.results.Latency = rs
	return nil
}

// p999Rank is the rank (from 1, ascending) of the sample stats.Percentile gives as the
// p999 of n samples.
func p999Rank(n int) int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return stats.Percentile(s, 0.999)
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func ordinal(n int) string {
	if n == 1 {
		return "single"
	}
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
