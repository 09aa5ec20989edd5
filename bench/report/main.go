// Command report runs cachee's benchmarks side by side with redis-server, otter v2
// (W-TinyLFU) and LRU, in one run on this machine, and writes a Markdown report with
// PNG charts:
//
//  1. latency per call (p50/p99/p999) of a hot key, 100 B and 5 KiB values, through the
//     Go SDK's shared memory, gRPC on the Unix socket, RESP on the socket and on TCP,
//     against redis-server on TCP and on its socket;
//  2. throughput with 1, 8 and 50 clients, and with pipelining, on the same paths;
//  3. hit rate per trace (../shared/traces) and Zipf 0.8/1.0/1.2 across cache sizes for
//     cachee-lfu, lru, otter and redis-server's allkeys-lfu;
//  4. memory: bytes per entry at 1M entries, and process RSS against --max-memory after
//     writing three times the capacity;
//  5. L1/L2, when the binary has an L2 tier (`cachee --help` lists --l2).
//
// Every server is started by this run. The machine is shared and often loaded, so every
// timed figure is the median of several runs whose order alternates between the things
// compared (A B C, then C B A), ratios pair runs made back to back, and each section says
// the load average, the runs and their spread.
//
//	go build -o bin/cachee ./cmd/cachee && go run ./bench/report -cachee bin/cachee     # make bench
//	go run ./bench/report -cachee bin/cachee -smoke -out .tmp/bench-smoke               # make bench-smoke
//
// -smoke runs every section with tiny sizes and durations, then checks the structure of
// what it wrote (sections, tables, charts that decode); it never judges a timing.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cachee/cachee/bench/internal/hitsim"
	"github.com/cachee/cachee/bench/internal/procs"
)

// config holds every size and duration a run uses; full() and smoke() are the two sets.
type config struct {
	Cachee    string
	Out       string
	Docs      string
	TracesDir string
	Smoke     bool

	LatRuns, LatCalls, LatShmCalls int
	LatValues                      []int

	TpRuns     int
	TpDuration time.Duration // of each Go-client run
	TpN        map[string]int
	TpPipeline int

	HrRuns         int // runs of the in-process replays of traces up to HrRunsMax accesses
	HrRunsMax      int
	HrRedisMax     int // traces up to this many accesses are also replayed against redis-server
	HrRedisBatch   int // commands per pipelined write of the redis replay
	ZipfKeys       int
	ZipfAccesses   int
	ZipfSizes      []int
	TraceSizes     map[string][]int // in smoke: the only traces replayed, at these sizes
	HrParallel     int
	MemEntries     int
	RSSMaxMemory   int64
	RSSFactor      int
	L2Runs, L2Call int
}

func fullConfig() config {
	return config{
		LatRuns: 7, LatCalls: 20_000, LatShmCalls: 100_000, LatValues: []int{100, 5 << 10},
		TpRuns: 5, TpDuration: time.Second, TpPipeline: 16,
		TpN:    map[string]int{"c1": 20_000, "c8": 100_000, "c50": 100_000, "pipe": 500_000},
		HrRuns: 3, HrRunsMax: 5_000_000, HrRedisMax: 5_000_000, HrRedisBatch: 200,
		ZipfKeys: 100_000, ZipfAccesses: 1_000_000, ZipfSizes: []int{500, 1000, 2500, 5000, 10_000},
		HrParallel: 2,
		MemEntries: 1_000_000, RSSMaxMemory: 256 << 20, RSSFactor: 3,
		L2Runs: 5, L2Call: 2000,
	}
}

func smokeConfig() config {
	return config{
		Smoke:   true,
		LatRuns: 2, LatCalls: 300, LatShmCalls: 1000, LatValues: []int{100, 5 << 10},
		TpRuns: 2, TpDuration: 50 * time.Millisecond, TpPipeline: 4,
		TpN:    map[string]int{"c1": 300, "c8": 1000, "c50": 1000, "pipe": 2000},
		HrRuns: 2, HrRunsMax: 100_000, HrRedisMax: 100_000, HrRedisBatch: 50,
		ZipfKeys: 2000, ZipfAccesses: 20_000, ZipfSizes: []int{100, 400},
		TraceSizes: map[string][]int{"lirs/gli": {100, 250}},
		HrParallel: 2,
		MemEntries: 20_000, RSSMaxMemory: 8 << 20, RSSFactor: 3,
		L2Runs: 2, L2Call: 100,
	}
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench/report: ")
	var (
		cachee = flag.String("cachee", "bin/cachee", "cachee binary to measure")
		out    = flag.String("out", "", "directory to write the report and charts to (default bench/results/<date>)")
		docs   = flag.String("docs", "", "also write the report into this Markdown file between its report markers (docs/performance.md)")
		traces = flag.String("traces", "", "directory of traces (default ../shared/traces beside the module root)")
		smoke  = flag.Bool("smoke", false, "tiny sizes and durations, then check the output's structure")
		health = flag.String("serve-health", "", "internal: serve a bare grpc-go health server on this socket")
	)
	flag.Parse()
	if *health != "" {
		if err := serveHealth(*health); err != nil {
			log.Fatal(err)
		}
		return
	}
	cfg := fullConfig()
	if *smoke {
		cfg = smokeConfig()
	}
	cfg.Cachee, cfg.Docs, cfg.TracesDir = *cachee, *docs, *traces
	if cfg.TracesDir == "" {
		cfg.TracesDir = hitsim.DefaultTracesDir()
	}
	cfg.Out = *out
	if cfg.Out == "" {
		cfg.Out = filepath.Join("bench", "results", time.Now().UTC().Format("2006-01-02"))
	}
	if err := run(cfg, os.Stdout); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// bench is one run: its configuration and what it has found so far.
type bench struct {
	cfg     config
	machine procs.Machine
	tmp     string
	shmBase string
	results results // what the sizing section and raw/results.json use
	shared  *env    // the servers and clients sections 1 and 2 share
}

func run(cfg config, stdout io.Writer) error {
	start := time.Now()
	for _, tool := range []string{"redis-server", "redis-benchmark"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: `make deps` installs it (apt-get install redis-server redis-tools)", tool)
		}
	}
	abs, err := filepath.Abs(cfg.Cachee)
	if err != nil {
		return err
	}
	cfg.Cachee = abs
	if _, err := os.Stat(cfg.Cachee); err != nil {
		return fmt.Errorf("cachee binary: %w (make build)", err)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	// Charts of an earlier run on the same day would otherwise linger beside this report.
	old, _ := filepath.Glob(filepath.Join(cfg.Out, "*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	tmp, err := os.MkdirTemp("", "cachee-report-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Segments live on tmpfs, as in a pod's medium: Memory emptyDir, when there is one.
	shmBase := tmp
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if shmBase, err = os.MkdirTemp("/dev/shm", "cachee-report-"); err != nil {
			return err
		}
		defer os.RemoveAll(shmBase)
	}
	b := &bench{cfg: cfg, machine: procs.ReadMachine(), tmp: tmp, shmBase: shmBase}
	b.results.Started = start.UTC()
	load0 := procs.ReadLoadAvg()

	sections := []struct {
		id, title string
		fn        func(*section) error
	}{
		{"latency", "1. Latency per call (hot key)", b.latency},
		{"throughput", "2. Throughput", b.throughput},
		{"hitrate", "3. Hit rate", b.hitRate},
		{"memory", "4. Memory", b.memory},
		{"l2", "5. L1/L2", b.l2},
		{"sdks", "6. SDK paths", b.sdkPaths},
	}
	defer b.closeEnv()
	var body bytes.Buffer
	var failed []string
	for _, s := range sections {
		log.Printf("section %s", s.title)
		sec := newSection(s.id, s.title, b.machine)
		err := s.fn(sec)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", s.title, err))
			sec.failed(err)
			log.Printf("%s failed: %v", s.title, err)
		}
		sec.write(&body)
	}
	sizing := b.sizing()
	elapsed := time.Since(start)
	load1 := procs.ReadLoadAvg()
	b.results.Seconds = elapsed.Seconds()

	var rep bytes.Buffer
	b.writeHead(&rep, load0, load1, elapsed)
	rep.Write(sizing)
	rep.Write(b.grpcTargets())
	rep.Write(body.Bytes())
	if len(failed) > 0 {
		fmt.Fprintf(&rep, "## Failures\n\n")
		for _, f := range failed {
			fmt.Fprintf(&rep, "- %s\n", f)
		}
		fmt.Fprintln(&rep)
	}
	report := filepath.Join(cfg.Out, "report.md")
	if err := os.WriteFile(report, rep.Bytes(), 0o644); err != nil {
		return err
	}
	if err := b.writeRaw(); err != nil {
		return err
	}
	stdout.Write(rep.Bytes())
	log.Printf("wrote %s in %v (load average %s at the start, %s at the end)", report, elapsed.Round(time.Second), load0, load1)
	if cfg.Docs != "" {
		if err := writeDocs(cfg.Docs, cfg.Out, rep.Bytes()); err != nil {
			return err
		}
		log.Printf("updated %s", cfg.Docs)
	}
	var errs []error
	if len(failed) > 0 {
		errs = append(errs, fmt.Errorf("%d section(s) failed: %s", len(failed), strings.Join(failed, "; ")))
	}
	if cfg.Smoke {
		if err := checkReport(cfg.Out); err != nil {
			errs = append(errs, fmt.Errorf("the report's structure: %w", err))
		} else {
			log.Printf("smoke: the report's structure checks out")
		}
	}
	return errors.Join(errs...)
}

func (b *bench) writeHead(w io.Writer, load0, load1 procs.LoadAvg, elapsed time.Duration) {
	m := b.machine
	mode := "full run (`make bench`)"
	if b.cfg.Smoke {
		mode = "smoke run (`make bench-smoke`): tiny sizes and durations, the figures mean nothing"
	}
	fmt.Fprintf(w, "# cachee benchmarks, %s\n\n", b.results.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "A %s. Every server was started by this run, on this machine:\n\n", mode)
	fmt.Fprintf(w, "- machine: %d CPUs (`nproc`), %s, %s RAM, Linux %s\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	fmt.Fprintf(w, "- load average (1, 5, 15 min): %s at the start, %s at the end; the machine is shared with other work, so every timed figure is a median of alternating runs, and each section gives its own load and spread\n", load0, load1)
	fmt.Fprintf(w, "- cachee: `%s` (%s), built with %s\n", relPath(b.cfg.Cachee), gitDescribe(), m.Go)
	fmt.Fprintf(w, "- redis-server %s, redis-benchmark from the same package; otter v2 (W-TinyLFU) as the hit-rate reference\n", procs.RedisVersion())
	fmt.Fprintf(w, "- the whole run took %v\n\n", elapsed.Round(time.Second))
}

// gitDescribe names the commit the binary was presumably built from.
func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "commit unknown"
	}
	return "commit " + strings.TrimSpace(string(out))
}

// relPath shows p relative to the working directory when it is inside it.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
