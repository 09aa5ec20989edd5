// Command sdk measures a hot-key read through the Go SDK's three paths against one
// cachee sidecar that it starts itself: a Get hit read from the shared-memory segment,
// a Get hit over gRPC on the Unix socket, and a RESP GET on the same socket with
// go-redis; and, as the floor under the first, store.Reader.Get alone. Every call is timed on its own (one call in flight, no RunParallel); each
// run reports p50 and p99, runs rotate their order, and the summary gives the medians
// over runs and the shm : gRPC ratio.
//
//	go build -o bin/cachee ./cmd/cachee && go run ./bench/sdk -cachee bin/cachee
//
// Timing one call of a few tens of nanoseconds with the clock costs about as much as
// the call: the report gives the raw per-call figures, the clock's own cost measured
// the same way, and the mean over batches of 1000 calls timed together, so that the
// three can be read against each other.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/bench/internal/stats"
	cachee "github.com/cachee/cachee/sdk/go"
	"github.com/cachee/cachee/store"
)

func main() {
	var (
		bin       = flag.String("cachee", "bin/cachee", "cachee binary to start")
		runs      = flag.Int("runs", 5, "measured runs per path, in rotating order")
		calls     = flag.Int("calls", 200000, "timed calls per run for shm (gRPC and RESP take a tenth)")
		valueSize = flag.Int("value", 100, "bytes in the hot key's value")
	)
	flag.Parse()
	if err := run(*bin, *runs, *calls, *valueSize); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sdk:", err)
		os.Exit(1)
	}
}

// path is one way to read the hot key.
type path struct {
	name  string
	calls int
	call  func() error
	skip  string // why this path is not measured
}

func run(bin string, runs, calls, valueSize int) error {
	dir, err := os.MkdirTemp("", "bench-sdk")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The segment lives where a pod's would: on tmpfs, when the machine has one.
	shmParent := dir
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		shmParent = "/dev/shm"
	}
	shm, err := os.MkdirTemp(shmParent, "bench-sdk-shm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(shm)
	sock := filepath.Join(dir, "cachee.sock")
	sc, resp, err := startSidecar(bin, sock, shm)
	if err != nil {
		return err
	}
	defer func() {
		sc.Process.Signal(syscall.SIGTERM)
		sc.Wait()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	viaShm, err := cachee.Dial(ctx, cachee.WithTarget("unix://"+sock), cachee.WithShmDir(shm), cachee.WithWaitReady(), cachee.WithLogger(quiet))
	if err != nil {
		return err
	}
	defer viaShm.Close()
	viaGRPC, err := cachee.Dial(ctx, cachee.WithTarget("unix://"+sock), cachee.WithoutShm(), cachee.WithWaitReady(), cachee.WithLogger(quiet))
	if err != nil {
		return err
	}
	defer viaGRPC.Close()
	for deadline := time.Now().Add(10 * time.Second); !viaShm.Counters().ShmActive; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("the SDK did not map the segment")
		}
	}

	const key = "bench:hot"
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	if _, err := viaShm.Set(ctx, key, value); err != nil {
		return err
	}
	buf := make([]byte, 0, valueSize+64)
	check := func(v []byte, found bool, err error) error {
		if err == nil && (!found || len(v) != valueSize) {
			err = fmt.Errorf("missed the hot key (found %v, %d bytes)", found, len(v))
		}
		return err
	}
	paths := []path{
		{name: "shm Get hit (SDK GetInto)", calls: calls, call: func() error {
			v, found, err := viaShm.GetInto(ctx, key, buf)
			return check(v, found, err)
		}},
		{name: "gRPC Get hit (SDK, socket)", calls: max(calls/10, 1000), call: func() error {
			v, found, err := viaGRPC.GetInto(ctx, key, buf)
			return check(v, found, err)
		}},
	}
	// The store's reader alone, without the SDK: the floor the SDK's hit path adds to.
	reader, err := store.OpenReader(shm)
	if err != nil {
		return err
	}
	defer reader.Close()
	keyBytes := []byte(key)
	floor := path{name: "store.Reader.Get alone (floor)", calls: calls, call: func() error {
		v, _, found, err := reader.Get(keyBytes, buf[:0])
		return check(v, found, err)
	}}
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, PoolSize: 1, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	respPath := path{name: "RESP GET hit (go-redis, socket)", calls: max(calls/10, 1000), call: func() error {
		v, err := rdb.Get(ctx, key).Bytes()
		return check(v, err == nil, err)
	}}
	if !resp {
		respPath.skip = "this cachee build serves no RESP (its \"serving\" log line says resp=false; RESP is wired in separately)"
	} else if err := rdb.Ping(ctx).Err(); err != nil {
		respPath.skip = "RESP PING failed: " + err.Error()
	}
	paths = append(paths, respPath, floor)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clockP50, clockP99 := clockCost(calls)
	fmt.Printf("cachee %s, %d-byte value, hot key; one call in flight, each call timed alone\n", bin, valueSize)
	fmt.Printf("clock: time.Now + time.Since around nothing: p50 %v p99 %v (included in every figure below)\n\n", clockP50, clockP99)
	fmt.Printf("%-4s %-34s %10s %10s %14s\n", "run", "path", "p50", "p99", "batch mean")
	n := len(paths)
	p50s, p99s, means := make([][]time.Duration, n), make([][]time.Duration, n), make([][]time.Duration, n)
	for r := range runs {
		for j := range n {
			i := (j + r) % n
			p := paths[i]
			if p.skip != "" {
				continue
			}
			p50, p99, mean, err := measure(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			p50s[i], p99s[i], means[i] = append(p50s[i], p50), append(p99s[i], p99), append(means[i], mean)
			fmt.Printf("%-4d %-34s %10v %10v %14v\n", r+1, p.name, p50, p99, mean)
		}
	}
	fmt.Printf("\nmedian of %d runs:\n", runs)
	for i, p := range paths {
		if p.skip != "" {
			fmt.Printf("     %-34s skipped: %s\n", p.name, p.skip)
			continue
		}
		fmt.Printf("     %-34s %10v %10v %14v\n", p.name, stats.MedianDuration(p50s[i]), stats.MedianDuration(p99s[i]), stats.MedianDuration(means[i]))
	}
	shmP50 := stats.MedianDuration(p50s[0])
	// Each run measures every path, so run r of shm and run r of gRPC were made back to back.
	grpcOverShm := stats.Median(stats.PairedRatios(floats(p50s[1]), floats(p50s[0])))
	fmt.Printf("\nshm : gRPC (p50, median of the per-run ratios) = 1 : %.0f; shm p50 minus the clock's p50 = %v\n", grpcOverShm, shmP50-clockP50)
	target := "meets"
	if shmP50 >= 100*time.Nanosecond {
		target = "does NOT meet"
	}
	fmt.Printf("shm Get hit p50 %v %s the 100 ns target (goal 31 ns)\n", shmP50, target)
	c := viaShm.Counters()
	fmt.Printf("SDK counters: shm hits %d, fallbacks %d, hits reported %d, dropped by the lossy buffer %d\n",
		c.ShmHits, c.ShmFallbacks, c.AccessReported, c.AccessDropped)
	if c.ShmFallbacks != 0 {
		return errors.New("some shm Gets fell back to gRPC: the shm figures are mixed")
	}
	return nil
}

// measure times each call of p on its own, then batches of 1000 calls together.
func measure(p path) (p50, p99, batchMean time.Duration, err error) {
	for range p.calls / 10 { // warm up
		if err := p.call(); err != nil {
			return 0, 0, 0, err
		}
	}
	times := make([]time.Duration, p.calls)
	for j := range times {
		t0 := time.Now()
		err := p.call()
		times[j] = time.Since(t0)
		if err != nil {
			return 0, 0, 0, err
		}
	}
	q := stats.Summarize(times)
	const batch = 1000
	var means []time.Duration
	for range max(p.calls/batch/10, 3) {
		t0 := time.Now()
		for range batch {
			if err := p.call(); err != nil {
				return 0, 0, 0, err
			}
		}
		means = append(means, time.Since(t0)/batch)
	}
	return q.P50, q.P99, stats.MedianDuration(means), nil
}

// clockCost is the cost of the timing itself, measured as the calls are.
func clockCost(n int) (p50, p99 time.Duration) {
	times := make([]time.Duration, n)
	for j := range times {
		t0 := time.Now()
		times[j] = time.Since(t0)
	}
	q := stats.Summarize(times)
	return q.P50, q.P99
}

// floats converts durations to float nanoseconds, for stats.PairedRatios.
func floats(d []time.Duration) []float64 {
	v := make([]float64, len(d))
	for i, x := range d {
		v[i] = float64(x)
	}
	return v
}

// startSidecar starts cachee with free ports and waits for its "serving" line, which
// also says whether this build serves RESP.
func startSidecar(bin, sock, shm string) (*exec.Cmd, bool, error) {
	cmd := exec.Command(bin, "--socket="+sock, "--shm="+shm, "--port=0", "--http-port=0", "--metrics-port=0",
		"--max-memory=64mb", "--log-format=json")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CACHEE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, false, err
	}
	if err := cmd.Start(); err != nil {
		return nil, false, err
	}
	type serving struct {
		Msg  string
		Addr string
		Resp bool
	}
	ready := make(chan serving, 1)
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var line serving
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				once.Do(func() { ready <- line })
			} else if !strings.Contains(sc.Text(), `"level":"INFO"`) {
				fmt.Fprintln(os.Stderr, "cachee:", sc.Text())
			}
		}
		once.Do(func() { close(ready) })
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			cmd.Wait()
			return nil, false, errors.New("cachee exited before serving")
		}
		if _, _, err := net.SplitHostPort(line.Addr); err != nil {
			return nil, false, fmt.Errorf("serving line without an address: %+v", line)
		}
		return cmd, line.Resp, nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, false, errors.New("cachee did not start within 30s")
	}
}
