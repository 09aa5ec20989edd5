package store

import (
	"fmt"
	"time"
)

// ExpireCond qualifies Expire as Redis EXPIRE's NX, XX, GT and LT options do.
type ExpireCond uint8

const (
	ExpireAlways ExpireCond = iota
	ExpireNX                // only if the key has no expiry
	ExpireXX                // only if the key has an expiry
	ExpireGT                // only if the new expiry is later (no expiry counts as infinite)
	ExpireLT                // only if the new expiry is earlier
)

// NoExpiry is what TTL returns for a key that never expires.
const NoExpiry time.Duration = -1

func (s *Store) expiry(opt SetOptions, now int64, old uint64) (exp int64, err error) {
	switch {
	case !opt.ExpireAt.IsZero():
		exp = opt.ExpireAt.UnixMilli()
		if exp <= 0 {
			return 0, fmt.Errorf("%w: expire at %v", ErrInvalidTTL, opt.ExpireAt)
		}
	case opt.KeepTTL:
		exp = int64(old)
	case opt.TTL > 0:
		// now was read when the write (or its transaction) began: every operation of a
		// transaction sees one time, so a TTL set in one reads back whole in it.
		ms := (opt.TTL + time.Millisecond - 1) / time.Millisecond
		exp = now + int64(ms)
	}
	if exp > w1ExpMask {
		return 0, fmt.Errorf("%w: expiry %d ms is beyond the year 10000", ErrInvalidTTL, exp)
	}
	return exp, nil
}

func (s *Store) expired(e uint64, now int64) bool {
	exp := int64(s.v.m.load(e+8) & w1ExpMask)
	return exp != 0 && exp <= now
}

// countExpiring keeps the count of entries with an expiry as one goes from old to exp.
func (s *Store) countExpiring(old, exp int64) {
	switch {
	case old == 0 && exp != 0:
		s.expiring.Add(1)
	case old != 0 && exp == 0:
		s.expiring.Add(-1)
	}
}

// Expire sets the expiry of key to at (zero time: no expiry, as PERSIST) if cond holds,
// and reports whether it changed anything. An expiry in the past deletes the key.
func (s *Store) Expire(key []byte, at time.Time, cond ExpireCond) (bool, error) {
	return s.writeKey(key, func(h uint64, now int64) (bool, error) {
		return s.expire(h, key, at, cond, now)
	})
}

func (s *Store) expire(h uint64, key []byte, at time.Time, cond ExpireCond, now int64) (bool, error) {
	so, e, ok := s.idx.find(h, key)
	if !ok {
		return false, nil
	}
	if s.expired(e, now) {
		s.removeEntry(h, so, e, &s.expirations)
		return false, nil
	}
	var exp int64
	if !at.IsZero() {
		exp = at.UnixMilli()
		if exp <= 0 || exp > w1ExpMask {
			return false, fmt.Errorf("%w: expire at %v", ErrInvalidTTL, at)
		}
	}
	cur := int64(s.v.m.load(e+8) & w1ExpMask)
	inf := func(x int64) int64 {
		if x == 0 {
			return 1<<63 - 1
		}
		return x
	}
	switch cond {
	case ExpireNX:
		if cur != 0 {
			return false, nil
		}
	case ExpireXX:
		if cur == 0 {
			return false, nil
		}
	case ExpireGT:
		if inf(exp) <= inf(cur) {
			return false, nil
		}
	case ExpireLT:
		if inf(exp) >= inf(cur) {
			return false, nil
		}
	}
	if exp != 0 && exp <= now {
		s.removeEntry(h, so, e, &s.deletes)
		return true, nil
	}
	if at.IsZero() && cur == 0 {
		return false, nil
	}
	m := &s.v.m
	s.idx.touchBucket(so, func() {
		w1 := m.load(e + 8)
		m.store(e+8, w1&^w1ExpMask|uint64(exp))
	})
	s.countExpiring(cur, exp)
	return true, nil
}

// TTL returns the time key has left, NoExpiry for a key without expiry, and ok ==
// false for a missing key.
func (s *Store) TTL(key []byte) (ttl time.Duration, ok bool, err error) {
	if err := s.checkKey(key); err != nil {
		return 0, false, err
	}
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0, false, ErrClosed
	}
	ttl, ok = s.ttl(h, key, s.now())
	return ttl, ok, nil
}

func (s *Store) ttl(h uint64, key []byte, now time.Time) (time.Duration, bool) {
	_, e, ok := s.idx.find(h, key)
	if !ok {
		return 0, false
	}
	exp := int64(s.v.m.load(e+8) & w1ExpMask)
	switch {
	case exp == 0:
		return NoExpiry, true
	case exp <= now.UnixMilli():
		return 0, false
	}
	return time.UnixMilli(exp).Sub(now), true
}

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
	now := s.nowWrite()
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
