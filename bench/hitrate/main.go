// Command hitrate replays cache access traces through the cachee store's eviction
// policies (cachee-lfu and lru) and through otter v2 (W-TinyLFU) as the reference, and
// prints the hit rates side by side.
//
// With no -trace flag it replays every trace in the traces directory (by default
// ../shared/traces beside the module root) at the sizes its README suggests, plus
// synthetic Zipf traces. With -trace it replays the given files instead, at -sizes.
//
//	go run ./bench/hitrate                       # everything, Markdown tables
//	go run ./bench/hitrate -json                 # the same, as JSON
//	go run ./bench/hitrate -trace t.lirs.zst -sizes 100,1000 -policies lfu,otter
//
// Each replay is synchronous: for every access a read, and on a miss a write of the key;
// hit rate = hits / accesses. Replays of different (trace, size, policy) run in parallel,
// one goroutine each.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cachee/cachee/bench/internal/hitsim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hitrate:", err)
		}
		os.Exit(2)
	}
}

type options struct {
	tracesDir    string
	traceFiles   []string
	format       string
	sizes        []int
	policies     []string
	json         bool
	short        bool
	parallel     int
	runs         int
	zipf         []float64
	zipfKeys     int
	zipfAccesses int
	zipfSizes    []int
	seed         uint64
	storeSeed    uint64
	maintain     int
	recency      []string
	verbose      bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fl := flag.NewFlagSet("hitrate", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench/hitrate [flags]\n\n"+
			"Replays cache traces through cachee-lfu, lru and otter and prints hit rates.\n"+
			"Without -trace: every trace in -traces plus Zipf traces. With -trace: those files only.\n\n")
		fl.PrintDefaults()
	}
	fl.StringVar(&o.tracesDir, "traces", "", "directory of traces (default: ../shared/traces beside the module root)")
	fl.Func("trace", "replay this trace `file` (ARC or LIRS, plain, .gz, .zst or .xz) instead of the default set; repeatable", func(s string) error {
		o.traceFiles = append(o.traceFiles, s)
		return nil
	})
	fl.StringVar(&o.format, "format", formatAuto, "format of -trace files: auto, arc or lirs")
	sizes := fl.String("sizes", "", "cache sizes in entries, e.g. 100,250,1k: for -trace files (default: 0.5% to 10% of the distinct keys), or else for every trace in -traces (default: the sizes its README suggests)")
	policies := fl.String("policies", "lfu,lru,otter", "policies to replay: lfu, lru, otter")
	fl.BoolVar(&o.json, "json", false, "print JSON instead of Markdown")
	fl.BoolVar(&o.short, "short", false, "replay a small subset (for tests)")
	fl.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "replays to run at once")
	fl.IntVar(&o.runs, "runs", 1, "replay each case this many times and report the mean and the range (the caches hash with random seeds)")
	zipf := fl.String("zipf", "0.8,1.0,1.2", "Zipf exponents of the synthetic traces (empty: none); not with -trace")
	fl.IntVar(&o.zipfKeys, "zipf-keys", 100_000, "distinct keys of each Zipf trace")
	fl.IntVar(&o.zipfAccesses, "zipf-accesses", 1_000_000, "accesses of each Zipf trace")
	zipfSizes := fl.String("zipf-sizes", "500,1000,2500,5000,10000", "cache sizes for the Zipf traces")
	fl.Uint64Var(&o.seed, "seed", 1, "seed of the Zipf traces")
	fl.Uint64Var(&o.storeSeed, "store-seed", 0, "make the store's replays repeatable: run i hashes with seed `N`+i and runs the background loop's maintenance every -maintain-every accesses instead of on its timer (0: as a server does, random seeds and the timer)")
	fl.IntVar(&o.maintain, "maintain-every", hitsim.DefaultMaintainEvery, "with -store-seed: accesses between two maintenance runs, standing for the background loop's 100 ms (0: never)")
	recency := fl.String("recency", "", "trace names to count as recency-biased at every size (each case where lru >= otter counts anyway)")
	fl.BoolVar(&o.verbose, "v", false, "log each replay to stderr")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (trace files go after -trace)", fl.Args())
	}
	var err error
	switch o.format {
	case formatAuto, formatARC, formatLIRS:
	default:
		return nil, fmt.Errorf("-format %q: want auto, arc or lirs", o.format)
	}
	if o.sizes, err = parseInts(*sizes); err != nil {
		return nil, fmt.Errorf("-sizes: %w", err)
	}
	if o.zipfSizes, err = parseInts(*zipfSizes); err != nil {
		return nil, fmt.Errorf("-zipf-sizes: %w", err)
	}
	if o.policies, err = parsePolicies(*policies); err != nil {
		return nil, fmt.Errorf("-policies: %w", err)
	}
	for _, f := range strings.Split(*zipf, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		s, err := strconv.ParseFloat(f, 64)
		if err != nil || s < 0 {
			return nil, fmt.Errorf("-zipf: bad exponent %q", f)
		}
		o.zipf = append(o.zipf, s)
	}
	for _, n := range strings.Split(*recency, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.recency = append(o.recency, n)
		}
	}
	if o.parallel < 1 {
		o.parallel = 1
	}
	if o.runs < 1 {
		return nil, fmt.Errorf("-runs %d: want at least 1", o.runs)
	}
	if o.maintain < 0 {
		return nil, fmt.Errorf("-maintain-every %d: want 0 or more", o.maintain)
	}
	if o.zipfKeys < 1 || o.zipfAccesses < 1 {
		return nil, errors.New("-zipf-keys and -zipf-accesses must be positive")
	}
	return o, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		f = strings.ReplaceAll(f, "_", "")
		mult := 1
		if strings.HasSuffix(f, "k") || strings.HasSuffix(f, "K") {
			f, mult = f[:len(f)-1], 1000
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n*mult)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// shortSet is what -short replays from the traces directory, and at which sizes.
var shortSet = map[string][]int{
	"lirs/gli": {250, 1000},
	"lirs/ps":  {250, 1000},
}

// output is everything a run found; -json prints it as it is.
type output struct {
	TracesDir   string      `json:"traces_dir,omitempty"`
	TracesFound bool        `json:"traces_found,omitempty"` // false too with -trace
	Policies    []string    `json:"policies"`
	Traces      []traceInfo `json:"traces"`
	Results     []Result    `json:"results"`
	BelowOtter  []gap       `json:"lfu_below_otter"`
	BelowLRU    []gap       `json:"lfu_below_lru_recency"` // by more than 1 point, recency-biased cases
	Runs        int         `json:"runs"`
	Notes       []string    `json:"notes,omitempty"`
	Seconds     float64     `json:"seconds"`
}

type traceInfo struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	Format   string `json:"format"`
	Accesses int    `json:"accesses"`
	Unique   int    `json:"unique_keys"`
	Sizes    []int  `json:"sizes"`
}

type gap struct {
	Trace  string  `json:"trace"`
	Size   int     `json:"size"`
	LFU    float64 `json:"lfu"`
	Other  float64 `json:"other"` // otter or lru
	Points float64 `json:"points"`
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	out := &output{Policies: o.policies, Runs: o.runs}
	traces, err := loadTraces(o, out, stderr)
	if err != nil {
		return err
	}
	if len(traces) == 0 {
		return errors.New("nothing to replay")
	}
	out.Results = replayAll(o, traces, stderr)
	summarize(o, out)
	out.Seconds = time.Since(start).Seconds()
	if o.json {
		return writeJSON(stdout, out)
	}
	writeMarkdown(stdout, out)
	fmt.Fprintf(stderr, "hitrate: %d cases × %d runs in %.1fs\n", len(out.Results), o.runs, out.Seconds)
	return nil
}

func loadTraces(o *options, out *output, stderr io.Writer) ([]*Trace, error) {
	var traces []*Trace
	add := func(t *Trace) {
		traces = append(traces, t)
		out.Traces = append(out.Traces, traceInfo{Name: t.Name, Source: t.Source, Format: t.Format,
			Accesses: len(t.Keys), Unique: t.Unique, Sizes: t.Sizes})
		if o.verbose {
			fmt.Fprintf(stderr, "loaded %s: %d accesses, %d keys\n", t.Name, len(t.Keys), t.Unique)
		}
	}
	if len(o.traceFiles) > 0 {
		for _, path := range o.traceFiles {
			t, err := ReadTraceFile(path, o.format)
			if err != nil {
				return nil, err
			}
			t.Name = traceName(filepath.Base(path))
			t.Sizes = o.sizes
			if len(t.Sizes) == 0 {
				t.Sizes = relativeSizes(t.Unique)
			}
			add(t)
		}
		return traces, nil
	}

	dir := o.tracesDir
	if dir == "" {
		dir = defaultTracesDir()
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	out.TracesDir = dir
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		msg := fmt.Sprintf("traces directory %s not found: skipping the trace rows (give -traces DIR)", dir)
		out.Notes = append(out.Notes, msg)
		fmt.Fprintln(stderr, "hitrate:", msg)
	} else {
		out.TracesFound = true
		found, err := findTraces(dir)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(found))
		for name := range found {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			sizes := o.sizes
			if len(sizes) == 0 {
				sizes = knownSizes(name)
			}
			if o.short {
				if sizes = shortSet[name]; sizes == nil {
					continue
				}
			}
			t, err := ReadTraceFile(found[name], formatAuto)
			if err != nil {
				msg := fmt.Sprintf("skipping %s: %v", found[name], err)
				out.Notes = append(out.Notes, msg)
				fmt.Fprintln(stderr, "hitrate:", msg)
				continue
			}
			t.Name = name
			t.Sizes = sizes
			if len(t.Sizes) == 0 {
				t.Sizes = relativeSizes(t.Unique)
			}
			add(t)
		}
	}

	keys, accesses, sizes := o.zipfKeys, o.zipfAccesses, o.zipfSizes
	exps := o.zipf
	if o.short {
		keys, accesses, sizes = 10_000, 50_000, []int{100, 1000}
		exps = []float64{1.0}
	}
	for _, s := range exps {
		t, err := ZipfTrace(s, keys, accesses, o.seed)
		if err != nil {
			return nil, err
		}
		t.Sizes = sizes
		add(t)
	}
	return traces, nil
}

type job struct {
	trace  *Trace
	size   int
	policy string
	idx    int // of the case, in table order
	run    int
}

// replayAll runs every (trace, size, policy) replay o.runs times, o.parallel at a time,
// the longest first, and returns the results in table order.
func replayAll(o *options, traces []*Trace, stderr io.Writer) []Result {
	var jobs []job
	cases := 0
	for _, t := range traces {
		for _, size := range t.Sizes {
			for _, p := range o.policies {
				for run := range o.runs {
					jobs = append(jobs, job{trace: t, size: size, policy: p, idx: cases, run: run})
				}
				cases++
			}
		}
	}
	order := slices.Clone(jobs)
	slices.SortStableFunc(order, func(a, b job) int { return len(b.trace.Keys) - len(a.trace.Keys) })
	runs := make([][]Result, cases)
	for i := range runs {
		runs[i] = make([]Result, o.runs)
	}
	ch := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range min(o.parallel, len(jobs)) {
		wg.Go(func() {
			for j := range ch {
				var r Result
				if o.storeSeed != 0 {
					r = hitsim.ReplayRepeatable(j.policy, j.trace.Keys, j.trace.Unique, j.size,
						hitsim.Repeat{Seed: o.storeSeed + uint64(j.run), MaintainEvery: o.maintain})
				} else {
					r = replay(j.policy, j.trace.Keys, j.trace.Unique, j.size)
				}
				r.Trace = j.trace.Name
				runs[j.idx][j.run] = r
				if o.verbose || r.Err != "" || len(r.Anomalies) > 0 {
					mu.Lock()
					fmt.Fprintf(stderr, "%s @ %d %s: %.2f%% in %.2fs", r.Trace, r.Size, r.Policy, r.HitRate, r.Seconds)
					if r.Err != "" {
						fmt.Fprintf(stderr, " ERROR %s", r.Err)
					}
					for _, a := range r.Anomalies {
						fmt.Fprintf(stderr, "\n    %s", a)
					}
					fmt.Fprintln(stderr)
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range order {
		ch <- j
	}
	close(ch)
	wg.Wait()
	results := make([]Result, cases)
	for i, rs := range runs {
		results[i] = mergeRuns(rs)
	}
	return results
}
