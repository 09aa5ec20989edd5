package store

import "time"

// sweepBuckets is how many buckets one maintenance pass examines for expired entries
// before deciding whether to go on.
const sweepBuckets = 1024

// sweep reclaims expired entries. Expired entries are invisible to readers at once;
// this returns their memory. Each pass examines a slice of the index, walking it
// round-robin, and goes on while at least a quarter of what it finds has expired, within
// a millisecond (the active expiry of Redis works the same way). Caller holds mu.
func (s *Store) sweep() {
	deadline := time.Now().Add(time.Millisecond)
	for {
		seen, expired := s.sweepStep(sweepBuckets)
		if expired*4 < seen || seen == 0 || time.Now().After(deadline) {
			return
		}
	}
}

// sweepStep examines n buckets from the cursor and removes the expired entries it finds.
func (s *Store) sweepStep(n int) (seen, expired int) {
	now := s.nowRead()
	m := &s.v.m
	nb := s.idx.nb()
	for range n {
		if s.sweepTable >= len(s.idx.tables) {
			s.sweepTable, s.sweepBkt = 0, 0
		}
		t := &s.idx.tables[s.sweepTable]
		b := t.off + s.sweepBkt*bucketBytes
		for i := uint64(0); i < slotsPerBucket; i++ {
			so := b + 8 + i*8
			sl := m.load(so)
			if sl == 0 {
				continue
			}
			seen++
			if e := sl & 0xffffffff * unit; s.expired(e, now) {
				s.removeEntry(s.hashOf(e), so, e, &s.expirations)
				expired++
			}
		}
		if s.sweepBkt++; s.sweepBkt == nb {
			s.sweepBkt = 0
			s.sweepTable++
		}
	}
	return seen, expired
}
