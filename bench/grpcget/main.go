// Command grpcget measures cachee's gRPC Get of a hot key over the Unix socket against
// a bare grpc-go server answering grpc.health.v1 Check over a Unix socket, in the same
// run: both servers are separate processes, called by the same client one call at a
// time. Each call is timed on its own; runs alternate which server goes first; the
// report gives p50 and p99 per run and their medians.
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

func main() {
	var (
		cachee      = flag.String("cachee", "bin/cachee", "cachee binary to measure")
		runs        = flag.Int("runs", 7, "measured runs per target, in rotating order")
		calls       = flag.Int("calls", 20000, "timed calls per run")
		warmup      = flag.Int("warmup", 2000, "untimed calls before each run")
		valueSize   = flag.Int("value", 100, "bytes in the value Get returns")
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
	if err := bench(*cachee, *runs, *calls, *warmup, *valueSize); err != nil {
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

func bench(cacheeBin string, runs, calls, warmup, valueSize int) error {
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
	targets := []struct {
		name   string
		server int // index into servers, for CPU time
		call   func() error
	}{
		{fmt.Sprintf("cachee Get (%d B value)", valueSize), 0, func() error {
			r, err := cache.Get(ctx, getReq)
			if err == nil && len(r.GetValue()) != valueSize {
				err = errors.New("Get missed the hot key")
			}
			return err
		}},
		{"bare health Check", 1, func() error { _, err := hc.Check(ctx, checkReq); return err }},
		// Check on cachee itself separates what the Get handler adds from what the
		// rest of the server (interceptors, store upkeep) adds.
		{"cachee health Check", 0, func() error { _, err := cacheeHealth.Check(ctx, checkReq); return err }},
	}
	n := len(targets)
	p50s, p99s, cpus := make([][]time.Duration, n), make([][]time.Duration, n), make([][]time.Duration, n)
	fmt.Printf("%d runs x %d calls per target, one call in flight; server CPU is user+system time of the server process\n", runs, calls)
	fmt.Printf("%-4s %-28s %10s %10s %14s\n", "run", "server", "p50", "p99", "server CPU/call")
	times := make([]time.Duration, calls)
	for run := range runs {
		// Rotate the order, so that no target always runs first or last.
		order := make([]int, n)
		for i := range order {
			order[i] = (i + run) % n
		}
		for _, i := range order {
			tg := targets[i]
			for range warmup {
				if err := tg.call(); err != nil {
					return fmt.Errorf("%s: %w", tg.name, err)
				}
			}
			cpu0, err := cpuTime(servers[tg.server].Process.Pid)
			if err != nil {
				return err
			}
			for j := range times {
				t0 := time.Now()
				err := tg.call()
				times[j] = time.Since(t0)
				if err != nil {
					return fmt.Errorf("%s: %w", tg.name, err)
				}
			}
			cpu1, err := cpuTime(servers[tg.server].Process.Pid)
			if err != nil {
				return err
			}
			slices.Sort(times)
			p50, p99, cpu := times[len(times)/2], times[len(times)*99/100], (cpu1-cpu0)/time.Duration(calls)
			p50s[i] = append(p50s[i], p50)
			p99s[i] = append(p99s[i], p99)
			cpus[i] = append(cpus[i], cpu)
			fmt.Printf("%-4d %-28s %10v %10v %14v\n", run+1, tg.name, p50.Round(10*time.Nanosecond), p99.Round(10*time.Nanosecond), cpu)
		}
	}
	fmt.Println()
	fmt.Printf("median of %d runs:\n", runs)
	for i, tg := range targets {
		fmt.Printf("     %-28s %10v %10v %14v\n", tg.name, median(p50s[i]).Round(10*time.Nanosecond), median(p99s[i]).Round(10*time.Nanosecond), median(cpus[i]))
	}
	ratio := float64(median(p50s[0])) / float64(median(p50s[1]))
	verdict := "within"
	if ratio > 1.10 {
		verdict = "NOT within"
	}
	fmt.Printf("cachee Get p50 / health Check p50 = %.3f: %s the 10%% target\n", ratio, verdict)
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

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}
