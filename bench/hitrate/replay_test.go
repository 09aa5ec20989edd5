package main

import (
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// tracesDir is the shared traces directory, or "" (and the test is skipped) if absent.
func tracesDir(t *testing.T) string {
	t.Helper()
	dir := defaultTracesDir()
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Skipf("traces directory %s not found: skipping (it holds the shared traces in CI)", dir)
	}
	return dir
}

func checkResult(t *testing.T, r Result) {
	t.Helper()
	if r.Err != "" || len(r.Anomalies) > 0 {
		t.Fatalf("%s @ %d: error %q, anomalies %q", r.Policy, r.Size, r.Err, r.Anomalies)
	}
}

// TestLRUHandComputed replays a trace whose LRU outcome was worked out by hand, with
// 3 entries (the cache after each access, least recent first):
//
//	1 miss [1]      2 miss [1 2]    3 miss [1 2 3]  1 hit  [2 3 1]  4 miss [3 1 4]
//	2 miss [1 4 2]  5 miss [4 2 5]  1 miss [2 5 1]  2 hit  [5 1 2]  3 miss [1 2 3]
//
// 2 hits of 10: 20%. (FIFO would hit the 5th access instead of missing it.) Every hit is
// followed by a miss, so the store's read buffer is drained before the next hit.
func TestLRUHandComputed(t *testing.T) {
	trace := []uint64{1, 2, 3, 1, 4, 2, 5, 1, 2, 3}
	for range 20 {
		r := replay(polLRU, trace, 5, 3)
		checkResult(t, r)
		if r.Hits != 2 || r.Accesses != 10 || r.HitRate != 20 || r.Entries != 3 {
			t.Fatalf("lru: %d hits of %d (%.2f%%), %d entries; want 2 of 10 (20%%), 3 entries",
				r.Hits, r.Accesses, r.HitRate, r.Entries)
		}
	}
}

// TestAllFit checks every policy on a cache that holds every key: only first accesses
// miss.
func TestAllFit(t *testing.T) {
	trace := []uint64{1, 2, 3, 1, 4, 2, 5, 1, 2, 3, 5, 5, 4}
	for _, p := range allPolicies {
		r := replay(p, trace, 5, 100)
		checkResult(t, r)
		if r.Hits != 8 || r.Entries != 5 {
			t.Errorf("%s: %d hits, %d entries; want 8 hits, 5 entries", p, r.Hits, r.Entries)
		}
	}
}

// TestStoreLRUHitOrder checks that hits between two writes reach the store's LRU in the
// order they were made. With 3 entries, 1 2 3 2 1 4 5 2 hits twice under LRU: after
// 1 2 3 2 1 the order (least recent first) is 3 2 1, so 4 evicts 3, 5 evicts 2 and the
// last 2 misses. If the two hits reached the policy as 1 then 2, 5 would evict 1 and the
// last 2 would hit.
//
// The store as it is fails this: its read buffer puts each hit in a randomly chosen
// stripe and drains the stripes in index order, so the two hits swap places in about 7
// runs of 16. It is reported to the store's owner; until it is fixed the test skips
// unless HITRATE_STRICT=1.
func TestStoreLRUHitOrder(t *testing.T) {
	trace := []uint64{1, 2, 3, 2, 1, 4, 5, 2}
	dist := map[uint64]int{}
	for range 100 {
		r := replay(polLRU, trace, 5, 3)
		checkResult(t, r)
		dist[r.Hits]++
	}
	if dist[2] != 100 {
		t.Errorf("store lru: hits -> runs of 100: %v; exact LRU hits 2 every time "+
			"(a single reader's hits must reach the policy in order)", dist)
	}
}

// TestOLTPPublishedLRU replays the OLTP trace through the store's LRU and compares with
// the published LRU hit rates (traces README) within 0.1 point.
func TestOLTPPublishedLRU(t *testing.T) {
	dir := tracesDir(t)
	tr, err := ReadTraceFile(filepath.Join(dir, "arc", "oltp.gz"), formatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Keys) != 914_145 || tr.Unique != 186_880 || tr.Format != formatARC {
		t.Fatalf("oltp: %d accesses, %d keys, %s; the README says 914,145 accesses and 186,880 keys, ARC",
			len(tr.Keys), tr.Unique, tr.Format)
	}
	published := map[int]float64{250: 16.47, 500: 23.45, 1000: 32.83, 2000: 42.47}
	if raceEnabled {
		// The race detector makes each replay several times slower: two sizes still
		// pin the policy to the published numbers.
		delete(published, 500)
		delete(published, 1000)
	}
	var wg sync.WaitGroup
	results := make(chan Result, len(published))
	sem := make(chan struct{}, 2)
	for size := range published {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results <- replay(polLRU, tr.Keys, tr.Unique, size)
		})
	}
	wg.Wait()
	close(results)
	for r := range results {
		checkResult(t, r)
		want := published[r.Size]
		t.Logf("oltp lru @ %d: %.3f%% (published %.2f)", r.Size, r.HitRate, want)
		if math.Abs(r.HitRate-want) > 0.1 {
			t.Errorf("oltp lru @ %d: %.3f%%, published %.2f%%", r.Size, r.HitRate, want)
		}
	}
}

func TestMergeRuns(t *testing.T) {
	m := mergeRuns([]Result{
		{Runs: 1, Accesses: 100, Hits: 10, MinRate: 10, MaxRate: 10, Seconds: 1},
		{Runs: 1, Accesses: 100, Hits: 30, MinRate: 30, MaxRate: 30, Seconds: 2, Anomalies: []string{"x"}},
		{Runs: 1, Accesses: 100, Hits: 20, MinRate: 20, MaxRate: 20, Seconds: 3, Anomalies: []string{"x"}},
	})
	if m.Runs != 3 || m.Hits != 60 || m.Accesses != 300 || m.HitRate != 20 || m.MinRate != 10 ||
		m.MaxRate != 30 || m.Seconds != 6 || len(m.Anomalies) != 1 {
		t.Errorf("merged: %+v", m)
	}
}
