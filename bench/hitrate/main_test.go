package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(args, &out, &errb); err != nil {
		t.Fatalf("run %q: %v\nstderr:\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

func TestDefaultTracesDir(t *testing.T) {
	root := moduleRoot()
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %q has no go.mod", root)
	}
	if got, want := defaultTracesDir(), filepath.Join(filepath.Dir(root), "shared", "traces"); got != want {
		t.Errorf("default traces dir %q, want %q", got, want)
	}
}

// TestShortRun runs the whole program in short mode, as Markdown and as JSON.
func TestShortRun(t *testing.T) {
	out, _ := runArgs(t, "-short")
	for _, want := range []string{"## zipf-1.0", "| size | cachee-lfu | lru | otter | lfu - otter | lfu - lru |", "Summary: cachee-lfu below otter in "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	haveTraces := false
	if st, err := os.Stat(defaultTracesDir()); err == nil && st.IsDir() {
		haveTraces = true
		if !strings.Contains(out, "## lirs/gli") {
			t.Errorf("traces present but no lirs/gli table:\n%s", out)
		}
	}

	js, _ := runArgs(t, "-short", "-json", "-runs", "2")
	var o output
	if err := json.Unmarshal([]byte(js), &o); err != nil {
		t.Fatalf("JSON: %v\n%s", err, js)
	}
	if o.TracesFound != haveTraces {
		t.Errorf("traces_found %v, want %v", o.TracesFound, haveTraces)
	}
	cases := 0
	for _, tr := range o.Traces {
		cases += len(tr.Sizes) * len(allPolicies)
	}
	if len(o.Results) != cases || cases == 0 {
		t.Fatalf("%d results for %d cases", len(o.Results), cases)
	}
	for _, r := range o.Results {
		if r.Err != "" || len(r.Anomalies) > 0 || r.Runs != 2 || r.Accesses == 0 {
			t.Errorf("%s @ %d %s: runs %d, error %q, anomalies %q", r.Trace, r.Size, r.Policy, r.Runs, r.Err, r.Anomalies)
		}
		if r.HitRate < r.MinRate || r.HitRate > r.MaxRate || r.HitRate <= 0 || r.HitRate >= 100 {
			t.Errorf("%s @ %d %s: hit rate %v outside [%v, %v]", r.Trace, r.Size, r.Policy, r.HitRate, r.MinRate, r.MaxRate)
		}
	}
	if o.BelowOtter == nil || o.BelowLRU == nil {
		t.Error("summary lists missing from JSON")
	}
}

func TestMissingTracesDir(t *testing.T) {
	out, errs := runArgs(t, "-short", "-traces", filepath.Join(t.TempDir(), "nothing-here"))
	if !strings.Contains(errs, "not found: skipping the trace rows") || !strings.Contains(out, "not found") {
		t.Errorf("missing traces dir not reported:\nstdout:\n%s\nstderr:\n%s", out, errs)
	}
	if strings.Contains(out, "## lirs/") || !strings.Contains(out, "## zipf-1.0") {
		t.Errorf("want only the Zipf tables:\n%s", out)
	}
}

func TestTraceFlag(t *testing.T) {
	dir := t.TempDir()
	// Keys 0..9 in a loop, twice, as zstd-compressed LIRS, and as ARC runs in xz.
	var lirs, arc strings.Builder
	for range 20 {
		for k := range uint64(10) {
			lirs.WriteString(itoa(k) + "\n")
		}
		arc.WriteString("0 10 0 0\n")
	}
	lpath := filepath.Join(dir, "loop.lirs.zst")
	apath := filepath.Join(dir, "loop.arc")
	if err := os.WriteFile(lpath, compressions["zstd"](t, []byte(lirs.String())), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(apath, compressions["xz"](t, []byte(arc.String())), 0o600); err != nil {
		t.Fatal(err)
	}
	js, _ := runArgs(t, "-json", "-trace", lpath, "-trace", apath, "-sizes", "5,10", "-policies", "lru,otter")
	var o output
	if err := json.Unmarshal([]byte(js), &o); err != nil {
		t.Fatal(err)
	}
	if len(o.Traces) != 2 || len(o.Results) != 2*2*2 {
		t.Fatalf("%d traces, %d results", len(o.Traces), len(o.Results))
	}
	for _, r := range o.Results {
		// A loop of 10 keys: LRU with 5 entries never hits; with 10 every access after
		// the first pass hits (190 of 200).
		want := map[int]uint64{5: 0, 10: 190}[r.Size]
		if r.Policy == polLRU && r.Hits != want {
			t.Errorf("%s lru @ %d: %d hits, want %d", r.Trace, r.Size, r.Hits, want)
		}
		if r.Policy == polOtter && r.Size == 10 && r.Hits != 190 {
			t.Errorf("%s otter @ 10: %d hits, want 190", r.Trace, r.Hits)
		}
	}
	if o.Traces[0].Format != formatLIRS || o.Traces[1].Format != formatARC {
		t.Errorf("formats %s, %s", o.Traces[0].Format, o.Traces[1].Format)
	}

	// Forcing the wrong format is an error.
	var out, errb bytes.Buffer
	if err := run([]string{"-trace", apath, "-format", "lirs"}, &out, &errb); err == nil {
		t.Error("ARC file forced as LIRS: no error")
	}
}

// TestStoreSeed: with -store-seed the store's replays give the same hits every time,
// with the seed of each run its own, while the maintenance runs every few accesses.
func TestStoreSeed(t *testing.T) {
	args := []string{"-short", "-json", "-policies", "lfu", "-runs", "2", "-store-seed", "3", "-maintain-every", "997"}
	results := func() []Result {
		js, _ := runArgs(t, args...)
		var o output
		if err := json.Unmarshal([]byte(js), &o); err != nil {
			t.Fatalf("JSON: %v\n%s", err, js)
		}
		return o.Results
	}
	a, b := results(), results()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d results", len(a), len(b))
	}
	for i := range a {
		if a[i].Hits != b[i].Hits || a[i].MinRate != b[i].MinRate || a[i].MaxRate != b[i].MaxRate {
			t.Errorf("%s @ %d: %d hits (%.2f-%.2f), then %d (%.2f-%.2f)", a[i].Trace, a[i].Size,
				a[i].Hits, a[i].MinRate, a[i].MaxRate, b[i].Hits, b[i].MinRate, b[i].MaxRate)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-policies", "lfu,fifo"},
		{"-format", "csv"},
		{"-sizes", "10,x"},
		{"-runs", "0"},
		{"-zipf", "-1"},
		{"-store-seed", "1", "-maintain-every", "-5"},
		{"stray"},
	} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestSummary(t *testing.T) {
	o := &options{policies: allPolicies, recency: []string{"r"}}
	res := func(trace string, size int, pol string, hits uint64) Result {
		return Result{Trace: trace, Size: size, Policy: pol, Runs: 1, Accesses: 100, Hits: hits, HitRate: float64(hits)}
	}
	out := &output{
		Policies: allPolicies,
		Traces:   []traceInfo{{Name: "f", Sizes: []int{1, 2}}, {Name: "r", Sizes: []int{1}}},
		Results: []Result{
			// f@1: frequency-biased (otter above lru); lfu below otter and 5 below lru.
			res("f", 1, polLFU, 40), res("f", 1, polLRU, 45), res("f", 1, polOtter, 50),
			// f@2: recency-biased by the data (lru >= otter); lfu 2 below lru, above otter.
			res("f", 2, polLFU, 58), res("f", 2, polLRU, 60), res("f", 2, polOtter, 57),
			// r@1: recency-biased by -recency; lfu 1.5 below lru.
			res("r", 1, polLFU, 30), res("r", 1, polLRU, 31), res("r", 1, polOtter, 30),
		},
	}
	out.Results[7].HitRate = 31.5 // r@1 lru: 1.5 points above lfu
	summarize(o, out)
	if len(out.BelowOtter) != 1 || out.BelowOtter[0].Trace != "f" || out.BelowOtter[0].Size != 1 {
		t.Errorf("below otter: %+v", out.BelowOtter)
	}
	if len(out.BelowLRU) != 2 || out.BelowLRU[0].Size != 2 || out.BelowLRU[1].Trace != "r" {
		t.Errorf("below lru: %+v", out.BelowLRU)
	}
	line := summaryLine(out)
	for _, want := range []string{"below otter in 1 of 3 cases: f@1 (-10.00)", "in 2: f@2 (-2.00), r@1 (-1.50)"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary %q lacks %q", line, want)
		}
	}
}
