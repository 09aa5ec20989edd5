package store

import (
	"math/rand/v2"
	"testing"
)

// checkShadow verifies a shadow's lists, table and counts agree.
func checkShadow(t *testing.T, s *shadow) {
	t.Helper()
	n := 0
	for q := qWindow; q <= qProtected; q++ {
		l := s.lists[q]
		k, prev := 0, uint16(0)
		for x := l.head; x != 0; x = s.ents[x].next {
			e := s.ents[x]
			if e.q != uint8(q) || e.prev != prev {
				t.Fatalf("list %d: entry %d has queue %d prev %d, want prev %d", q, x, e.q, e.prev, prev)
			}
			if _, y := s.find(e.tag); y != x {
				t.Fatalf("tag %d of entry %d found at %d", e.tag, x, y)
			}
			prev = x
			k++
		}
		if k != l.n || l.tail != prev {
			t.Fatalf("list %d: %d entries counted %d, tail %d want %d", q, k, l.n, l.tail, prev)
		}
		n += k
	}
	inTable := 0
	for _, x := range s.table {
		if x != 0 {
			inTable++
		}
	}
	if n != s.used || inTable != n || s.used > s.cap || s.cap > s.room() || s.lists[qWindow].n > s.winCap {
		t.Fatalf("used %d, listed %d, in table %d, cap %d; window %d of %d", s.used, n, inTable, s.cap, s.lists[qWindow].n, s.winCap)
	}
}

// TestShadowConsistent drives shadows through accesses, resizes and resampling.
func TestShadowConsistent(t *testing.T) {
	sk := &sketch{}
	sk.init(make([]uint64, sketchWords(4096)), 0, 4096)
	var tu windowTuner
	tu.init(sk)
	r := rand.New(rand.NewPCG(5, 6))
	sizes := []int{50, 900, 3000, 20_000, 100_000, 300_000} // the last two grow the shadows
	for round := range 24 {
		n := sizes[round%len(sizes)]
		tu.scale(n)
		for range 5000 {
			tag := uint64(r.Uint32N(uint32(3 * n)))
			if r.IntN(2) == 0 {
				tag = uint64(r.Uint32N(uint32(n / 10)))
			}
			sk.increment(tag)
			tu.record(tag)
		}
		for _, s := range tu.shadows {
			checkShadow(t, s)
			for q := qWindow; q <= qProtected; q++ {
				for x := s.lists[q].head; x != 0; x = s.ents[x].next {
					if !tu.sampled(uint64(s.ents[x].tag)) {
						t.Fatalf("shadow %.2f holds tag %d it does not sample", s.fraction, s.ents[x].tag)
					}
				}
			}
		}
	}
	if s := tu.shadows[0]; s.room() != shadowEntries {
		t.Fatalf("a cache of 300,000 entries: shadows with room for %d entries, want %d", s.room(), shadowEntries)
	}
}

// TestTunerCountsDisagreements: two shares' hits over the same accesses differ exactly by
// the accesses on which one hit and the other missed, the counts the switch test rests on.
func TestTunerCountsDisagreements(t *testing.T) {
	sk := &sketch{}
	sk.init(make([]uint64, sketchWords(4096)), 0, 4096)
	var tu windowTuner
	tu.init(sk)
	tu.scale(500)
	r := rand.New(rand.NewPCG(7, 8))
	for range 20_000 {
		tag := uint64(r.Uint32N(2000))
		if r.IntN(2) == 0 {
			tag = uint64(r.Uint32N(100))
		}
		sk.increment(tag)
		tu.record(tag)
	}
	for i, a := range tu.shadows {
		for j, b := range tu.shadows {
			w, l := int64(tu.only[i][j]), int64(tu.only[j][i])
			if int64(a.hits)-int64(b.hits) != w-l || uint64(w) > a.hits {
				t.Fatalf("shares %.2f and %.2f: hits %d and %d, %d hit only in the first, %d only in the second",
					a.fraction, b.fraction, a.hits, b.hits, w, l)
			}
		}
	}
	if tu.only[0][3]+tu.only[3][0] == 0 {
		t.Fatal("a 1% and an 80% window never disagreed")
	}
}
