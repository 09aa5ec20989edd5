package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cachee/cachee/bench/internal/hitsim"
	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/respc"
	"github.com/cachee/cachee/bench/internal/stats"
)

// policyRedis names Redis's allkeys-lfu in the tables.
const policyRedis = "redis allkeys-lfu"

var hitPolicies = []string{hitsim.PolicyLFU, hitsim.PolicyLRU, hitsim.PolicyOtter, policyRedis}

// hitRateBefore is cachee-lfu's figures before its window adapted by simulation, shown
// beside today's: measured once with the policy of that commit, since the code is gone.
//
//go:embed hitrate_before.json
var hitRateBeforeJSON []byte

type hitRateBefore struct {
	Policy   string `json:"policy"`
	Command  string `json:"command"`
	Measured string `json:"measured"`
	Results  []struct {
		Trace          string
		Size           int
		Mean, Min, Max float64
	} `json:"results"`
}

// before returns the recorded figure for a trace at a size.
func (h *hitRateBefore) before(trace string, size int) (mean, lo, hi float64, ok bool) {
	for _, r := range h.Results {
		if r.Trace == trace && r.Size == size {
			return r.Mean, r.Min, r.Max, true
		}
	}
	return 0, 0, 0, false
}

func loadHitRateBefore() (*hitRateBefore, error) {
	var h hitRateBefore
	if err := json.Unmarshal(hitRateBeforeJSON, &h); err != nil {
		return nil, fmt.Errorf("hitrate_before.json: %w", err)
	}
	return &h, nil
}

// hitRateResult is one trace at one size under one policy.
type hitRateResult struct {
	Trace     string    `json:"trace"`
	Size      int       `json:"size"`
	Policy    string    `json:"policy"`
	Rates     []float64 `json:"rates"` // hit %, one per run
	Median    float64   `json:"median"`
	Entries   int       `json:"entries_at_end"`
	MaxMem    int64     `json:"redis_maxmemory,omitempty"`
	PerKey    float64   `json:"redis_bytes_per_key,omitempty"`
	Evicted   int64     `json:"redis_evicted,omitempty"`
	Held      []int64   `json:"redis_held,omitempty"` // DBSIZE sampled during the replay, once full
	ValueSize int       `json:"redis_value_size,omitempty"`
	Passes    int       `json:"redis_passes,omitempty"` // replays run: more than 1 when the first held too few or too many keys
	Problems  []string  `json:"problems,omitempty"`
}

// loadHitTraces reads the traces the section replays: every trace in the traces
// directory at the sizes its README suggests (in smoke mode only cfg.TraceSizes), then
// the Zipf traces.
func (b *bench) loadHitTraces(s *section) ([]*hitsim.Trace, error) {
	cfg := b.cfg
	var traces []*hitsim.Trace
	if st, err := os.Stat(cfg.TracesDir); err != nil || !st.IsDir() {
		s.printf("The traces directory %s was not found: only the Zipf traces are replayed.\n\n", cfg.TracesDir)
	} else {
		found, err := hitsim.FindTraces(cfg.TracesDir)
		if err != nil {
			return nil, err
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range found {
				if !yield(n) {
					return
				}
			}
		})
		for _, name := range names {
			sizes := hitsim.KnownSizes(name)
			if cfg.TraceSizes != nil {
				if sizes = cfg.TraceSizes[name]; sizes == nil {
					continue
				}
			}
			t, err := hitsim.ReadTraceFile(found[name], hitsim.FormatAuto)
			if err != nil {
				return nil, err
			}
			t.Name = name
			if sizes == nil {
				sizes = hitsim.RelativeSizes(t.Unique)
			}
			t.Sizes = sizes
			traces = append(traces, t)
		}
	}
	for _, z := range []float64{0.8, 1.0, 1.2} {
		t, err := hitsim.ZipfTrace(z, cfg.ZipfKeys, cfg.ZipfAccesses, 1)
		if err != nil {
			return nil, err
		}
		t.Sizes = cfg.ZipfSizes
		traces = append(traces, t)
	}
	return traces, nil
}

func (b *bench) hitRate(s *section) error {
	cfg := b.cfg
	traces, err := b.loadHitTraces(s)
	if err != nil {
		return err
	}
	s.command(fmt.Sprintf("`go run ./bench/report` (section 3): cachee-lfu, lru and otter replayed in-process by `bench/internal/hitsim`, as `go run ./bench/hitrate` does, %d replays at a time", cfg.HrParallel))
	s.command(fmt.Sprintf("redis allkeys-lfu: a redis-server started with `--maxmemory-policy allkeys-lfu` (lfu-log-factor 10, lfu-decay-time 1, maxmemory-samples 5: the defaults), each access sent as `SET key value NX GET`, pipelined %d commands per write", cfg.HrRedisBatch))
	s.runs = fmt.Sprintf("in-process replays: %d per case for traces of up to %s accesses, 1 above that; redis-server: 1 per case. Figures are medians of the runs", cfg.HrRuns, thousands(cfg.HrRunsMax))
	s.spread = "where a case ran more than once, its cell gives the lowest and highest hit rate in brackets"
	s.printf("Each replay is synchronous: for every access a read, and on a miss a write of the key (16-byte keys; in the store and otter the value is the key itself, in redis-server 1 to 4 KiB, see below); hit rate = hits / accesses, in percent. The store replays with `MaxEntries` set to the size; otter with `MaximumSize`. Both hash with random seeds, and the store's cachee-lfu adapts in a background task every 100 ms, so its figures vary from run to run and with the machine's speed.\n\n")
	s.printf("**How redis-server is sized.** Redis bounds memory, not entries, and its `used_memory` also counts the connection's buffers, which swing by tens of KiB as pipelined batches come and go: with 100-byte entries that is hundreds of keys, more than the smaller caches hold. So the redis-server replay stores values of 512 KiB ÷ size, between 1 and 4 KiB (the value size changes nothing else about LFU), and for each size N the run looks for the `maxmemory` at which the server holds N keys while it evicts: it sets a guess, writes 2N new keys through the same connection and pipelining the replay uses, then N more each read back once (so that half the replies carry a value, as hits do), sampling `DBSIZE` after every batch of those, and corrects the limit by the mean keys missing or over times the bytes per key (`MEMORY USAGE` of a probe key, plus a bucket pointer), until the mean is within 2%%. Then it empties the server and replays, sampling `DBSIZE` about 200 times. The replay's mix of hits and misses loads the buffers differently from the calibration, so a replay whose mean is more than 1%% above N or 3%% below it is corrected the same way and run again, at most twice; the table gives the keys held once full (mean, and lowest–highest) of the replay reported, which is redis-server's real cache size in that row, and marks the rows replayed more than once with ² or ³. `SET key value NX GET` is GET-then-SET-on-a-miss in one command: it returns the old value (a hit, which counts as an access for LFU) or stores the value (a miss), so the commands can be pipelined while each access still completes, in order, before the next; a plain GET followed by a SET would touch a hit key's LFU counter twice.\n\n")

	prev, err := loadHitRateBefore()
	if err != nil {
		return err
	}
	s.printf("**Before.** Each cachee-lfu cell also gives, after \"before\", the figure of %s, replayed by `%s` (%s) and recorded in `bench/report/hitrate_before.json`; the summary's last column is today's cachee-lfu minus that.\n\n", prev.Policy, prev.Command, prev.Measured)

	results := b.replayInProcess(traces)
	redisNote := ""
	var redisTraces []*hitsim.Trace
	for _, t := range traces {
		if len(t.Keys) <= cfg.HrRedisMax {
			redisTraces = append(redisTraces, t)
		} else {
			redisNote += fmt.Sprintf("%s (%s accesses at %d sizes), ", t.Name, thousands(len(t.Keys)), len(t.Sizes))
		}
	}
	if redisNote != "" {
		s.printf("Not replayed against redis-server, to keep `make bench` within its time bound: %s over %s accesses.\n\n", strings.TrimSuffix(redisNote, ", "), thousands(cfg.HrRedisMax))
	}
	rr, err := b.replayRedis(redisTraces)
	if err != nil {
		return err
	}
	results = append(results, rr...)
	b.results.HitRates = results

	byCase := map[string]map[int]map[string]hitRateResult{}
	for _, r := range results {
		if byCase[r.Trace] == nil {
			byCase[r.Trace] = map[int]map[string]hitRateResult{}
		}
		if byCase[r.Trace][r.Size] == nil {
			byCase[r.Trace][r.Size] = map[string]hitRateResult{}
		}
		byCase[r.Trace][r.Size][r.Policy] = r
	}
	// A summary first: mean gaps over each trace's sizes.
	var sum [][]string
	for _, t := range traces {
		var dOtter, dLRU, dRedis, dBefore []float64
		for _, size := range t.Sizes {
			c := byCase[t.Name][size]
			lfu := c[hitsim.PolicyLFU].Median
			dOtter = append(dOtter, lfu-c[hitsim.PolicyOtter].Median)
			dLRU = append(dLRU, lfu-c[hitsim.PolicyLRU].Median)
			if r, ok := c[policyRedis]; ok && !redisOversized(t, size, r) {
				dRedis = append(dRedis, lfu-r.Median)
			}
			if m, _, _, ok := prev.before(t.Name, size); ok {
				dBefore = append(dBefore, lfu-m)
			}
		}
		sum = append(sum, []string{t.Name, thousands(len(t.Keys)), strconv.Itoa(len(t.Sizes)),
			points(mean(dOtter)), points(mean(dLRU)), points(mean(dRedis)), points(mean(dBefore))})
	}
	s.printf("Summary: cachee-lfu's hit rate minus each other policy's, in percentage points, averaged over each trace's sizes (positive: cachee-lfu hits more); rows where redis-server held over 1%% more keys than the size are left out of its column.\n\n")
	table(&s.body, []string{"trace", "accesses", "sizes", "cachee-lfu − otter", "cachee-lfu − lru", "cachee-lfu − redis allkeys-lfu", "cachee-lfu − before"}, "lrrrrrr", sum)

	for _, t := range traces {
		s.printf("### %s\n\n%s, %s accesses, %s distinct keys (%s).\n\n", t.Name, strings.ToUpper(t.Format),
			thousands(len(t.Keys)), thousands(t.Unique), traceSource(t, cfg.TracesDir))
		var rows [][]string
		var problems []string
		for _, size := range t.Sizes {
			c := byCase[t.Name][size]
			row := []string{thousands(size)}
			for _, p := range hitPolicies {
				r, ok := c[p]
				if !ok {
					row = append(row, "-")
					continue
				}
				cell := hitCell(r)
				if m, lo, hi, ok := prev.before(t.Name, size); ok && p == hitsim.PolicyLFU {
					cell += fmt.Sprintf("; before %.2f (%.2f–%.2f)", m, lo, hi)
				}
				row = append(row, cell)
				for _, pr := range r.Problems {
					problems = append(problems, fmt.Sprintf("%s @ %d: %s", p, size, pr))
				}
			}
			if r, ok := c[policyRedis]; ok {
				h := heldCell(r.Held)
				h += map[int]string{2: " ²", 3: " ³"}[r.Passes]
				row = append(row, h, fmt.Sprintf("%s (%s values)", fmtBytes(r.MaxMem), sizeName(r.ValueSize)))
			} else {
				row = append(row, "-", "-")
			}
			rows = append(rows, row)
		}
		table(&s.body, []string{"size", "cachee-lfu %", "lru %", "otter %", "redis allkeys-lfu %", "redis keys held: mean (min–max)", "redis maxmemory"}, "rrrrrrr", rows)
		for _, size := range t.Sizes {
			if r, ok := byCase[t.Name][size][policyRedis]; ok && redisOversized(t, size, r) {
				problems = append(problems, fmt.Sprintf("%s @ %d: redis-server held %.0f keys on average, more than the size: its hit rate in this row had more room than the others'", policyRedis, size, mean(r.Held)))
			}
		}
		for _, p := range problems {
			s.printf("- (!) %s\n", p)
		}
		if len(problems) > 0 {
			s.printf("\n")
		}
		file := "hitrate-" + strings.NewReplacer("/", "-", ".", "_").Replace(t.Name) + ".png"
		if err := hitRateChart(filepath.Join(cfg.Out, file), t, byCase[t.Name]); err != nil {
			return err
		}
		s.chart("hit rate, "+t.Name, file)
	}
	if _, err := os.Stat(cfg.TracesDir); err == nil {
		s.printf("The ARC traces are from N. Megiddo and D. S. Modha, \"ARC: A Self-Tuning, Low Overhead Replacement Cache\", USENIX FAST 2003; the LIRS traces from S. Jiang and X. Zhang, \"LIRS: An Efficient Low Inter-reference Recency Set Replacement Policy to Improve Buffer Cache Performance\", SIGMETRICS 2002.\n\n")
	}
	return nil
}

func traceSource(t *hitsim.Trace, dir string) string {
	if t.Format == "zipf" {
		return t.Source
	}
	if r, err := filepath.Rel(filepath.Dir(dir), t.Source); err == nil {
		return "../" + filepath.ToSlash(r)
	}
	return t.Source
}

func hitCell(r hitRateResult) string {
	if len(r.Rates) == 0 {
		return "error"
	}
	c := fmt.Sprintf("%.2f", r.Median)
	if len(r.Rates) > 1 {
		c += fmt.Sprintf(" (%.2f–%.2f)", slices.Min(r.Rates), slices.Max(r.Rates))
	}
	if len(r.Problems) > 0 {
		c += " (!)"
	}
	return c
}

// redisOversized tells a redis-server row whose server held over 1% more keys than the
// size, on a trace with more keys than that: its hit rate is not comparable.
func redisOversized(t *hitsim.Trace, size int, r hitRateResult) bool {
	return t.Unique > size && mean(r.Held) > float64(size)*1.01
}

func heldCell(h []int64) string {
	if len(h) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s (%s–%s)", thousands(int(mean(h))), thousands(int(slices.Min(h))), thousands(int(slices.Max(h))))
}

// mean of v; NaN for an empty v.
func mean[T int64 | float64](v []T) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	return s / float64(len(v))
}

func points(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%+.2f", x)
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// replayInProcess replays every trace at every size under cachee-lfu, lru and otter,
// cfg.HrParallel at a time, the longest first.
func (b *bench) replayInProcess(traces []*hitsim.Trace) []hitRateResult {
	cfg := b.cfg
	type job struct {
		t      *hitsim.Trace
		size   int
		policy string
		out    *hitRateResult
	}
	var jobs []job
	var results []*hitRateResult
	var total int
	for _, t := range traces {
		runs := 1
		if len(t.Keys) <= cfg.HrRunsMax {
			runs = cfg.HrRuns
		}
		for _, size := range t.Sizes {
			for _, p := range hitsim.AllPolicies {
				r := &hitRateResult{Trace: t.Name, Size: size, Policy: p}
				results = append(results, r)
				for range runs {
					jobs = append(jobs, job{t, size, p, r})
					total += len(t.Keys)
				}
			}
		}
	}
	slices.SortStableFunc(jobs, func(a, b job) int { return len(b.t.Keys) - len(a.t.Keys) })
	log.Printf("hit rate: %d in-process replays, %s accesses in all", len(jobs), thousands(total))
	ch := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(cfg.HrParallel, 1) {
		wg.Go(func() {
			for j := range ch {
				res := hitsim.Replay(j.policy, j.t.Keys, j.t.Unique, j.size)
				mu.Lock()
				if res.Err != "" {
					j.out.Problems = append(j.out.Problems, res.Err)
				} else {
					j.out.Rates = append(j.out.Rates, res.HitRate)
				}
				for _, a := range res.Anomalies {
					if !slices.Contains(j.out.Problems, a) {
						j.out.Problems = append(j.out.Problems, a)
					}
				}
				j.out.Entries = res.Entries
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	out := make([]hitRateResult, len(results))
	for i, r := range results {
		r.Median = stats.Median(r.Rates)
		out[i] = *r
	}
	return out
}

// redisKey writes the 16-byte key redis-server stores for trace key k.
func redisKey(dst []byte, k uint64) []byte {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[k&0xf]
		k >>= 4
	}
	return append(dst, b[:]...)
}

// replayRedis replays each trace at each of its sizes against one redis-server with
// allkeys-lfu, calibrating maxmemory per size first.
func (b *bench) replayRedis(traces []*hitsim.Trace) ([]hitRateResult, error) {
	if len(traces) == 0 {
		return nil, nil
	}
	dir, err := os.MkdirTemp(b.tmp, "hitrate-")
	if err != nil {
		return nil, err
	}
	srv, err := procs.StartRedis(dir, "lfu", "--maxmemory-policy", "allkeys-lfu")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	c, err := respc.Dial("unix", srv.Socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []hitRateResult
	for _, t := range traces {
		t0 := time.Now()
		for _, size := range t.Sizes {
			r, err := replayRedisOne(c, t, size, b.cfg.HrRedisBatch)
			if err != nil {
				return nil, fmt.Errorf("redis replay of %s at %d: %w", t.Name, size, err)
			}
			out = append(out, r)
		}
		log.Printf("hit rate: %s against redis-server at %d sizes in %v", t.Name, len(t.Sizes), time.Since(t0).Round(time.Millisecond))
	}
	return out, nil
}

var (
	cmdSET    = []byte("SET")
	cmdNX     = []byte("NX")
	cmdGET    = []byte("GET")
	cmdDBSIZE = []byte("DBSIZE")
)

// redisValueSize is the value size of the redis-server replay at a cache size. Redis's
// used_memory, which maxmemory bounds, also counts the connection's buffers, which swing
// by tens of KiB as pipelined batches come and go (and as Redis 7 resizes a client's
// reply buffer); with 100-byte entries that is hundreds of keys, more than a small
// cache holds. Values of at least 1 KiB, and up to 4 KiB for the smallest caches, keep
// the swing to a few percent of the entries while the replay stays fast enough.
func redisValueSize(size int) int { return min(max((512<<10)/size, 1024), 4096) }

func usedMemory(c *respc.Conn) (int64, error) {
	info, err := c.Info("memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(info["used_memory"], 10, 64)
}

func intReply(c *respc.Conn, args ...string) (int64, error) {
	r, err := c.Do(args...)
	if err != nil {
		return 0, err
	}
	if r.Kind != ':' {
		return 0, fmt.Errorf("%v: reply %q", args, r.Kind)
	}
	return r.Int, nil
}

func okReply(c *respc.Conn, args ...string) error {
	r, err := c.Do(args...)
	if err == nil && r.Kind != '+' {
		err = fmt.Errorf("%v: reply %q", args, r.Kind)
	}
	return err
}

// replay sends n accesses (SET key value NX GET), batch to a write, and returns how
// many hit. Every sampleEvery batches (0: never) it also asks DBSIZE and appends the
// answer to held. On an error reply it still reads the rest of the batch's replies, so
// that the connection stays in step, and returns the first error.
func replay(c *respc.Conn, n, batch int, key func(dst []byte, i int) []byte, value []byte, sampleEvery int, held *[]int64) (int, error) {
	hits := 0
	var k []byte
	for i, b := 0, 0; i < n; b++ {
		end := min(n, i+batch)
		for j := i; j < end; j++ {
			k = key(k[:0], j)
			c.Send(cmdSET, k, value, cmdNX, cmdGET)
		}
		sample := sampleEvery > 0 && b%sampleEvery == sampleEvery-1
		if sample {
			c.Send(cmdDBSIZE)
		}
		if err := c.Flush(); err != nil {
			return hits, err
		}
		var first error
		for j := i; j < end; j++ {
			r, err := c.Read()
			switch {
			case err != nil && !errors.Is(err, respc.ErrServer):
				return hits, fmt.Errorf("access %d: %w", j, err)
			case err != nil:
				if first == nil {
					first = fmt.Errorf("access %d: %w", j, err)
				}
			case r.Kind == '$' && r.Nil:
			case r.Kind == '$':
				hits++
			default:
				if first == nil {
					first = fmt.Errorf("access %d: reply %q", j, r.Kind)
				}
			}
		}
		if sample {
			r, err := c.Read()
			if err != nil || r.Kind != ':' {
				return hits, fmt.Errorf("DBSIZE: %q %v", r.Kind, err)
			}
			*held = append(*held, r.Int)
		}
		if first != nil {
			return hits, first
		}
		i = end
	}
	return hits, nil
}

// keyMemory is what one more key of the replay's shape costs redis-server: MEMORY
// USAGE of a probe key (key, value, object and dict entry), plus a bucket pointer.
func keyMemory(c *respc.Conn, value []byte) (float64, error) {
	probe := "probe:0000000000" // 16 bytes, like the replay's keys
	if err := okReply(c, "SET", probe, string(value)); err != nil {
		return 0, err
	}
	n, err := intReply(c, "MEMORY", "USAGE", probe)
	if err != nil {
		return 0, err
	}
	if _, err := intReply(c, "DEL", probe); err != nil {
		return 0, err
	}
	return float64(n + 8), nil
}

// calibrateRedis finds the maxmemory at which redis-server holds size keys of the
// replay's shape while it evicts. It sets a guess, writes 2×size new keys through the
// same connection and pipelining the replay uses, then size more while it samples
// DBSIZE after every batch, and corrects the limit by the mean keys missing or over
// times the bytes per key measured, until the mean is within 2% (or one key). It keeps
// the closest limit if none gets there in 8 tries. It leaves the server holding
// calibration keys, for the caller to flush.
func calibrateRedis(c *respc.Conn, size, batch int, value []byte) (maxMem int64, perKey, held float64, err error) {
	if err := okReply(c, "CONFIG", "SET", "maxmemory", "0"); err != nil {
		return 0, 0, 0, err
	}
	if err := okReply(c, "FLUSHALL", "SYNC"); err != nil {
		return 0, 0, 0, err
	}
	u0, err := usedMemory(c)
	if err != nil {
		return 0, 0, 0, err
	}
	if perKey, err = keyMemory(c, value); err != nil {
		return 0, 0, 0, err
	}
	guess := u0 + int64(float64(size)*perKey)
	bestMem, bestHeld := int64(0), math.Inf(1)
	next := 0 // calibration keys are never reused: each write is a miss
	// Calibration keys have the top bit set, which no trace key here has.
	calKey := func(dst []byte, i int) []byte { return redisKey(dst, 1<<63|uint64(next+i)) }
	for range 8 {
		if err := okReply(c, "CONFIG", "SET", "maxmemory", strconv.FormatInt(guess, 10)); err != nil {
			return 0, 0, 0, err
		}
		var samples []int64
		_, err := replay(c, 2*size, batch, calKey, value, 0, nil)
		next += 2 * size
		if err == nil {
			// Every other access reads the key written just before it, so that half the
			// replies carry a value, as the replay's hits do: the replies' buffers count
			// in used_memory too.
			mixed := func(dst []byte, i int) []byte { return calKey(dst, i-i%2) }
			_, err = replay(c, 2*(size+batch), batch, mixed, value, 1, &samples)
			next += 2 * (size + batch)
		}
		if err != nil && strings.Contains(err.Error(), "OOM") {
			// The limit is below what the server needs with no keys at all.
			guess += 64 << 10
			continue
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("calibration writes: %w", err)
		}
		held := mean(samples)
		if math.Abs(held-float64(size)) < math.Abs(bestHeld-float64(size)) {
			bestMem, bestHeld = guess, held
		}
		if math.Abs(held-float64(size)) <= max(1, float64(size)/50) {
			break
		}
		guess += int64((float64(size) - held) * perKey)
	}
	if bestMem == 0 {
		return 0, 0, 0, fmt.Errorf("no maxmemory lets redis-server hold %d keys", size)
	}
	if err := okReply(c, "CONFIG", "SET", "maxmemory", strconv.FormatInt(bestMem, 10)); err != nil {
		return 0, 0, 0, err
	}
	return bestMem, perKey, bestHeld, nil
}

func replayRedisOne(c *respc.Conn, t *hitsim.Trace, size, batch int) (hitRateResult, error) {
	r := hitRateResult{Trace: t.Name, Size: size, Policy: policyRedis}
	value := benchValue(redisValueSize(size))
	maxMem, perKey, _, err := calibrateRedis(c, size, batch, value)
	if err != nil {
		return r, fmt.Errorf("calibrating maxmemory: %w", err)
	}
	r.PerKey, r.ValueSize = perKey, len(value)
	// The calibration's writes and the replay's mix of hits and misses do not load the
	// connection's buffers alike, so a replay may find the server holding more or fewer
	// keys than the calibration did. A replay whose mean is off is corrected by the keys
	// missing or over, at MEMORY USAGE's bytes per key, and run again, at most twice.
	for pass := 0; ; pass++ {
		if err := okReply(c, "CONFIG", "SET", "maxmemory", strconv.FormatInt(maxMem, 10)); err != nil {
			return r, err
		}
		if err := okReply(c, "FLUSHALL", "SYNC"); err != nil {
			return r, err
		}
		if err := okReply(c, "CONFIG", "RESETSTAT"); err != nil {
			return r, err
		}
		// DBSIZE about 200 times in the replay: what redis-server held once full.
		every := max(len(t.Keys)/batch/200, 1)
		var held []int64
		hits, err := replay(c, len(t.Keys), batch, func(dst []byte, i int) []byte { return redisKey(dst, t.Keys[i]) }, value, every, &held)
		if err != nil {
			return r, err
		}
		// Samples taken before the server first filled up say nothing about its size.
		for i, h := range held {
			if h >= int64(size)*9/10 || i == len(held)-1 {
				held = held[i:]
				break
			}
		}
		// An empty held comes only from an empty trace, which is never full below.
		avg := mean(held)
		// A trace with no more keys than the size never fills the cache. Holding more
		// keys than the size favours redis-server (on a loop of 1,011 keys, 1,011 entries
		// hit every time and 1,000 almost never), so a surplus of over 1% is corrected; a
		// shortfall only of over 3%.
		full := t.Unique > size
		off := avg > float64(size)*1.01 || avg < float64(size)*0.97
		if full && pass < 2 && off {
			step := float64(size) - avg
			if avg >= float64(t.Unique)-0.5 {
				// Every key of the trace fit, so the surplus says only that the limit is
				// too high by at least that much: go 5% of the size further.
				step -= float64(size) / 20
			}
			maxMem += int64(step * perKey)
			continue
		}
		r.Held, r.MaxMem, r.Passes = held, maxMem, pass+1
		rate := 100 * float64(hits) / float64(len(t.Keys))
		r.Rates, r.Median = []float64{rate}, rate
		if hits > len(t.Keys)-t.Unique {
			r.Problems = append(r.Problems, fmt.Sprintf("%d hits, but %d of %d accesses are first accesses", hits, t.Unique, len(t.Keys)))
		}
		break
	}
	n, err := intReply(c, "DBSIZE")
	if err != nil {
		return r, err
	}
	r.Entries = int(n)
	if info, err := c.Info("stats"); err == nil {
		r.Evicted, _ = strconv.ParseInt(info["evicted_keys"], 10, 64)
	}
	return r, okReply(c, "CONFIG", "SET", "maxmemory", "0")
}
