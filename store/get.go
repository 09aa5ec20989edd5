package store

import (
	"cmp"
	"slices"
)

// Get appends the value of key to dst. It never blocks and, given a dst with room,
// never allocates.
func (s *Store) Get(key, dst []byte) ([]byte, bool, error) {
	if uint(len(key))-1 >= uint(s.cfg.MaxKeySize) { // empty, or too long
		return dst, false, s.checkKey(key)
	}
	if s.closed.Load() {
		return dst, false, ErrClosed
	}
	out, ref, res := s.v.get(key, dst)
	switch res {
	case resHit:
		if !s.rb.hit(ref) {
			s.tryDrain()
		}
		return out, true, nil
	case resMiss:
		s.rb.miss()
		return out, false, nil
	case resNotString:
		return dst, false, ErrWrongType
	}
	return s.getLocked(key, dst, res)
}

// getLocked is Get's way out of a read that failed: corruption is reported, and a read
// that kept meeting the writer mid-change (a long transaction) waits for it.
func (s *Store) getLocked(key, dst []byte, res int) ([]byte, bool, error) {
	if s.closed.Load() {
		return dst, false, ErrClosed
	}
	if res == resCorrupt {
		return dst, false, ErrCorrupt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return dst, false, ErrClosed
	}
	out, ref, res := s.v.get(key, dst)
	switch res {
	case resHit:
		s.pol.access(ref&0xffffffff*unit, ref>>32, 1)
		s.rb.countHit()
		return out, true, nil
	case resNotString:
		return dst, false, ErrWrongType
	}
	s.rb.miss()
	return out, false, nil
}

// GetMany looks each key up as Get does and calls fn with its index, its value (valid
// only during the call) and whether it was found.
func (s *Store) GetMany(keys [][]byte, fn func(i int, value []byte, found bool, err error)) {
	var buf []byte
	for i, k := range keys {
		v, ok, err := s.Get(k, buf[:0])
		fn(i, v, ok, err)
		buf = v
	}
}

func (s *Store) tryDrain() {
	if s.mu.TryLock() {
		if !s.closed.Load() {
			s.drain()
		}
		s.mu.Unlock()
	}
}

// drain feeds buffered reads to the policy and lets it adapt, as every write does
// first. Caller holds mu.
func (s *Store) drain() {
	s.rb.drain(s.recordRef)
	s.pol.maintain()
}

// recordRef validates a slot word that a reader reported, then counts the access. A
// ref may be stale (the entry was replaced or evicted since) or, from another process,
// anything at all: only a ref that the index still holds reaches the policy.
func (s *Store) recordRef(ref uint64, n int) {
	if e, ok := s.resolveRef(ref); ok {
		s.pol.access(e, ref>>32, n)
	}
}

func (s *Store) resolveRef(ref uint64) (uint64, bool) {
	e := ref & 0xffffffff * unit
	if e < s.v.lo || e+minBlock > s.al.sentinel() {
		return 0, false
	}
	w0 := s.v.m.load(e)
	klen := w0Klen(w0)
	if w0&w0Free != 0 || w0Kind(w0) != kindEntry || klen == 0 ||
		e+w0Size(w0)*unit > s.al.sentinel() || uint64(entryHeader+klen) > w0Size(w0)*unit {
		return 0, false
	}
	h := s.hashOf(e)
	if h>>32 != ref>>32 {
		return 0, false
	}
	if _, ok := s.idx.findEntry(h, e); !ok {
		return 0, false
	}
	return e, true
}

// RecordAccess counts hits that Readers in other processes made, so that they reach the
// policy and the hit counter. refs are the values Reader.Get returned; unreported is
// the number of further hits the reader made but does not name (a reader may send a
// sample of a hot loop), which count in the statistics only.
func (s *Store) RecordAccess(refs []uint64, unreported uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	for _, r := range refs {
		s.recordRef(r, 1)
	}
	s.sdk.Add(uint64(len(refs)) + unreported)
}

// Hottest returns up to n keys, the most valuable to keep first: what prewarm loads
// and what a sidecar publishes for others to prewarm.
func (s *Store) Hottest(n int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() || n <= 0 {
		return nil
	}
	s.drain()
	now := s.nowWrite()
	// The policy orders entries by its own notion of value (recency within the
	// protected space first); rank a wider set of them by how often they were
	// requested, which is what a prewarm or a published hotset wants.
	want := min(n, s.Len())
	cands := make([]uint64, 0, min(4*want, s.Len()))
	s.pol.hottest(func(e uint64) bool {
		if !s.expired(e, now) {
			cands = append(cands, e)
		}
		return len(cands) < cap(cands)
	})
	if lfu, ok := s.pol.(*tinyLFU); ok {
		freq := make(map[uint64]uint64, len(cands))
		for _, e := range cands {
			freq[e] = lfu.sk.frequency(s.tagOf(e))
		}
		slices.SortStableFunc(cands, func(a, b uint64) int { return cmp.Compare(freq[b], freq[a]) })
	}
	keys := make([][]byte, 0, want)
	for _, e := range cands[:min(want, len(cands))] {
		k := s.v.m.bytes(e+entryHeader, uint64(w0Klen(s.v.m.load(e))))
		keys = append(keys, append([]byte(nil), k...))
	}
	return keys
}
