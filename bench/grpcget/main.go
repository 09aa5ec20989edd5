// Command grpcget measures cachee's gRPC Get of a hot key over the Unix socket against
// a bare grpc-go server answering grpc.health.v1 Check over a Unix socket, in the same
// run: both servers are separate processes, called by the same client one call at a
// time, each call timed on its own. It measures two ways:
//
//   - blocks: each run calls one target back to back, then the next, the order
//     rotating from run to run; the servers stay busy, as under steady load;
//   - interleaved: each round calls every target once, the order rotating per round,
//     so that a machine busy with other work slows all targets alike.
//
// The report gives p50 and p99 per run and their medians, and each server's CPU time
// per call.
//
//	go run ./bench/grpcget -cachee bin/cachee
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cachee/cachee/bench/internal/stats"
	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

func main() {
	var (
		cachee      = flag.String("cachee", "bin/cachee", "cachee binary to measure")
		runs        = flag.Int("runs", 7, "measured runs; the report gives the median of their percentiles")
		calls       = flag.Int("calls", 20000, "timed calls per target per run")
		warmup      = flag.Int("warmup", 2000, "untimed calls per target before each run")
		valueSize   = flag.Int("value", 100, "bytes in the value Get returns")
		mode        = flag.String("mode", "blocks,interleaved", "how to order the calls: blocks, interleaved, or both")
		cacheeCheck = flag.Bool("cachee-check", false, "also time health Check on cachee")
		serveHealth = flag.String("serve-health", "", "internal: serve a bare health server on this socket")
	)
	flag.Parse()
	if *serveHealth != "" {
		if err := bareHealthServer(*serveHealth); err != nil {
			fmt.Fprintln(os.Stderr, "health server:", err)
			os.Exit(1)
		}
		return
	}
	if err := bench(*cachee, strings.Split(*mode, ","), *cacheeCheck, *runs, *calls, *warmup, *valueSize); err != nil {
		fmt.Fprintln(os.Stderr, "grpcget:", err)
		os.Exit(1)
	}
}

// bareHealthServer is the baseline: grpc-go with nothing but the health service.
func bareHealthServer(sock string) error {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, os.Interrupt)
		<-c
		s.Stop()
	}()
	return s.Serve(ln)
}

func bench(cacheeBin string, modes []string, withCacheeCheck bool, runs, calls, warmup, valueSize int) error {
	dir, err := os.MkdirTemp("", "grpcget")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cacheeSock, healthSock := filepath.Join(dir, "cachee.sock"), filepath.Join(dir, "health.sock")

	self, err := os.Executable()
	if err != nil {
		return err
	}
	servers := []*exec.Cmd{
		exec.Command(cacheeBin, "--socket="+cacheeSock, "--port=0", "--http-port=0", "--metrics-port=0",
			"--shm=", "--max-memory=64mb", "--log-level=warn"),
		exec.Command(self, "-serve-health", healthSock),
	}
	for _, s := range servers {
		s.Stderr = os.Stderr
		if err := s.Start(); err != nil {
			return err
		}
		defer func() {
			s.Process.Signal(syscall.SIGTERM)
			s.Wait()
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cacheeConn, err := connect(ctx, cacheeSock)
	if err != nil {
		return fmt.Errorf("cachee: %w", err)
	}
	healthConn, err := connect(ctx, healthSock)
	if err != nil {
		return fmt.Errorf("health server: %w", err)
	}
	cache := cacheev1.NewCacheServiceClient(cacheeConn)
	key := []byte("bench:hot")
	if _, err := cache.Set(ctx, &cacheev1.SetRequest{Key: key, Value: make([]byte, valueSize)}); err != nil {
		return err
	}
	getReq := &cacheev1.GetRequest{Key: key}
	hc := healthpb.NewHealthClient(healthConn)
	checkReq := &healthpb.HealthCheckRequest{}

	cacheeHealth := healthpb.NewHealthClient(cacheeConn)
	targets := []target{
		{fmt.Sprintf("cachee Get (%d B value)", valueSize), 0, func() error {
			r, err := cache.Get(ctx, getReq)
			if err == nil && len(r.GetValue()) != valueSize {
				err = errors.New("Get missed the hot key")
			}
			return err
		}},
		{"bare health Check", 1, func() error { _, err := hc.Check(ctx, checkReq); return err }},
	}
	if withCacheeCheck {
		// Check on cachee itself separates what the Get handler adds from what the
		// rest of the server adds. It shares cachee's CPU figure with Get.
		targets = append(targets, target{"cachee health Check", 0, func() error {
			_, err := cacheeHealth.Check(ctx, checkReq)
			return err
		}})
	}
	pids := []int{servers[0].Process.Pid, servers[1].Process.Pid}
	for _, mode := range modes {
		if err := measure(mode, targets, pids, runs, calls, warmup); err != nil {
			return err
		}
	}
	return nil
}

type target struct {
	name   string
	server int // index into the servers
	call   func() error
}

func measure(mode string, targets []target, pids []int, runs, calls, warmup int) error {
	n := len(targets)
	p50s, p99s := make([][]time.Duration, n), make([][]time.Duration, n)
	cpus := make([][]time.Duration, len(pids))
	times := make([][]time.Duration, n)
	for i := range times {
		times[i] = make([]time.Duration, calls)
	}
	timed := func(i, j int) error {
		t0 := time.Now()
		err := targets[i].call()
		times[i][j] = time.Since(t0)
		if err != nil {
			return fmt.Errorf("%s: %w", targets[i].name, err)
		}
		return nil
	}
	fmt.Printf("\n%s: %d runs, %d timed calls per target per run, one call in flight\n", mode, runs, calls)
	fmt.Printf("%-4s %-28s %10s %10s\n", "run", "target", "p50", "p99")
	for run := range runs {
		for range warmup {
			for _, tg := range targets {
				if err := tg.call(); err != nil {
					return fmt.Errorf("%s: %w", tg.name, err)
				}
			}
		}
		cpu0 := make([]time.Duration, len(pids))
		for i, pid := range pids {
			var err error
			if cpu0[i], err = cpuTime(pid); err != nil {
				return err
			}
		}
		switch mode {
		case "interleaved":
			for j := range calls {
				for k := range n {
					if err := timed((j+k)%n, j); err != nil {
						return err
					}
				}
			}
		case "blocks":
			for k := range n {
				i := (run + k) % n
				for j := range calls {
					if err := timed(i, j); err != nil {
						return err
					}
				}
			}
		default:
			return fmt.Errorf("unknown mode %q", mode)
		}
		for i, pid := range pids {
			cpu1, err := cpuTime(pid)
			if err != nil {
				return err
			}
			served := 0
			for _, tg := range targets {
				if tg.server == i {
					served += calls
				}
			}
			cpus[i] = append(cpus[i], (cpu1-cpu0[i])/time.Duration(served))
		}
		for i, tg := range targets {
			q := stats.Summarize(times[i])
			p50, p99 := q.P50, q.P99
			p50s[i] = append(p50s[i], p50)
			p99s[i] = append(p99s[i], p99)
			fmt.Printf("%-4d %-28s %10v %10v\n", run+1, tg.name, p50.Round(10*time.Nanosecond), p99.Round(10*time.Nanosecond))
		}
	}
	fmt.Printf("median of %d runs (%s):\n", runs, mode)
	for i, tg := range targets {
		fmt.Printf("     %-28s %10v %10v\n", tg.name, stats.MedianDuration(p50s[i]).Round(10*time.Nanosecond), stats.MedianDuration(p99s[i]).Round(10*time.Nanosecond))
	}
	fmt.Printf("server CPU per call (user+system): cachee %v, bare health server %v\n", stats.MedianDuration(cpus[0]), stats.MedianDuration(cpus[1]))
	// Every run times both targets, so their runs pair up.
	ratio := stats.Median(stats.PairedRatios(floats(p50s[0]), floats(p50s[1])))
	verdict := "within"
	if ratio > 1.10 {
		verdict = "NOT within"
	}
	fmt.Printf("%s: cachee Get p50 / bare health Check p50 = %.3f (median of the per-run ratios), %s the 10%% target\n", mode, ratio, verdict)
	return nil
}

// connect dials a Unix socket and waits until the server answers.
func connect(ctx context.Context, sock string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	hc := healthpb.NewHealthClient(cc)
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	return cc, err
}

// cpuTime is the user plus system CPU time a process has used, from /proc; its
// resolution is the kernel's clock tick, so it is read over whole runs only.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ, which Linux fixes at 100 for /proc
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// floats converts durations to float nanoseconds, for stats.PairedRatios.
func floats(d []time.Duration) []float64 {
	v := make([]float64, len(d))
	for i, x := range d {
		v[i] = float64(x)
	}
	return v
}
