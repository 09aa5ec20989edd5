package store

import (
	"sync"
	"testing"
)

// TestStackHashSpreadsNewGoroutines: two goroutines started together, whose 2 KiB
// stacks may sit side by side, pick different stripes of four far more often than
// not (by chance, three times in four). A hash that ignored the low 8 KiB of the
// address gave them the same stripe every time, so that two readers of the same
// client shared one counter's cache line.
func TestStackHashSpreadsNewGoroutines(t *testing.T) {
	const trials = 200
	same := 0
	for range trials {
		var h [2]uint32
		var wg, both sync.WaitGroup
		both.Add(len(h))
		for g := range h {
			wg.Go(func() {
				// Both alive at once, as two readers are: a goroutine that ended
				// first would leave its stack for the next to reuse.
				both.Done()
				both.Wait()
				h[g] = StackHash() & 3
			})
		}
		wg.Wait()
		if h[0] == h[1] {
			same++
		}
	}
	if same > trials/2 {
		t.Fatalf("two new goroutines picked the same of 4 stripes %d times in %d", same, trials)
	}
}
