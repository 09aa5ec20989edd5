package store

import (
	"math/bits"
	"unsafe"
)

// sketch estimates how often each key was requested recently: a count-min sketch of
// 4-bit counters (TinyLFU, Einziger et al. 2017). Each key's four counters sit in one
// 64-byte block, so an update touches one cache line. When the number of increments
// reaches the sample size every counter is halved, so that old popularity fades.
//
// It lives in an arena block and only the writer touches it.
type sketch struct {
	words      []uint64
	blockMask  uint64
	block      uint64 // arena block that holds it; 0 when on the heap (tests)
	additions  uint64
	sampleSize uint64
	capacity   uint64 // entries it was sized for
}

// A sketch sized for a cache of a few hundred entries would be a few hundred words,
// and halve them every few thousand additions: the keys that pass through in that time
// share the counters, and whichever a hash seed happens to inflate win admission, so
// that the hit rate is the seed's more than the policy's (lirs/gli at 100 entries:
// 1.2% to 6.0% over 20 seeds with 128 words halved every 1,000 additions, 6.5% to 7.0%
// with these floors; otter, whose sketch is as small, 1.2% to 5.9%). Below them a cache
// gets more than a word an entry (4 KiB in all) and a longer memory. A store bounded by
// memory starts above them (initSketch); one bounded to a few hundred entries meets them.
const (
	minSketchWords      = 512
	minSketchSampleSize = 10 * 256
)

// sketchWords is the table size for capacity entries: one word (16 counters) per entry,
// at least minSketchWords.
func sketchWords(capacity uint64) uint64 {
	n := uint64(minSketchWords)
	if capacity > n {
		n = 1 << bits.Len64(capacity-1)
	}
	return n
}

func sketchBlockUnits(capacity uint64) uint64 {
	return (entryHeader + cacheLine - 1 + sketchWords(capacity)*8) / unit
}

func (s *sketch) init(words []uint64, block, capacity uint64) {
	clear(words)
	s.words = words
	s.blockMask = uint64(len(words))/8 - 1
	s.block = block
	s.additions = 0
	s.capacity = capacity
	s.sampleSize = max(10*capacity, minSketchSampleSize)
}

func sketchAt(m *mem, block uint64, capacity uint64) []uint64 {
	p := tablePayload(block)
	return unsafe.Slice((*uint64)(unsafe.Add(m.base, p)), sketchWords(capacity))
}

// spread turns a 32-bit tag into well-mixed 64 bits (a SplitMix64 finaliser).
func spread(t uint64) uint64 {
	t ^= t >> 30
	t *= 0xbf58476d1ce4e5b9
	t ^= t >> 27
	t *= 0x94d049bb133111eb
	return t ^ t>>31
}

// counters yields the word index and shift of each of the key's four counters.
func (s *sketch) counters(tag uint64) (w [4]uint64, sh [4]uint64) {
	h := spread(tag)
	blk := (h & s.blockMask) << 3
	h = bits.RotateLeft64(h, 32) * 0x9e3779b97f4a7c15
	for i := range 4 {
		w[i] = blk + uint64(i)*2 + (h>>i)&1 // one counter in each pair of words
		sh[i] = ((h >> (16 + i*4)) & 15) << 2
	}
	return w, sh
}

// increment counts one request of the key with this tag. Only the counters holding
// the current minimum move (conservative update), which keeps the estimate of keys that
// share counters with popular ones honest.
func (s *sketch) increment(tag uint64) {
	if s.words == nil {
		return
	}
	w, sh := s.counters(tag)
	added := false
	for i := range 4 {
		if s.words[w[i]]>>sh[i]&15 < 15 {
			s.words[w[i]] += 1 << sh[i]
			added = true
		}
	}
	if !added {
		return
	}
	s.additions++
	if s.additions >= s.sampleSize {
		s.age()
	}
}

// frequency is the estimated number of recent requests of the key with this tag, 0..15.
func (s *sketch) frequency(tag uint64) uint64 {
	if s.words == nil {
		return 0
	}
	w, sh := s.counters(tag)
	least := uint64(15)
	for i := range 4 {
		least = min(least, s.words[w[i]]>>sh[i]&15)
	}
	return least
}

// age halves every counter.
func (s *sketch) age() {
	odd := 0
	for i, v := range s.words {
		odd += bits.OnesCount64(v & 0x1111111111111111)
		s.words[i] = v >> 1 & 0x7777777777777777
	}
	s.additions = (s.additions - uint64(odd)/4) / 2
}
