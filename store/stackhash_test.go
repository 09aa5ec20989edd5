package store

import (
	"sync"
	"testing"
)

// TestStackHashSpreadsGoroutines: 64 goroutines alive at once pick stripes of 16 about
// as a fair draw would, by the pairs that share one (a fair draw gives 126 of the 2,016
// pairs, give or take about 11). New goroutines' 2 KiB stacks sit side by side, and a
// hash that dropped the low 8 KiB of the address put each four neighbours on one
// stripe, so that readers shared one counter's cache line.
func TestStackHashSpreadsGoroutines(t *testing.T) {
	const n = 64
	var h [n]uint32
	var wg, all sync.WaitGroup
	all.Add(n)
	for g := range h {
		wg.Go(func() {
			all.Done()
			all.Wait() // all alive at once: one that ended would leave its stack to the next
			h[g] = StackHash() & 15
		})
	}
	wg.Wait()
	var per [16]int
	for _, v := range h {
		per[v]++
	}
	pairs := 0
	for _, k := range per {
		pairs += k * (k - 1) / 2
	}
	if pairs > 190 {
		t.Fatalf("%d of %d pairs of goroutines share a stripe of 16 (a fair draw: about 126): %v", pairs, n*(n-1)/2, per)
	}
}
