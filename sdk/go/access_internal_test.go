package cachee

import (
	"slices"
	"sync"
	"testing"
)

func TestAccessBufferKeepsWhatFits(t *testing.T) {
	a := newAccessBuffer()
	var want []uint64
	for i := range uint64(100) {
		a.record(i + 1)
		want = append(want, i+1)
	}
	got, _ := a.drain(nil)
	slices.Sort(got)
	if !slices.Equal(got, want) || a.hits() != 100 || a.dropped.Load() != 0 {
		t.Fatalf("got %v, hits %d, dropped %d", got, a.hits(), a.dropped.Load())
	}
	if got, _ := a.drain(nil); len(got) != 0 {
		t.Fatalf("drained twice: %v", got)
	}
}

// TestAccessBufferLossy: a stripe keeps its last ringSlots refs and counts the rest as
// dropped; every hit is counted.
func TestAccessBufferLossy(t *testing.T) {
	a := newAccessBuffer()
	n := uint64(3*ringSlots + 5)
	for i := range n {
		a.record(i%7 + 1) // repeats, so that the skipped stores matter
	}
	got, _ := a.drain(nil)
	if uint64(len(got))+a.dropped.Load() != n || len(got) != ringSlots || a.hits() != n {
		t.Fatalf("kept %d, dropped %d, hits %d of %d", len(got), a.dropped.Load(), a.hits(), n)
	}
	for _, r := range got {
		if r < 1 || r > 7 {
			t.Fatalf("ref %d never recorded", r)
		}
	}
}

// TestAccessBufferConcurrent records from many goroutines while draining, under -race:
// the refs drained and the hits reported without a ref add up to exactly the hits
// recorded, never more (a hit counted twice inflates the sidecar's hit count).
func TestAccessBufferConcurrent(t *testing.T) {
	a := newAccessBuffer()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10000 {
				a.record(uint64(g*10000 + i + 1))
			}
		})
	}
	var kept, counted uint64
	take := func() {
		refs, unnamed := a.drain(nil)
		kept += uint64(len(refs))
		counted += uint64(len(refs)) + unnamed
		if counted > a.hits() {
			t.Fatalf("reported %d hits of %d recorded", counted, a.hits())
		}
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	for {
		select {
		case <-done:
			take()
			if a.hits() != 80000 || kept > 80000 || counted != 80000 {
				t.Fatalf("hits %d, kept %d, reported %d", a.hits(), kept, counted)
			}
			return
		default:
			take()
		}
	}
}
