package hitsim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/cachee/cachee/store"
)

// Policy names as the tables show them, and the short names -policies takes.
const (
	PolicyLFU   = "cachee-lfu"
	PolicyLRU   = "lru"
	PolicyOtter = "otter"
)

var AllPolicies = []string{PolicyLFU, PolicyLRU, PolicyOtter}

// ParsePolicies reads the -policies list: lfu (or cachee-lfu), lru, otter.
func ParsePolicies(s string) ([]string, error) {
	want := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(p)) {
		case "lfu", "cachee-lfu":
			want[PolicyLFU] = true
		case "lru":
			want[PolicyLRU] = true
		case "otter":
			want[PolicyOtter] = true
		case "":
		default:
			return nil, fmt.Errorf("unknown policy %q (want lfu, lru or otter)", p)
		}
	}
	var out []string
	for _, p := range AllPolicies {
		if want[p] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no policy in %q", s)
	}
	return out, nil
}

// Result is the replay of one trace at one size under one policy: one run, or the sum
// of several (see MergeRuns).
type Result struct {
	Trace    string  `json:"trace"`
	Size     int     `json:"size"`
	Policy   string  `json:"policy"`
	Runs     int     `json:"runs"`
	Accesses uint64  `json:"accesses"` // over all runs
	Hits     uint64  `json:"hits"`     // over all runs
	HitRate  float64 `json:"hit_rate"` // percent: the mean over the runs
	MinRate  float64 `json:"hit_rate_min"`
	MaxRate  float64 `json:"hit_rate_max"`
	Entries  int     `json:"entries"` // held at the end (of the last run)
	Seconds  float64 `json:"seconds"` // over all runs
	// Anomalies are what the replay found wrong with the cache under test: errors,
	// wrong values, more entries than the maximum, impossible hit counts.
	Anomalies []string `json:"anomalies,omitempty"`
	Err       string   `json:"error,omitempty"` // the replay stopped
}

// Replay runs keys through policy at size, one access at a time: a read, and on a miss
// a write of the key. The store runs as a server's does: a random hash seed, and its
// policy's maintenance on the background loop's timer, concurrently with the replay.
func Replay(policy string, keys []uint64, unique, size int) Result {
	return replay(policy, keys, unique, size, nil)
}

// Repeat makes a store replay repeatable: the same seed gives the same hits.
type Repeat struct {
	Seed uint64 // the store's hash seed
	// MaintainEvery is how many accesses pass between two runs of the maintenance that
	// the store's background loop runs every 100 ms (0: never; see DefaultMaintainEvery).
	MaintainEvery int
}

// DefaultMaintainEvery stands for the 100 ms of the background loop in a replay: a
// replay runs 1 to 1.5 million accesses a second on this machine.
const DefaultMaintainEvery = 100_000

// ReplayRepeatable is Replay with the store's seed fixed and its maintenance run every
// rep.MaintainEvery accesses, on the replaying goroutine: for finding why a case
// scores as it does, and for tuning. otter still hashes with a seed of its own.
func ReplayRepeatable(policy string, keys []uint64, unique, size int, rep Repeat) Result {
	return replay(policy, keys, unique, size, &rep)
}

func replay(policy string, keys []uint64, unique, size int, rep *Repeat) (res Result) {
	res.Policy, res.Size, res.Runs = policy, size, 1
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			res.Err = fmt.Sprintf("panic: %v", r)
		}
		res.Seconds = time.Since(start).Seconds()
		if res.Accesses > 0 {
			res.HitRate = 100 * float64(res.Hits) / float64(res.Accesses)
		}
		res.MinRate, res.MaxRate = res.HitRate, res.HitRate
	}()
	switch policy {
	case PolicyLFU:
		replayStore(&res, store.EvictionLFU, keys, unique, size, rep)
	case PolicyLRU:
		replayStore(&res, store.EvictionLRU, keys, unique, size, rep)
	case PolicyOtter:
		replayOtter(&res, keys, unique, size)
	default:
		res.Err = "unknown policy " + policy
	}
	return res
}

// MergeRuns sums repeated runs of one replay; the hit rate becomes their mean. The
// first error, and every distinct anomaly, is kept.
func MergeRuns(runs []Result) Result {
	m := runs[0]
	for _, r := range runs[1:] {
		m.Runs += r.Runs
		m.Accesses += r.Accesses
		m.Hits += r.Hits
		m.Seconds += r.Seconds
		m.Entries = r.Entries
		m.MinRate = min(m.MinRate, r.MinRate)
		m.MaxRate = max(m.MaxRate, r.MaxRate)
		if m.Err == "" {
			m.Err = r.Err
		}
		for _, a := range r.Anomalies {
			if !slices.Contains(m.Anomalies, a) {
				m.Anomalies = append(m.Anomalies, a)
			}
		}
	}
	if m.Accesses > 0 {
		m.HitRate = 100 * float64(m.Hits) / float64(m.Accesses)
	}
	return m
}

// storeMemory is the MaxMemory a store replay gets: enough that only MaxEntries ever
// evicts (a few hundred bytes an entry covers the index, the sketch and the entries of
// 8-byte keys and values with room to spare).
func storeMemory(size int) int64 {
	return max(64<<20, int64(size)*512)
}

// anomalyLimit bounds how many anomalies of one kind a replay records in full.
const anomalyLimit = 3

type anomalies struct {
	res    *Result
	counts map[string]int
}

func (a *anomalies) add(kind, format string, args ...any) {
	if a.counts == nil {
		a.counts = map[string]int{}
	}
	a.counts[kind]++
	if a.counts[kind] <= anomalyLimit {
		a.res.Anomalies = append(a.res.Anomalies, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (a *anomalies) finish() {
	for _, kind := range slices.Sorted(maps.Keys(a.counts)) {
		if n := a.counts[kind]; n > anomalyLimit {
			a.res.Anomalies = append(a.res.Anomalies, fmt.Sprintf("%s: %d in all", kind, n))
		}
	}
}

// replayStore replays through the cachee store with the given eviction policy. The
// store buffers reads for its policy and feeds them in on the next write, so a replay on
// one goroutine gives the policy every access in order before each insertion.
func replayStore(res *Result, eviction string, keys []uint64, unique, size int, rep *Repeat) {
	cfg := store.Config{
		MaxMemory:  storeMemory(size),
		MaxEntries: size,
		Eviction:   eviction,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	every := 0
	if rep != nil {
		cfg.Repeatable = &store.Repeatable{Seed: rep.Seed}
		every = rep.MaintainEvery
	}
	s, err := store.Open(cfg)
	if err != nil {
		res.Err = "open: " + err.Error()
		return
	}
	defer s.Close()
	an := anomalies{res: res}
	defer an.finish()
	var k [8]byte
	buf := make([]byte, 0, 64)
	for i, key := range keys {
		if every > 0 && i%every == every-1 {
			s.Maintain()
		}
		binary.BigEndian.PutUint64(k[:], key)
		res.Accesses++
		v, ok, err := s.Get(k[:], buf[:0])
		if err != nil {
			res.Err = fmt.Sprintf("access %d: get key %d: %v", i, key, err)
			return
		}
		if ok {
			res.Hits++
			if !bytes.Equal(v, k[:]) {
				an.add("wrong value", "access %d: key %d read back as %x", i, key, v)
			}
			continue
		}
		stored, err := s.Set(k[:], k[:], store.SetOptions{})
		if err != nil {
			res.Err = fmt.Sprintf("access %d: set key %d: %v", i, key, err)
			return
		}
		if !stored {
			an.add("set not stored", "access %d: key %d", i, key)
		}
		if n := s.Len(); n > size {
			an.add("over MaxEntries", "access %d: Len() %d > MaxEntries %d", i, n, size)
		}
	}
	res.Entries = s.Len()
	st := s.Stats()
	if st.Hits != res.Hits || st.Hits+st.Misses != res.Accesses {
		an.add("stats disagree", "store counted %d hits, %d misses; the replay %d hits of %d",
			st.Hits, st.Misses, res.Hits, res.Accesses)
	}
	checkCounts(&an, unique, size, res)
}

// checkCounts flags hit counts that no cache could reach (every key's first access is
// a miss) and a cache that ended with fewer entries than it had room for and keys seen.
func checkCounts(an *anomalies, unique, size int, res *Result) {
	if res.Hits > res.Accesses-uint64(unique) {
		an.add("impossible hits", "%d hits, but %d of %d accesses are first accesses",
			res.Hits, unique, res.Accesses)
	}
	if res.Entries > size {
		an.add("over MaxEntries", "%d entries at the end, maximum %d", res.Entries, size)
	}
	if want := min(size, unique); res.Policy != PolicyOtter && res.Entries < want {
		an.add("underfull", "%d entries at the end, want %d: something other than the policy evicted",
			res.Entries, want)
	}
}

// replayOtter replays through otter v2. Its maintenance (draining the read and write
// buffers into the policy, eviction, adapting the window) normally runs on a goroutine
// of its own; an executor that runs each task at once, on the calling goroutine, makes
// every Set leave the cache fully maintained, so that the replay is synchronous as a
// simulator's must be.
func replayOtter(res *Result, keys []uint64, unique, size int) {
	c := otter.Must(&otter.Options[uint64, uint64]{
		MaximumSize:     size,
		InitialCapacity: size,
		Executor:        func(fn func()) { fn() },
	})
	defer c.StopAllGoroutines()
	an := anomalies{res: res}
	defer an.finish()
	for i, key := range keys {
		res.Accesses++
		if v, ok := c.GetIfPresent(key); ok {
			res.Hits++
			if v != key {
				an.add("wrong value", "access %d: key %d read back as %d", i, key, v)
			}
			continue
		}
		c.Set(key, key)
	}
	c.CleanUp()
	res.Entries = c.EstimatedSize()
	checkCounts(&an, unique, size, res)
}
