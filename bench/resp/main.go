// Command resp compares cachee's RESP shim with redis-server using redis-benchmark, on
// TCP and on a Unix socket, with and without pipelining, GET and SET. It starts both
// servers itself (cachee in this process over an in-memory store, redis-server as a
// child), alternates runs between them so that both see the same machine, and prints a
// Markdown table of medians with the ratio cachee/redis.
//
//	go run ./bench/resp               # the default run, about 2 to 3 minutes
//	go run ./bench/resp -rounds 9     # more rounds, tighter medians
//	go run ./bench/resp -modes loop,goroutine  # compare cachee's two designs
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/stats"
	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

func main() {
	var (
		rounds   = flag.Int("rounds", 5, "runs of each case per server; the table shows medians")
		clients  = flag.Int("c", 50, "redis-benchmark -c")
		size     = flag.Int("d", 100, "redis-benchmark -d (value bytes)")
		keyspace = flag.Int("r", 100000, "redis-benchmark -r (random keys); 0 uses one key")
		n1       = flag.Int("n", 100000, "requests per run without pipelining")
		nP       = flag.Int("nP", 1000000, "requests per run with -P")
		pipe     = flag.Int("P", 16, "pipeline depth of the pipelined rows")
		modes    = flag.String("modes", "loop", "cachee designs to run, comma-separated: loop (event loops, the default design), goroutine, loopN (N event loops)")
		maxmem   = flag.Int64("maxmemory", 256<<20, "store max memory in bytes")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of this process (cachee) to the file")
	)
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/resp:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench/resp:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*rounds, *clients, *size, *keyspace, *n1, *nP, *pipe, strings.Split(*modes, ","), *maxmem); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench/resp:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	tcp  string // host:port
	sock string
	cpu  func() (time.Duration, error) // CPU time the server has used so far
}

// result is one redis-benchmark run: requests/s of SET and of GET, and the server's CPU
// time per request over both. CPU per request is steadier than requests/s when other
// work shares the machine.
type result struct{ rps, cpuPerReq float64 }

type row struct {
	transport string
	pipeline  int
	test      string // "set" or "get"
}

func run(rounds, clients, size, keyspace, n1, nP, pipe int, modes []string, maxmem int64) error {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return fmt.Errorf("redis-benchmark not found (Debian: apt-get install redis-tools): %w", err)
	}
	dir, err := os.MkdirTemp("", "cachee-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	srv, err := procs.StartRedis(dir, "redis")
	if err != nil {
		return err
	}
	defer srv.Stop()
	redis := target{name: "redis-server", tcp: srv.Addr, sock: srv.Socket,
		cpu: func() (time.Duration, error) { return procs.CPUTime(srv.Pid()) }}
	targets := []target{redis}
	for _, m := range modes {
		loops := 0
		switch n, err := strconv.Atoi(strings.TrimPrefix(m, "loop")); {
		case m == "loop":
		case m == "goroutine":
			loops = -1
		case strings.HasPrefix(m, "loop") && err == nil && n > 0:
			loops = n
		default:
			return fmt.Errorf("unknown mode %q", m)
		}
		t, stop, err := startCachee(dir, m, loops, maxmem)
		if err != nil {
			return err
		}
		defer stop()
		targets = append(targets, t)
	}

	var rows []row
	for _, tr := range []string{"tcp", "unix"} {
		for _, p := range []int{1, pipe} {
			for _, test := range []string{"set", "get"} {
				rows = append(rows, row{tr, p, test})
			}
		}
	}
	samples := map[string]map[row][]result{}
	for _, t := range targets {
		samples[t.name] = map[row][]result{}
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "redis-benchmark -c %d -d %d -r %d; %d rounds; GOMAXPROCS=%d, %d CPUs\n",
		clients, size, keyspace, rounds, runtime.GOMAXPROCS(0), runtime.NumCPU())
	// Warm up every server and fill its keyspace, so that GET finds values.
	for _, t := range targets {
		for _, test := range []string{"set", "get"} {
			if _, err := bench(bin, t, row{"tcp", pipe, test}, clients, size, keyspace, warmupRequests(keyspace, n1)); err != nil {
				return err
			}
		}
	}
	// Each run is short and the servers take turns run by run (ABBA order), so that a
	// burst of other work on the machine falls on both alike.
	for r := 0; r < rounds; r++ {
		for i, rw := range rows {
			n := n1
			if rw.pipeline > 1 {
				n = nP
			}
			order := slices.Clone(targets)
			if (r+i)%2 == 1 {
				slices.Reverse(order)
			}
			for _, t := range order {
				res, err := bench(bin, t, rw, clients, size, keyspace, n)
				if err != nil {
					return err
				}
				samples[t.name][rw] = append(samples[t.name][rw], res)
				fmt.Fprintf(os.Stderr, "round %d %-16s %-4s P=%-2d %s %9.0f req/s  CPU %.2f µs/req\n",
					r+1, t.name, rw.transport, rw.pipeline, strings.ToUpper(rw.test), res.rps, res.cpuPerReq)
			}
		}
	}
	fmt.Printf("\nredis-benchmark -c %d -d %d -r %d, %d rounds, requests/s (GOMAXPROCS=%d on %d CPUs; redis-server %s)\n",
		clients, size, keyspace, rounds, runtime.GOMAXPROCS(0), runtime.NumCPU(), procs.RedisVersion())
	fmt.Printf("Figures are medians over the rounds; a ratio is the median of the per-round ratios\n" +
		"of runs made back to back. CPU is the server's CPU time per request.\n\n")
	hdr := "| transport | pipeline | command | redis-server req/s | CPU µs |"
	sep := "|---|---|---|---:|---:|"
	for _, t := range targets[1:] {
		hdr += " " + t.name + " req/s | CPU µs | req/s ratio | CPU ratio |"
		sep += "---:|---:|---:|---:|"
	}
	fmt.Println(hdr)
	fmt.Println(sep)
	for _, rw := range rows {
		base := samples[redis.name][rw]
		line := fmt.Sprintf("| %s | %s | %s | %.0f | %.2f |", rw.transport, pipeName(rw.pipeline),
			strings.ToUpper(rw.test), stats.Median(field(base, rps)), stats.Median(field(base, cpu)))
		for _, t := range targets[1:] {
			rs := samples[t.name][rw]
			line += fmt.Sprintf(" %.0f | %.2f | %.2f | %.2f |", stats.Median(field(rs, rps)), stats.Median(field(rs, cpu)),
				stats.Median(stats.PairedRatios(field(rs, rps), field(base, rps))),
				stats.Median(stats.PairedRatios(field(rs, cpu), field(base, cpu))))
		}
		fmt.Println(line)
	}
	fmt.Fprintf(os.Stderr, "\ntook %v\n", time.Since(start).Round(time.Second))
	return nil
}

func rps(r result) float64 { return r.rps }
func cpu(r result) float64 { return r.cpuPerReq }

func field(rs []result, f func(result) float64) []float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	return v
}

// warmupRequests is the -n of the warm-up runs: enough to fill the keyspace four times
// over, and never 0, which redis-benchmark takes as no end.
func warmupRequests(keyspace, n1 int) int { return max(4*keyspace, n1, 1) }

func pipeName(p int) string {
	if p == 1 {
		return "none"
	}
	return "-P " + strconv.Itoa(p)
}

// bench runs redis-benchmark once for one test and returns its requests/s and the
// server's CPU time per request.
func bench(bin string, t target, rw row, clients, size, keyspace, n int) (result, error) {
	args := []string{"-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "-d", strconv.Itoa(size),
		"-P", strconv.Itoa(rw.pipeline), "-t", rw.test, "--csv"}
	if keyspace > 0 {
		args = append(args, "-r", strconv.Itoa(keyspace))
	}
	if rw.transport == "unix" {
		args = append(args, "-s", t.sock)
	} else {
		host, port, _ := net.SplitHostPort(t.tcp)
		args = append(args, "-h", host, "-p", port)
	}
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cpu0, err := t.cpu()
	if err != nil {
		return result{}, fmt.Errorf("%s CPU time: %w", t.name, err)
	}
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s %v: %w: %s", bin, args, err, errb.String())
	}
	cpu1, err := t.cpu()
	if err != nil {
		return result{}, fmt.Errorf("%s CPU time: %w", t.name, err)
	}
	cpu := cpu1 - cpu0
	v, err := procs.ParseBenchmarkCSV(out.Bytes(), strings.ToUpper(rw.test))
	if err != nil {
		return result{}, fmt.Errorf("%w (stderr %q)", err, errb.String())
	}
	return result{rps: v, cpuPerReq: float64(cpu.Microseconds()) / float64(n)}, nil
}

func startCachee(dir, name string, loops int, maxmem int64) (target, func(), error) {
	st, err := store.Open(store.Config{MaxMemory: maxmem})
	if err != nil {
		return target{}, nil, err
	}
	srv := resp.New(st, resp.Config{EventLoops: loops, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return target{}, nil, err
	}
	sock := filepath.Join(dir, "cachee-"+name+".sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		return target{}, nil, err
	}
	for _, l := range []net.Listener{tl, ul} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go srv.ServeConn(c, nil)
			}
		}()
	}
	stop := func() {
		tl.Close()
		ul.Close()
		srv.Close()
		st.Close()
	}
	return target{name: "cachee-" + name, tcp: tl.Addr().String(), sock: sock, cpu: selfCPU}, stop, nil
}

// selfCPU is this process's CPU time (user and system).
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
