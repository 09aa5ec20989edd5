package store_test

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cachee/cachee/store"
)

// replay reads each key and writes it on a miss, returning the hit rate.
func replay(t *testing.T, s *store.Store, keys []uint64) float64 {
	t.Helper()
	var k [8]byte
	hits := 0
	for _, key := range keys {
		binary.BigEndian.PutUint64(k[:], key)
		if _, ok, _ := s.Get(k[:], nil); ok {
			hits++
		} else if _, err := s.Set(k[:], k[:], store.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return float64(hits) / float64(len(keys))
}

// recencyTrace is every key read twice, the second time 20 to 400 accesses after the
// first: what a frequency filter turns away, since at admission every key was seen once.
func recencyTrace(n int) []uint64 {
	r := rand.New(rand.NewPCG(1, 2))
	type ev struct{ at, key uint64 }
	evs := make([]ev, 0, 2*n)
	for i := range uint64(n) {
		evs = append(evs, ev{2 * i, i}, ev{2*i + 20 + r.Uint64N(380), i})
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return int(a.at) - int(b.at) })
	keys := make([]uint64, len(evs))
	for i, e := range evs {
		keys[i] = e.key
	}
	return keys
}

func zipfTrace(n int) []uint64 {
	z := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 1, 100_000)
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = z.Uint64()
	}
	return keys
}

// TestLFUWindowAdapts: on a recency workload cachee-lfu widens its window and matches
// LRU, which a 1% window loses to by far; on a skewed one it keeps the window small and
// beats LRU.
func TestLFUWindowAdapts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keys     []uint64
		recency  bool
		minShare float64
		maxShare float64
	}{
		{"recency", recencyTrace(60_000), true, 0.1, 1},
		{"zipf", zipfTrace(200_000), false, 0, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rate := map[string]float64{}
			for _, policy := range []string{store.EvictionLFU, store.EvictionLRU} {
				s := open(t, store.Config{MaxMemory: 64 << 20, MaxEntries: 1000, Eviction: policy})
				rate[policy] = replay(t, s, tc.keys)
				share, ok := s.WindowShare()
				if ok != (policy == store.EvictionLFU) {
					t.Fatalf("%s: WindowShare ok = %v", policy, ok)
				}
				if ok && (share < tc.minShare || share > tc.maxShare) {
					t.Errorf("%s: window share %.3f, want %.2f..%.2f", policy, share, tc.minShare, tc.maxShare)
				}
			}
			lfu, lru := rate[store.EvictionLFU], rate[store.EvictionLRU]
			t.Logf("hit rate lfu %.4f lru %.4f", lfu, lru)
			if tc.recency && lfu < lru-0.01 || !tc.recency && lfu < lru+0.02 {
				t.Errorf("lfu %.4f against lru %.4f", lfu, lru)
			}
		})
	}
}

// TestRepeatableReplays: two stores opened with the same Repeatable seed and maintained
// at the same accesses make the same decisions, hit for hit, however long the replay
// takes (the race detector makes it take seconds, many of the background loop's ticks).
func TestRepeatableReplays(t *testing.T) {
	keys := append(zipfTrace(60_000), recencyTrace(20_000)...)
	run := func() ([]bool, float64, [][]byte) {
		s := open(t, store.Config{MaxMemory: 64 << 20, MaxEntries: 500, Repeatable: &store.Repeatable{Seed: 7}})
		var k [8]byte
		hits := make([]bool, len(keys))
		for i, key := range keys {
			if i%5000 == 4999 {
				s.Maintain()
			}
			binary.BigEndian.PutUint64(k[:], key)
			if _, ok, _ := s.Get(k[:], nil); ok {
				hits[i] = true
			} else if _, err := s.Set(k[:], k[:], store.SetOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		share, _ := s.WindowShare()
		return hits, share, s.Hottest(100)
	}
	hits1, share1, hot1 := run()
	hits2, share2, hot2 := run()
	for i := range hits1 {
		if hits1[i] != hits2[i] {
			t.Fatalf("replays differ first at access %d of %d", i, len(keys))
		}
	}
	if share1 != share2 {
		t.Errorf("window shares %v and %v", share1, share2)
	}
	if !slices.EqualFunc(hot1, hot2, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("hottest keys differ")
	}
}
