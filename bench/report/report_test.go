package main

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/bench/internal/hitsim"
	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/respc"
	"github.com/cachee/cachee/bench/internal/stats"
)

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtDur(0), "-"},
		{fmtDur(61 * time.Nanosecond), "61 ns"},
		{fmtDur(12345 * time.Nanosecond), "12.3 µs"},
		{fmtDur(2500 * time.Microsecond), "2.5 ms"},
		{fmtRate(91234), "91.2k"},
		{fmtRate(12_300_000), "12.3M"},
		{fmtRate(0), "-"},
		{fmtRatio(0.5), "0.50×"},
		{fmtRatio(0.0123), "0.012×"},
		{fmtRatio(0.000075), "0.000075×"},
		{fmtRatio(0.05), "0.050×"},
		{fmtBytes(3 << 20), "3.0 MiB"},
		{thousands(1234567), "1,234,567"},
		{thousands(999), "999"},
		{sizeName(100), "100 B"},
		{sizeName(5 << 10), "5 KiB"},
		{ordinal(11), "11th"},
		{ordinal(22), "22nd"},
		{ordinal(1), "single"},
		{string(redisKey(nil, 0xabc)), "0000000000000abc"},
		{string(memKey("key:")(nil, 42)), "key:000000000042"},
		{mb(256 << 20), "256mb"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// p999 of n samples is the k-th slowest: 11th of 10,000, the slowest of 300.
	for n, want := range map[int]int{10_000: 9990, 300: 300, 1000: 999} {
		if got := p999Rank(n); got != want {
			t.Errorf("p999Rank(%d) = %d, want %d", n, got, want)
		}
	}
	for size, want := range map[int]int{100: 4096, 250: 2097, 500: 1048, 1000: 1024, 100_000: 1024} {
		if got := redisValueSize(size); got != want {
			t.Errorf("redisValueSize(%d) = %d, want %d", size, got, want)
		}
	}
}

// TestSummarizeRuns checks the medians and the pairing of ratios on hand-made runs.
func TestSummarizeRuns(t *testing.T) {
	q := func(p50, p99, p999 time.Duration) stats.Quantiles {
		return stats.Quantiles{P50: p50, P99: p99, P999: p999, N: 100}
	}
	a := []stats.Quantiles{q(10, 20, 30), q(30, 60, 90), q(20, 40, 60)}
	base := []stats.Quantiles{q(10, 10, 10), q(10, 10, 10), q(40, 40, 40)}
	r := summarizeRuns(a, base)
	// Per-run p50 ratios 1, 3, 0.5: median 1, not 20/10.
	if r.P50 != 20 || r.P99 != 40 || r.P999 != 60 || r.RatioP50 != 1 || r.Runs != 3 || r.Calls != 100 || len(r.RunP50s) != 3 {
		t.Errorf("%+v", r)
	}
}

func TestMeasureRunsOrder(t *testing.T) {
	var order []string
	call := map[string]func() error{}
	for _, n := range []string{"a", "b", "c"} {
		call[n] = func() error {
			if len(order) == 0 || order[len(order)-1] != n {
				order = append(order, n)
			}
			return nil
		}
	}
	qs, err := measureRuns([]string{"a", "b", "c"}, 3, func(string) int { return 20 }, call)
	if err != nil {
		t.Fatal(err)
	}
	// Warm-up and timed calls of one target run back to back, and the order reverses run
	// by run: a b c | c b a | a b c, which the log above records without repeats.
	if got := strings.Join(order, ""); got != "abcbabc" {
		t.Errorf("order %q, want abcbabc (ABBA alternation)", got)
	}
	if len(qs["a"]) != 3 || qs["a"][0].N != 20 {
		t.Errorf("%+v", qs["a"])
	}
}

func writePNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, image.NewRGBA(image.Rect(0, 0, 300, 200))); err != nil {
		t.Fatal(err)
	}
}

// goodReport writes a report whose structure checkReport accepts.
func goodReport(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	head := func(h string) {
		b.WriteString(h + "\n\n- **Machine**: 2 CPUs, X; load average (1 min) 1.00 at the start\n- **Command**: x\n- **Runs**: 3\n- **Spread**: y\n\n")
	}
	tbl := func(rows, cols int) {
		b.WriteString("|" + strings.Repeat(" h |", cols) + "\n|" + strings.Repeat("---|", cols) + "\n")
		for range rows {
			b.WriteString("|" + strings.Repeat(" v |", cols) + "\n")
		}
		b.WriteString("\n")
	}
	img := func(f string) {
		writePNG(t, filepath.Join(dir, f))
		b.WriteString("![c](" + f + ")\n\n")
	}
	b.WriteString("# cachee benchmarks, today\n\n## What this means for a pod\n\n## gRPC targets\n\n")
	head("## 1. Latency per call (hot key)")
	for _, f := range []string{"latency-100B.png", "latency-5KiB.png"} {
		b.WriteString("### v\n\n")
		tbl(len(pathOrder), 8)
		img(f)
	}
	head("## 2. Throughput")
	tbl(len(pathOrder), 5)
	tbl(len(pathOrder), 5)
	tbl(len(pathOrder), 5)
	img("throughput.png")
	head("## 3. Hit rate")
	tbl(3, 6)
	for _, n := range []string{"zipf-0.8", "zipf-1.0", "zipf-1.2"} {
		b.WriteString("### " + n + "\n\n")
		tbl(2, 7)
		b.WriteString(policyRedis + "\n\n")
		img("hitrate-" + n + ".png")
	}
	head("## 4. Memory")
	tbl(6, 3)
	img("memory.png")
	tbl(11, 3)
	img("rss.png")
	head("## 5. L1/L2")
	b.WriteString(l2NotMeasured + " (x).\n")
	head("## 6. SDK paths")
	tbl(3*len(sdkRunners(true)), 9)
	return b.String()
}

func TestCheckReport(t *testing.T) {
	dir := t.TempDir()
	good := goodReport(t, dir)
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(good)
	if err := checkReport(dir); err != nil {
		t.Fatalf("a good report fails: %v", err)
	}
	for name, bad := range map[string]string{
		"no throughput section": strings.Replace(good, "## 2. Throughput", "## 2. Speed", 1),
		"no gRPC targets":       strings.Replace(good, "## gRPC targets", "## gRPC", 1),
		"a failed section":      strings.Replace(good, "## 4. Memory\n\n", "## 4. Memory\n\n**This section failed**: x\n\n", 1),
		"no runs line":          strings.Replace(good, "- **Runs**: 3\n", "", 1),
		"a missing chart":       strings.Replace(good, "![c](rss.png)", "![c](gone.png)", 1),
		"a hit-rate chart gone": strings.Replace(good, "![c](hitrate-zipf-1.2.png)\n", "", 1),
		"neither L2 nor table":  strings.Replace(good, l2NotMeasured, "maybe", 1),
		"a short latency table": strings.Replace(good, "| v | v | v | v | v | v | v | v |\n\n", "\n", 1),
		"no SDK paths table":    strings.Replace(good, "| v | v | v | v | v | v | v | v | v |\n\n", "\n", 1),
	} {
		write(bad)
		if err := checkReport(dir); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A chart that is not a PNG.
	write(good)
	os.WriteFile(filepath.Join(dir, "memory.png"), []byte("not a png"), 0o644)
	if err := checkReport(dir); err == nil || !strings.Contains(err.Error(), "memory.png") {
		t.Errorf("a broken PNG: %v", err)
	}
}

func TestWriteDocs(t *testing.T) {
	dir := t.TempDir()
	docs := filepath.Join(dir, "docs", "performance.md")
	os.MkdirAll(filepath.Dir(docs), 0o755)
	os.WriteFile(docs, []byte("# Performance\n\nintro\n\n"+docsBegin+"\nold\n"+docsEnd+"\n\nafter\n"), 0o644)
	out := filepath.Join(dir, "bench", "results", "2026-01-02")
	if err := writeDocs(docs, out, []byte("# report\n\n## 1. x\n\n![c](latency-100B.png)\n")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(docs)
	for _, want := range []string{"intro", "## report", "### 1. x", "![c](../bench/results/2026-01-02/latency-100B.png)", "after"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("docs lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "old") {
		t.Errorf("the old report is still there:\n%s", got)
	}
}

func needRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CACHEE_REQUIRE_TOOLS") != "" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not found")
	}
	return t.TempDir()
}

// TestRedisReplay replays a loop of 10 keys into a cache of 20: every access after the
// first pass hits, whatever the policy, so the count is exact.
func TestRedisReplay(t *testing.T) {
	dir := needRedis(t)
	srv, err := procs.StartRedis(dir, "lfu", "--maxmemory-policy", "allkeys-lfu")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := respc.Dial("unix", srv.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var keys []uint64
	for range 50 {
		for k := range uint64(10) {
			keys = append(keys, k)
		}
	}
	tr := &hitsim.Trace{Name: "loop10", Keys: keys, Unique: 10}
	r, err := replayRedisOne(c, tr, 20, 7)
	if err != nil {
		t.Fatal(err)
	}
	if r.Median != 100*float64(500-10)/500 || r.Entries != 10 || r.MaxMem <= 0 || len(r.Problems) > 0 {
		t.Errorf("%+v", r)
	}
}

// TestMeasureL2 runs the L2 section's measurement against redis-server standing in for
// both cachee and L2, so that the code path is exercised while no cachee build has an
// L2 tier.
func TestMeasureL2(t *testing.T) {
	dir := needRedis(t)
	srv, err := procs.StartRedis(dir, "l2")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	opts := func(network, addr string) *redis.Options {
		return &redis.Options{Network: network, Addr: addr, PoolSize: 1, MaxRetries: -1, Protocol: 2}
	}
	a, b := redis.NewClient(opts("unix", srv.Socket)), redis.NewClient(opts("tcp", srv.Addr))
	defer a.Close()
	defer b.Close()
	rs, err := measureL2(context.Background(), a, b, "unix", srv.Socket, 2, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(l2Order) {
		t.Fatalf("%d results", len(rs))
	}
	for i, r := range rs {
		if r.Path != l2Order[i] || r.Runs != 2 || r.Calls != 50 || len(r.RunP50s) != 2 {
			t.Errorf("%+v", r)
		}
	}
}
