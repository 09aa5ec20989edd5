package store

import "math/bits"

// Scan walks the keys with a cursor, as Redis SCAN does: start at 0, pass back the
// cursor each call returns, stop when it returns 0. A key present for the whole walk is
// returned at least once, however the index grows meanwhile, because the cursor counts
// hash prefixes in bit-reversed order (the scheme of Redis's dictScan). Each call
// examines roughly count keys. fn gets each live key, valid only during the call; it
// must not call back into the store.
func (s *Store) Scan(cursor uint64, count int, fn func(key []byte)) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0
	}
	return s.scan(cursor, count, fn)
}

func (s *Store) scan(cursor uint64, count int, fn func(key []byte)) uint64 {
	now := s.nowWrite()
	m := &s.v.m
	count = max(count, 1)
	mask := uint64(1)<<s.idx.depth - 1
	seen := 0
	for {
		v := cursor & mask
		t := &s.idx.tables[s.idx.dirIDs[v]]
		s.idx.forTable(t, func(so, sl uint64) {
			e := sl & 0xffffffff * unit
			if s.expired(e, now) {
				return
			}
			if s.hashOf(e)&mask != v {
				return // another prefix that shares this table
			}
			seen++
			fn(m.bytes(e+entryHeader, uint64(w0Klen(m.load(e)))))
		})
		cursor |= ^mask
		cursor = bits.Reverse64(bits.Reverse64(cursor) + 1)
		if cursor == 0 || seen >= count {
			return cursor
		}
	}
}

// Keys calls fn for every live key. It holds the write lock throughout, as KEYS blocks
// Redis; prefer Scan on a large store.
func (s *Store) Keys(fn func(key []byte)) {
	for c := s.Scan(0, 1<<62, fn); c != 0; c = s.Scan(c, 1<<62, fn) {
	}
}
