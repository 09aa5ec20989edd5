// Command shmfloor measures cachee's shared-memory read against the floor: the least a
// cross-process read of one key can do (floor.go), in one run on one machine.
//
//	go build -o bin/cachee ./cmd/cachee && go run ./bench/shmfloor -cachee bin/cachee
//
// It starts a cachee sidecar with a shared-memory segment and a child process that
// writes the floor's slot, then times, with testing.Benchmark in this process, a hit
// of one hot key (9-byte key, 100-byte value) through:
//
//   - the floor: one seqlock slot, key compare, value copied a word at a time;
//   - store.Reader.Get on the sidecar's segment (what every SDK's reader does);
//   - the Go SDK's GetInto over shared memory (Reader.Get plus the liveness checks'
//     published pointer and the access record);
//   - store.Store.Get in this process, in a store of 100,000 other entries (the
//     sidecar's own read, BenchmarkGetHit's setting).
//
// and each of them from 2 goroutines at once (RunParallel), to see how they scale.
// Runs rotate their order (A B C D, then D C B A, ...); the summary gives the median of
// the runs and, for each path, the median of its per-run ratios to the floor's run.
//
// With -callgrind it instead counts instructions per Get of each path (and of the
// parts of a Get, from the store's and the SDK's part benchmarks) under valgrind's
// callgrind: counts do not depend on the machine's load. See docs/performance.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/stats"
	cachee "github.com/cachee/cachee/sdk/go"
	"github.com/cachee/cachee/store"
)

func main() {
	runWriterIfAsked()
	var (
		bin       = flag.String("cachee", "bin/cachee", "cachee binary to start")
		runs      = flag.Int("runs", 7, "runs of every path, in rotating order")
		benchtime = flag.Duration("benchtime", 300*time.Millisecond, "time per path per run")
		callgrind = flag.Bool("callgrind", false, "count instructions per Get under valgrind instead of timing")
		only      = flag.String("only", "", "with -callgrind, count only the Gets and parts whose names match this regexp")
		// Set by -callgrind for the copy of this program that runs under valgrind.
		count  = flag.String("count", "", "run -n Gets of this path (internal)")
		n      = flag.Int("n", 0, "Gets to run with -count")
		socket = flag.String("socket", "", "the sidecar's socket, with -count")
		shm    = flag.String("shm", "", "the segments' directory, with -count")
	)
	flag.Parse()
	var err error
	switch {
	case *count != "":
		err = countOne(*count, *socket, *shm, *n)
	case *callgrind:
		err = countAll(*bin, *only)
	default:
		err = timeAll(*bin, *runs, *benchtime)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/shmfloor:", err)
		os.Exit(1)
	}
}

// env is everything the paths read: the sidecar, its segment, the floor, a store.
type env struct {
	dir, shm string
	sidecar  *procs.Cachee
	writer   *floorWriter
	floor    *floorReader
	reader   *store.Reader
	client   *cachee.Client
	st       *store.Store
}

func (e *env) close() {
	if e.client != nil {
		e.client.Close()
	}
	if e.reader != nil {
		e.reader.Close()
	}
	if e.st != nil {
		e.st.Close()
	}
	if e.writer != nil {
		e.writer.stop()
	}
	if e.sidecar != nil {
		e.sidecar.Stop()
	}
	os.RemoveAll(e.shm)
	os.RemoveAll(e.dir)
}

// setup starts the sidecar and the floor's writer, sets the hot key, and (with local)
// maps both segments and fills a store in this process.
func setup(bin string, local bool) (_ *env, err error) {
	e := &env{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "shmfloor"); err != nil {
		return nil, err
	}
	// Both segments live where a pod's would: on tmpfs, when the machine has one.
	parent := e.dir
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		parent = "/dev/shm"
	}
	if e.shm, err = os.MkdirTemp(parent, "shmfloor"); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if e.writer, err = startFloorWriter(exe, e.shm); err != nil {
		return nil, err
	}
	e.sidecar, err = procs.StartCachee(procs.CacheeOptions{Bin: bin, Dir: e.dir, Shm: e.shm, MaxMemory: "64mb"})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.client, err = cachee.Dial(ctx, cachee.WithTarget("unix://"+e.sidecar.Socket), cachee.WithShmDir(e.shm),
		cachee.WithWaitReady(), cachee.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	if _, err := e.client.Set(ctx, hotKey, hotValue(valueSize)); err != nil {
		return nil, err
	}
	if !local {
		return e, nil
	}
	if e.floor, err = openFloor(e.shm); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); !e.client.Counters().ShmActive; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, errors.New("the SDK did not map the segment")
		}
	}
	if e.reader, err = store.OpenReader(e.shm); err != nil {
		return nil, err
	}
	if e.st, err = openFilled(); err != nil {
		return nil, err
	}
	return e, nil
}

// openFilled opens a store in private memory holding 100,000 entries of 16-byte keys
// and 100-byte values (BenchmarkGetHit's store) and the hot key.
func openFilled() (*store.Store, error) {
	st, err := store.Open(store.Config{MaxMemory: 256 << 20})
	if err != nil {
		return nil, err
	}
	// The hot key first: it then sits early in its bucket whatever the store's random
	// seed, so that instruction counts vary little from run to run.
	if _, err := st.Set([]byte(hotKey), hotValue(valueSize), store.SetOptions{}); err != nil {
		st.Close()
		return nil, err
	}
	filler := make([]byte, valueSize)
	for i := range 100_000 {
		if _, err := st.Set(fmt.Appendf(nil, "key:%012d", i), filler, store.SetOptions{}); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// path is one way to read the hot key: get appends its value to buf.
type path struct {
	name string
	get  func(buf []byte) ([]byte, bool, error)
}

func (e *env) paths() []path {
	key := []byte(hotKey)
	ctx := context.Background()
	return []path{
		{"floor", func(buf []byte) ([]byte, bool, error) { return e.floor.get(key, buf) }},
		{"store.Reader.Get", func(buf []byte) ([]byte, bool, error) {
			v, _, ok, err := e.reader.Get(key, buf)
			return v, ok, err
		}},
		{"SDK GetInto (shm)", func(buf []byte) ([]byte, bool, error) { return e.client.GetInto(ctx, hotKey, buf) }},
		{"store.Store.Get (GetHit)", func(buf []byte) ([]byte, bool, error) { return e.st.Get(key, buf) }},
	}
}

func timeAll(bin string, runs int, benchtime time.Duration) error {
	if runtime.GOMAXPROCS(0) < 2 {
		return errors.New("needs GOMAXPROCS >= 2 to time two goroutines")
	}
	e, err := setup(bin, true)
	if err != nil {
		return err
	}
	defer e.close()
	paths := e.paths()
	load0 := procs.ReadLoadAvg()
	started := time.Now()
	fmt.Printf("cachee %s; hot key %q, %d-byte value; %d runs of about %v per path and goroutine count, rotating order\n",
		bin, hotKey, valueSize, runs, benchtime)
	fmt.Printf("tight loops, each goroutine on its own OS thread; wall time and the threads' CPU time (CLOCK_THREAD_CPUTIME_ID)\n")
	fmt.Printf("load average at the start: %s\n\n", load0)
	n := len(paths)
	ops := make([]int, n)
	allocs := make([]float64, n)
	for i, p := range paths {
		if ops[i], err = calibrate(p, benchtime); err != nil {
			return err
		}
		buf := make([]byte, 0, 128)
		allocs[i] = testing.AllocsPerRun(10000, func() { p.get(buf[:0]) })
	}
	wall1, cpu1, wall2, cpu2 := make([][]float64, n), make([][]float64, n), make([][]float64, n), make([][]float64, n)
	for r := range runs {
		for j := range n {
			i := (j + r) % n
			if r%2 == 1 {
				i = n - 1 - i
			}
			w1, c1, err := timeRun(paths[i], 1, ops[i])
			if err != nil {
				return err
			}
			w2, c2, err := timeRun(paths[i], 2, ops[i])
			if err != nil {
				return err
			}
			wall1[i], cpu1[i] = append(wall1[i], w1), append(cpu1[i], c1)
			wall2[i], cpu2[i] = append(wall2[i], w2), append(cpu2[i], c2)
			fmt.Printf("run %d  %-26s 1 goroutine: %6.1f ns/op wall, %6.1f CPU   2 goroutines: %6.1f ns/op wall, %6.1f CPU\n",
				r+1, paths[i].name, w1, c1, w2, c2)
		}
	}
	fmt.Printf("\nload average at the end: %s; took %v\n\n", procs.ReadLoadAvg(), time.Since(started).Round(time.Second))
	fmt.Println("| path | ns/op wall (median) | min – max | ÷ floor, wall | ns/op CPU (median) | ÷ floor, CPU | allocs/op | 2 goroutines ÷ 1, reads/s (wall) | CPU/op, 1 ÷ 2 goroutines |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, p := range paths {
		lo, hi := minMax(wall1[i])
		fmt.Printf("| %s | %.1f | %.1f – %.1f | %.2f× | %.1f | %.2f× | %.0f | %.2f× | %.2f |\n", p.name,
			stats.Median(wall1[i]), lo, hi, stats.Median(stats.PairedRatios(wall1[i], wall1[0])),
			stats.Median(cpu1[i]), stats.Median(stats.PairedRatios(cpu1[i], cpu1[0])), allocs[i],
			stats.Median(stats.PairedRatios(wall1[i], wall2[i])), stats.Median(stats.PairedRatios(cpu1[i], cpu2[i])))
	}
	fmt.Println("\nratios are medians of per-run ratios (each run of a path beside the floor's run of the same round);")
	fmt.Println("2 goroutines: wall ns/op is the wall time over all reads of both; reads/s ratio = wall ns/op of 1 ÷ of 2.")
	return nil
}

// calibrate picks how many Gets make a run of about d.
func calibrate(p path, d time.Duration) (int, error) {
	const probe = 100_000
	w, _, err := timeRun(p, 1, probe)
	if err != nil {
		return 0, err
	}
	return max(probe, int(float64(d.Nanoseconds())/w)), nil
}

// timeRun runs ops Gets on each of g goroutines, each locked to its own OS thread and
// started together, and returns the wall time per Get (over all goroutines' Gets) and
// the threads' CPU time per Get.
func timeRun(p path, g, ops int) (wallPerOp, cpuPerOp float64, err error) {
	start := make(chan struct{})
	type result struct {
		cpu time.Duration
		err error
	}
	res := make(chan result, g)
	var ready sync.WaitGroup
	ready.Add(g)
	for range g {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			buf := make([]byte, 0, 128)
			ready.Done()
			<-start
			c0 := threadCPU()
			for range ops {
				if v, ok, err := p.get(buf[:0]); !ok || len(v) != valueSize {
					res <- result{err: fmt.Errorf("%s: missed the hot key (%v, %d bytes, %v)", p.name, ok, len(v), err)}
					return
				}
			}
			res <- result{cpu: threadCPU() - c0}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	var cpu time.Duration
	for range g {
		r := <-res
		if r.err != nil {
			err = r.err
		}
		cpu += r.cpu
	}
	wall := time.Since(t0)
	total := float64(g * ops)
	return float64(wall.Nanoseconds()) / total, float64(cpu.Nanoseconds()) / total, err
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// repoRoot is the module's root, for building test binaries.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the cachee module")
		}
		dir = parent
	}
}
