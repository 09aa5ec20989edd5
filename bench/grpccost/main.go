// Command grpccost measures where the time of a gRPC unary call goes on this machine,
// and what each way of making it cheaper buys, against cachee's RESP GET on the same
// kind of socket in the same run. Every server is a process of its own on a Unix
// socket; one client process calls them one call at a time (latency), then from 50
// goroutines over one connection (throughput). Per call it reports, besides the
// latency, what the server process spent: CPU time, context switches (how often its
// threads went to sleep and were woken), read- and write-type system calls, and heap
// allocations.
//
// The servers:
//
//   - grpc-go answering grpc.health.v1 Check, with its defaults and with each of its
//     knobs that bear on a small call: NumStreamWorkers (a pool of handler goroutines
//     instead of one new goroutine per call), SharedWriteBuffer, and small buffers;
//
//   - a prototype of a fast path, answering the same Check from the goroutine or
//     thread that read the request (see proto.go): once with a goroutine per
//     connection, once on an epoll loop like cachee's RESP loop;
//
//   - cachee itself (-cachee): its gRPC Get with grpc-go's client and with the Go
//     SDK's own transport (sdk/go/h2.go), and its RESP GET of a 100-byte value; with the
//     fast path on, also the Get of a client that writes and reads on the calling
//     goroutine, one connection per goroutine.
//
//     go build -o bin/cachee ./cmd/cachee && go run ./bench/grpccost -cachee bin/cachee
//
// -only none leaves out this binary's own servers (cachee's rows only); -lock times the
// calls from a goroutine locked to its thread, as bench/report's latency section does.
//
// -strace adds a pass under `strace -c -f` that lists the system calls per call by
// name (strace slows the server many times over, so that pass times nothing).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/respc"
	"github.com/cachee/cachee/bench/internal/stats"
	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	cachee "github.com/cachee/cachee/sdk/go"
)

// serverKinds are the servers this binary runs itself (-serve KIND).
var serverKinds = map[string]string{
	"grpc":         "grpc-go, defaults",
	"grpc-workers": "grpc-go, NumStreamWorkers(GOMAXPROCS)",
	"grpc-shared":  "grpc-go, SharedWriteBuffer",
	"grpc-all":     "grpc-go, workers + shared buffer + 4 KiB buffers",
	"proto-gor":    "prototype, goroutine per connection",
	"proto-epoll":  "prototype, epoll loop",
}

var kindOrder = []string{"grpc", "grpc-workers", "grpc-shared", "grpc-all", "proto-gor", "proto-epoll"}

func main() {
	var (
		cachee  = flag.String("cachee", "bin/cachee", "cachee binary for the reference rows (\"\" leaves them out)")
		runs    = flag.Int("runs", 5, "runs; figures are medians over them")
		calls   = flag.Int("calls", 10000, "timed calls per target per run")
		warmup  = flag.Int("warmup", 1000, "untimed calls per target before each run")
		tpTime  = flag.Duration("tp", time.Second, "length of each 50-goroutine throughput run")
		only    = flag.String("only", "", "comma-separated server kinds to measure (default all)")
		doTrace = flag.Bool("strace", false, "also count system calls by name under strace")
		lock    = flag.Bool("lock", false, "time one-in-flight calls from a goroutine locked to its OS thread")
		serve   = flag.String("serve", "", "internal: serve this kind on -sock")
		sock    = flag.String("sock", "", "internal: the socket to serve")
	)
	flag.Parse()
	if *serve != "" {
		if err := serveKind(*serve, *sock); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}
	kinds := kindOrder
	switch *only {
	case "":
	case "none":
		kinds = nil
	default:
		kinds = strings.Split(*only, ",")
	}
	lockThread = *lock
	if err := run(*cachee, kinds, *runs, *calls, *warmup, *tpTime, *doTrace); err != nil {
		fmt.Fprintln(os.Stderr, "grpccost:", err)
		os.Exit(1)
	}
}

// lockThread: measure locks the timing goroutine to its thread (-lock).
var lockThread bool

// serveKind is a server of one kind. SIGUSR1 makes it write its heap allocation count
// to the socket's path plus ".mallocs", which is how the client counts allocations.
func serveKind(kind, sock string) error {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			os.WriteFile(sock+".mallocs", []byte(strconv.FormatUint(m.Mallocs, 10)), 0o644)
		}
	}()
	var opts []grpc.ServerOption
	workers := grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0)))
	switch kind {
	case "grpc":
	case "grpc-workers":
		opts = append(opts, workers)
	case "grpc-shared":
		opts = append(opts, grpc.SharedWriteBuffer(true))
	case "grpc-all":
		opts = append(opts, workers, grpc.SharedWriteBuffer(true), grpc.ReadBufferSize(4<<10), grpc.WriteBufferSize(4<<10))
	case "proto-gor":
		return serveProtoGoroutines(ln)
	case "proto-epoll":
		return serveProtoEpoll(ln)
	default:
		return fmt.Errorf("unknown kind %q", kind)
	}
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	return s.Serve(ln)
}

// target is one row: a server process and one call of it.
type target struct {
	name    string
	pid     int
	call    func() error
	mallocs func() (uint64, error) // the server's allocation count so far; nil if unknown
	load    func(n int, d time.Duration) (int, error)
}

// row is what the runs found for a target.
type row struct {
	p50, p99, mean            []time.Duration
	cpu, ctx, sys, allocs     []float64 // per call
	clientAllocs              []float64
	clientCPU, clientCtx      []float64
	tpRate, tpCPU, tpCtx      []float64
	traceCalls                map[string]float64
	traceTotal                float64
	allocsKnown, traceRunning bool
}

func run(cacheeBin string, kinds []string, runs, calls, warmup int, tpTime time.Duration, doTrace bool) error {
	dir, err := os.MkdirTemp("", "grpccost-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var targets []*target
	for _, k := range kinds {
		name, ok := serverKinds[k]
		if !ok {
			return fmt.Errorf("unknown server kind %q", k)
		}
		sock := filepath.Join(dir, k+".sock")
		cmd := exec.Command(self, "-serve", k, "-sock", sock)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		cc, err := dialWait(ctx, sock)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		req := &healthpb.HealthCheckRequest{}
		call := func() error { _, err := hc.Check(ctx, req); return err }
		mallocs := func() (uint64, error) { return signalMallocs(cmd.Process, sock+".mallocs") }
		targets = append(targets, &target{
			name: name + ": health Check", pid: cmd.Process.Pid, call: call, mallocs: mallocs, load: loadFunc(call),
		})
		if k == "proto-epoll" {
			// The same server called by a client that writes its request and reads the
			// answer on the calling goroutine, as a RESP client does: what the server
			// side costs without grpc-go's client around it.
			rc, err := dialSyncH2(sock)
			if err != nil {
				return err
			}
			defer rc.Close()
			targets = append(targets, &target{
				name: name + ": health Check, synchronous HTTP/2 client", pid: cmd.Process.Pid, call: rc.check, mallocs: mallocs,
				load: syncH2Load(sock, (*syncH2).check),
			})
		}
	}
	if cacheeBin != "" {
		for _, fast := range []bool{false, true} {
			ts, stop, err := cacheeTargets(ctx, cacheeBin, dir, fast)
			if err != nil {
				return err
			}
			defer stop()
			targets = append(targets, ts...)
		}
	}
	rows := make([]*row, len(targets))
	for i := range rows {
		rows[i] = &row{}
	}
	load0 := procs.ReadLoadAvg()
	fmt.Printf("grpccost: %d runs of %d timed calls per target (one in flight), then 50 goroutines for %v; load average %s\n",
		runs, calls, tpTime, load0)
	for r := range runs {
		order := make([]int, len(targets))
		for i := range order {
			order[i] = i
		}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			if err := measure(targets[i], rows[i], calls, warmup, tpTime); err != nil {
				return fmt.Errorf("%s: %w", targets[i].name, err)
			}
		}
		fmt.Printf("run %d done, load average %s\n", r+1, procs.ReadLoadAvg())
	}
	if doTrace {
		for i, t := range targets {
			if err := traceCalls(t, rows[i], 2000); err != nil {
				return fmt.Errorf("strace %s: %w", t.name, err)
			}
		}
	}
	report(targets, rows, runs, load0, procs.ReadLoadAvg(), doTrace)
	return nil
}

func loadFunc(call func() error) func(n int, d time.Duration) (int, error) {
	return func(n int, d time.Duration) (int, error) {
		var stop atomic.Bool
		var total atomic.Int64
		var first error
		var once sync.Once
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				k := 0
				for !stop.Load() {
					if err := call(); err != nil {
						once.Do(func() { first = err })
						break
					}
					k++
				}
				total.Add(int64(k))
			})
		}
		time.Sleep(d)
		stop.Store(true)
		wg.Wait()
		return int(total.Load()), first
	}
}

// cacheeTargets starts cachee and returns its gRPC Get and RESP GET rows.
func cacheeTargets(ctx context.Context, bin, dir string, fast bool) ([]*target, func(), error) {
	name := "cachee"
	if fast {
		name = "cachee, fast path"
		if ok, err := procs.HasFlag(bin, "--grpc-fast-path"); err != nil || !ok {
			return nil, func() {}, err // a build without it: no such rows
		}
	}
	sub, err := os.MkdirTemp(dir, "cachee-")
	if err != nil {
		return nil, nil, err
	}
	c, err := procs.StartCachee(procs.CacheeOptions{Bin: bin, Dir: sub, MaxMemory: "64mb", Extra: []string{"--grpc-fast-path=" + strconv.FormatBool(fast)}})
	if err != nil {
		return nil, nil, err
	}
	cc, err := dialWait(ctx, c.Socket)
	if err != nil {
		c.Stop()
		return nil, nil, err
	}
	stop := func() { cc.Close(); c.Stop() }
	key, value := []byte("bench:hot"), make([]byte, 100)
	cache := cacheev1.NewCacheServiceClient(cc)
	if _, err := cache.Set(ctx, &cacheev1.SetRequest{Key: key, Value: value}); err != nil {
		stop()
		return nil, nil, err
	}
	getReq := &cacheev1.GetRequest{Key: key}
	get := func() error {
		r, err := cache.Get(ctx, getReq)
		if err == nil && len(r.GetValue()) != len(value) {
			err = errors.New("Get missed the hot key")
		}
		return err
	}
	rc, err := respc.Dial("unix", c.Socket)
	if err != nil {
		stop()
		return nil, nil, err
	}
	respGet := func() error {
		r, err := rc.Do("GET", string(key))
		if err == nil && len(r.Bulk) != len(value) {
			err = fmt.Errorf("GET: %q", r.Bulk)
		}
		return err
	}
	sdk, err := cachee.Dial(ctx, cachee.WithTarget("unix://"+c.Socket), cachee.WithoutShm(), cachee.WithWaitReady(),
		cachee.WithLogger(slog.New(slog.DiscardHandler)), cachee.WithTimeout(30*time.Second))
	if err != nil {
		rc.Close()
		stop()
		return nil, nil, err
	}
	sdkGet := func() error {
		var buf [128]byte
		v, found, err := sdk.GetInto(ctx, string(key), buf[:])
		if err == nil && (!found || len(v) != len(value)) {
			err = errors.New("the SDK's Get missed the hot key")
		}
		return err
	}
	mallocs := func() (uint64, error) { return procs.Mallocs(c.Metrics) }
	ts := []*target{
		{name: name + ": gRPC Get, grpc-go client", pid: c.Pid(), call: get, mallocs: mallocs, load: loadFunc(get)},
		{name: name + ": gRPC Get, Go SDK", pid: c.Pid(), call: sdkGet, mallocs: mallocs, load: loadFunc(sdkGet)},
	}
	closeAll := func() { sdk.Close(); rc.Close(); stop() }
	if fast {
		sc, err := dialSyncH2(c.Socket)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		body, _ := proto.Marshal(getReq)
		body = append([]byte{0, 0, 0, 0, byte(len(body))}, body...)
		syncGet := func(sc *syncH2) error {
			n, err := sc.call("/cachee.v1.CacheService/Get", body)
			if err == nil && n < len(value) {
				err = fmt.Errorf("Get: %d bytes of answer", n)
			}
			return err
		}
		ts = append(ts, &target{name: name + ": gRPC Get, synchronous HTTP/2 client", pid: c.Pid(),
			call: func() error { return syncGet(sc) }, mallocs: mallocs, load: syncH2Load(c.Socket, syncGet)})
		prev := closeAll
		closeAll = func() { sc.Close(); prev() }
	}
	ts = append(ts, &target{name: name + ": RESP GET", pid: c.Pid(), call: respGet, mallocs: mallocs,
		load: respLoadFunc(c.Socket, string(key), len(value))})
	return ts, closeAll, nil
}

// respLoadFunc runs n goroutines, each with a RESP connection of its own, as
// redis-benchmark -c n does.
func respLoadFunc(sock, key string, size int) func(n int, d time.Duration) (int, error) {
	return func(n int, d time.Duration) (int, error) {
		conns := make([]*respc.Conn, n)
		for i := range conns {
			var err error
			if conns[i], err = respc.Dial("unix", sock); err != nil {
				return 0, err
			}
			defer conns[i].Close()
		}
		var stop atomic.Bool
		var total atomic.Int64
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() {
				k := 0
				for !stop.Load() {
					r, err := c.Do("GET", key)
					if err == nil && len(r.Bulk) != size {
						err = fmt.Errorf("GET: %q", r.Bulk)
					}
					if err != nil {
						errs <- err
						break
					}
					k++
				}
				total.Add(int64(k))
			})
		}
		time.Sleep(d)
		stop.Store(true)
		wg.Wait()
		select {
		case err := <-errs:
			return 0, err
		default:
		}
		return int(total.Load()), nil
	}
}

func measure(t *target, r *row, calls, warmup int, tpTime time.Duration) error {
	for range warmup {
		if err := t.call(); err != nil {
			return err
		}
	}
	times := make([]time.Duration, calls)
	cpu0, c0, m0, err := snapshot(t)
	if err != nil {
		return err
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	if lockThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	ru0 := selfUsage()
	start := time.Now()
	for i := range times {
		t0 := time.Now()
		err := t.call()
		times[i] = time.Since(t0)
		if err != nil {
			return err
		}
	}
	r.mean = append(r.mean, time.Since(start)/time.Duration(calls))
	ru1 := selfUsage()
	runtime.ReadMemStats(&ms1)
	cpu1, c1, m1, err := snapshot(t)
	if err != nil {
		return err
	}
	q := stats.Summarize(times)
	n := float64(calls)
	r.p50, r.p99 = append(r.p50, q.P50), append(r.p99, q.P99)
	d := c1.Sub(c0)
	r.cpu = append(r.cpu, float64((cpu1-cpu0).Microseconds())/n)
	r.ctx = append(r.ctx, float64(d.Voluntary+d.Involuntary)/n)
	r.sys = append(r.sys, float64(d.ReadCalls+d.WriteCalls)/n)
	r.clientAllocs = append(r.clientAllocs, float64(ms1.Mallocs-ms0.Mallocs)/n)
	r.clientCPU = append(r.clientCPU, float64((ru1.cpu-ru0.cpu).Microseconds())/n)
	r.clientCtx = append(r.clientCtx, float64(ru1.switches-ru0.switches)/n)
	if t.mallocs != nil {
		r.allocsKnown = true
		r.allocs = append(r.allocs, float64(m1-m0)/n)
	}

	cpu0, c0, _, err = snapshot(t)
	if err != nil {
		return err
	}
	start = time.Now()
	done, err := t.load(50, tpTime)
	if err != nil {
		return err
	}
	el := time.Since(start)
	cpu1, c1, _, err = snapshot(t)
	if err != nil {
		return err
	}
	d = c1.Sub(c0)
	r.tpRate = append(r.tpRate, float64(done)/el.Seconds())
	r.tpCPU = append(r.tpCPU, float64((cpu1-cpu0).Microseconds())/float64(done))
	r.tpCtx = append(r.tpCtx, float64(d.Voluntary+d.Involuntary)/float64(done))
	return nil
}

func snapshot(t *target) (time.Duration, procs.Counters, uint64, error) {
	cpu, err := procs.CPUTime(t.pid)
	if err != nil {
		return 0, procs.Counters{}, 0, err
	}
	c, err := procs.ReadCounters(t.pid)
	if err != nil {
		return 0, procs.Counters{}, 0, err
	}
	var m uint64
	if t.mallocs != nil {
		if m, err = t.mallocs(); err != nil {
			return 0, procs.Counters{}, 0, err
		}
	}
	return cpu, c, m, nil
}

// traceCalls runs n calls with strace attached to every thread of the server and
// records the system calls per call by name.
func traceCalls(t *target, r *row, n int) error {
	out := filepath.Join(os.TempDir(), fmt.Sprintf("grpccost-strace-%d", t.pid))
	defer os.Remove(out)
	cmd := exec.Command("strace", "-f", "-c", "-o", out, "-p", strconv.Itoa(t.pid))
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // attaching takes a moment
	for range n {
		if err := t.call(); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return err
		}
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	r.traceCalls = map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// % time, seconds, usecs/call, calls, [errors,] syscall
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[0] == "%" || strings.HasPrefix(fs[0], "-") {
			continue
		}
		name := fs[len(fs)-1]
		calls, err := strconv.ParseFloat(fs[3], 64)
		if err != nil {
			continue
		}
		if name == "total" {
			r.traceTotal = calls / float64(n)
			continue
		}
		r.traceCalls[name] = calls / float64(n)
	}
	return sc.Err()
}

func report(targets []*target, rows []*row, runs int, load0, load1 procs.LoadAvg, traced bool) {
	fmt.Printf("\nmedians of %d runs; load average %s at the start, %s at the end\n\n", runs, load0, load1)
	fmt.Println("| server: call | p50 | p99 | mean (back to back) | server CPU µs/call | context switches/call | read+write syscalls/call | server allocs/call | client CPU µs/call | client switches/call | client allocs/call | 50 goroutines: calls/s | 50 goroutines: CPU µs/call | 50 goroutines: switches/call |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, t := range targets {
		r := rows[i]
		allocs := "n/a"
		if r.allocsKnown {
			allocs = fmt.Sprintf("%.1f", stats.Median(r.allocs))
		}
		fmt.Printf("| %s | %v | %v | %v | %.1f | %.2f | %.2f | %s | %.1f | %.2f | %.1f | %.0f | %.1f | %.2f |\n", t.name,
			stats.MedianDuration(r.p50).Round(100*time.Nanosecond), stats.MedianDuration(r.p99).Round(100*time.Nanosecond),
			stats.MedianDuration(r.mean).Round(100*time.Nanosecond),
			stats.Median(r.cpu), stats.Median(r.ctx), stats.Median(r.sys), allocs,
			stats.Median(r.clientCPU), stats.Median(r.clientCtx), stats.Median(r.clientAllocs),
			stats.Median(r.tpRate), stats.Median(r.tpCPU), stats.Median(r.tpCtx))
	}
	if !traced {
		return
	}
	fmt.Println("\nsystem calls per call under strace -f -c (all threads of the server):")
	for i, t := range targets {
		r := rows[i]
		var parts []string
		for name, n := range r.traceCalls {
			if n >= 0.05 {
				parts = append(parts, fmt.Sprintf("%s %.2f", name, n))
			}
		}
		slices.Sort(parts)
		fmt.Printf("- %s: %.2f in all; %s\n", t.name, r.traceTotal, strings.Join(parts, ", "))
	}
}

// dialWait connects to a Unix socket and waits until the server answers a health Check.
func dialWait(ctx context.Context, sock string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(wctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		cc.Close()
		return nil, err
	}
	return cc, nil
}

// signalMallocs asks a server of this binary for its allocation count.
func signalMallocs(p *os.Process, file string) (uint64, error) {
	os.Remove(file)
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		return 0, err
	}
	for range 500 {
		b, err := os.ReadFile(file)
		if err == nil && len(b) > 0 {
			return strconv.ParseUint(string(b), 10, 64)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, errors.New("the server did not report its allocations")
}

// scrapeMallocs reads go_memstats_mallocs_total from cachee's /metrics.
type usage struct {
	cpu      time.Duration
	switches int64
}

// selfUsage is this process's CPU time and context switches so far.
func selfUsage() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{
		cpu:      time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		switches: ru.Nvcsw + ru.Nivcsw,
	}
}
