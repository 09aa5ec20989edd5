// Command l2 measures what a read costs at each tier, in one run, from one client
// process: a hit in cachee's L1, a miss that cachee reads through from L2 (a cold key:
// every call asks for a key cachee has not seen), and the same GET sent by the same
// client library straight to the redis-server that serves as L2. It starts both
// servers itself (redis-server on a free loopback port without persistence; cachee
// with --l2 pointing at it), calls one target at a time with each call timed on its
// own, and rotates the targets call by call so that other load on the machine slows
// all of them alike. RESP goes over TCP loopback (go-redis, one connection); gRPC over
// the Unix socket. The report gives p50 and p99 per target, the median over runs.
//
//	go run ./bench/l2 -cachee bin/cachee
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cachee/cachee/bench/internal/stats"
	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

func main() {
	var (
		cachee    = flag.String("cachee", "bin/cachee", "cachee binary to measure")
		redisBin  = flag.String("redis-server", "redis-server", "redis-server binary to use as L2")
		runs      = flag.Int("runs", 5, "measured runs; the report gives the median of their percentiles")
		calls     = flag.Int("calls", 5000, "timed calls per target per run")
		valueSize = flag.Int("value", 100, "bytes per value")
		timeout   = flag.Duration("l2-timeout", time.Second, "cachee's --l2-timeout: high, so that a rare stall of this machine is measured rather than turned into a miss")
	)
	flag.Parse()
	if err := run(*cachee, *redisBin, *runs, *calls, *valueSize, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "l2:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	call func(i int) error // i numbers the call, for targets that need a fresh key each time
}

func run(cacheeBin, redisBin string, runs, calls, valueSize int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "benchl2")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	port, err := freePort()
	if err != nil {
		return err
	}
	redisAddr := "127.0.0.1:" + strconv.Itoa(port)
	rs := exec.Command(redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir)
	if err := rs.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	defer func() { rs.Process.Kill(); rs.Wait() }()
	direct := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 1})
	defer direct.Close()
	for start := time.Now(); direct.Ping(ctx).Err() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			return errors.New("redis-server did not start")
		}
	}

	// The keys: one hot key, and a cold key for every read-through call.
	value := strings.Repeat("v", valueSize)
	warmup := max(calls/10, 100)
	cold := 2 * (runs*calls + warmup) // two read-through targets; the warm-up uses some too
	p := direct.Pipeline()
	p.Set(ctx, "bench:hot", value, 0)
	for i := range cold {
		p.Set(ctx, "bench:cold:"+strconv.Itoa(i), value, 0)
		if i%1000 == 999 {
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return err
	}

	sock := filepath.Join(dir, "cachee.sock")
	cs := exec.Command(cacheeBin, "--socket="+sock, "--port=0", "--http-port=0", "--metrics-port=0", "--shm=",
		"--max-memory=256mb", "--log-format=json", "--l2=redis://"+redisAddr, "--prewarm-keys=0", "--hotset-key=", "--l2-timeout="+timeout.String())
	cs.Env = cleanEnv()
	addr, err := startCachee(cs)
	if err != nil {
		return err
	}
	defer func() { cs.Process.Signal(syscall.SIGTERM); cs.Wait() }()

	viaRESP := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
	defer viaRESP.Close()
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	viaGRPC := cacheev1.NewCacheServiceClient(cc)
	if v, err := viaRESP.Get(ctx, "bench:hot").Result(); err != nil || v != value { // now in L1
		return fmt.Errorf("first GET through cachee: %v", err)
	}

	var next int // the next cold key
	coldKey := func() string { next++; return "bench:cold:" + strconv.Itoa(next-1) }
	misses := 0 // read-throughs answered "miss" (L2 slower than the timeout): counted, not fatal
	check := func(v string, err error) error {
		if errors.Is(err, redis.Nil) || err == nil && v == "" {
			misses++
			return nil
		}
		if err == nil && v != value {
			err = fmt.Errorf("wrong value %q", v)
		}
		return err
	}
	targets := []target{
		{"redis-server GET (direct, RESP/TCP)", func(int) error { return check(direct.Get(ctx, "bench:hot").Result()) }},
		{"cachee GET, L1 hit (RESP/TCP)", func(int) error { return check(viaRESP.Get(ctx, "bench:hot").Result()) }},
		{"cachee GET, L2 read-through (RESP/TCP)", func(int) error { return check(viaRESP.Get(ctx, coldKey()).Result()) }},
		{"cachee Get, L1 hit (gRPC/unix)", func(int) error {
			r, err := viaGRPC.Get(ctx, &cacheev1.GetRequest{Key: []byte("bench:hot")})
			return check(string(r.GetValue()), err)
		}},
		{"cachee Get, L2 read-through (gRPC/unix)", func(int) error {
			r, err := viaGRPC.Get(ctx, &cacheev1.GetRequest{Key: []byte(coldKey())})
			return check(string(r.GetValue()), err)
		}},
	}
	// Warm up every path (connections, the loop, the scheduler) untimed.
	for i := range warmup {
		for _, t := range targets {
			if err := t.call(i); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	p50s := make([][]time.Duration, len(targets))
	p99s := make([][]time.Duration, len(targets))
	for r := range runs {
		lat := make([][]time.Duration, len(targets))
		for i := range calls {
			for j := range targets {
				k := (i + j + r) % len(targets) // rotate the order
				if next >= cold {
					return errors.New("ran out of cold keys")
				}
				t0 := time.Now()
				if err := targets[k].call(i); err != nil {
					return fmt.Errorf("%s: %w", targets[k].name, err)
				}
				lat[k] = append(lat[k], time.Since(t0))
			}
		}
		for k := range targets {
			q := stats.Summarize(lat[k])
			p50s[k] = append(p50s[k], q.P50)
			p99s[k] = append(p99s[k], q.P99)
		}
	}
	fmt.Printf("bench/l2: %d runs x %d calls per target, %d-byte values, one connection per client, calls interleaved, --l2-timeout=%v\n",
		runs, calls, valueSize, timeout)
	fmt.Printf("%-42s %10s %10s\n", "target", "p50", "p99")
	for k, t := range targets {
		fmt.Printf("%-42s %10v %10v\n", t.name, stats.MedianDuration(p50s[k]).Round(100*time.Nanosecond), stats.MedianDuration(p99s[k]).Round(100*time.Nanosecond))
	}
	if misses > 0 {
		fmt.Printf("%d read(s) answered as misses: L2 took longer than --l2-timeout\n", misses)
	}
	return nil
}

func freePort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(30000)
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free port")
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CACHEE_") {
			env = append(env, kv)
		}
	}
	return env
}

// startCachee starts cmd and returns the TCP address from its "serving" log line.
func startCachee(cmd *exec.Cmd) (string, error) {
	out, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			var line struct{ Msg, Addr, Level string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" && !sent {
				addr <- line.Addr
				sent = true
			} else if line.Level != "INFO" {
				fmt.Fprintln(os.Stderr, "cachee:", sc.Text())
			}
		}
		if !sent {
			close(addr)
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			cmd.Wait()
			return "", errors.New("cachee exited before serving")
		}
		_, port, _ := net.SplitHostPort(a)
		return "127.0.0.1:" + port, nil
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		return "", errors.New("cachee did not start")
	}
}
