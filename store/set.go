package store

import (
	"fmt"
	"time"
)

// SetOptions qualify a Set.
type SetOptions struct {
	// TTL is the time to live; zero means no expiry. Negative is ErrInvalidTTL.
	TTL time.Duration
	// ExpireAt, when not zero, is the absolute expiry (it wins over TTL). A time in the
	// past stores nothing and deletes the key, as Redis does.
	ExpireAt time.Time
	// KeepTTL keeps the expiry of the value being replaced (Redis SET KEEPTTL).
	KeepTTL bool
	// Cond makes the write conditional on the key's presence.
	Cond Condition
}

// Condition is a precondition of a write.
type Condition uint8

const (
	Always    Condition = iota
	IfAbsent            // only if the key is absent (Redis NX)
	IfPresent           // only if the key is present (Redis XX)
)

// Set stores value under key. It reports whether it stored (false when Cond was not
// met).
func (s *Store) Set(key, value []byte, opt SetOptions) (bool, error) {
	if err := s.checkSet(key, value, opt); err != nil {
		return false, err
	}
	return s.writeKey(key, func(h uint64, now int64) (bool, error) {
		return s.set(h, key, value, opt, now)
	})
}

// checkSet checks a Set's arguments, in the order Set reports them.
func (s *Store) checkSet(key, value []byte, opt SetOptions) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	if err := s.checkValue(key, value); err != nil {
		return err
	}
	if opt.TTL < 0 {
		return fmt.Errorf("%w: %v", ErrInvalidTTL, opt.TTL)
	}
	return nil
}

// write is the preamble of every write: take the write lock, refuse a closed store, and
// feed buffered reads to the policy first (see drain); then run fn under the lock.
func (s *Store) write(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	s.drain()
	return fn()
}

// writeKey is write for an operation on one key: it checks and hashes the key before
// taking the lock, and gives op the hash and the clock the write judges expiry by.
func (s *Store) writeKey(key []byte, op func(h uint64, now int64) (bool, error)) (ok bool, err error) {
	if err := s.checkKey(key); err != nil {
		return false, err
	}
	h := s.hash(key)
	err = s.write(func() error {
		ok, err = op(h, s.tick())
		return err
	})
	return ok, err
}

// set is Set with mu held.
func (s *Store) set(h uint64, key, value []byte, opt SetOptions, now int64) (bool, error) {
	return s.setTyped(h, key, value, typeString, opt, now)
}

// setTyped stores value as an entry of value type typ (w0's type bits): a string, or
// the encoding of another type (hash.go). Caller holds mu.
func (s *Store) setTyped(h uint64, key, value []byte, typ uint64, opt SetOptions, now int64) (bool, error) {
	so, e, found := s.idx.find(h, key)
	if found && s.expired(e, now) {
		s.removeEntry(h, so, e, &s.expirations)
		found = false
	}
	switch {
	case opt.Cond == IfAbsent && found, opt.Cond == IfPresent && !found:
		return false, nil
	}
	var oldExp uint64
	if found {
		oldExp = s.v.m.load(e+8) & w1ExpMask
	}
	exp, err := s.expiry(opt, now, oldExp)
	if err != nil {
		return false, err
	}
	if exp != 0 && exp <= now {
		if found {
			s.removeEntry(h, so, e, &s.deletes)
		}
		s.sets.Add(1)
		return true, nil
	}
	units, _ := entryUnits(len(key), len(value))
	m := &s.v.m
	if found {
		if pad, ok := fitsInPlace(m.load(e), len(key), len(value)); ok {
			// The block still fits: rewrite it in place while its bucket is odd.
			s.idx.touchBucket(so, func() {
				m.store(e, w0Pack(w0Size(m.load(e)), len(key), pad, kindEntry)|typ<<w0TypeShift)
				w1 := m.load(e + 8)
				m.store(e+8, w1&^w1ExpMask|uint64(exp))
				copy(m.bytes(e+entryHeader+uint64(len(key)), uint64(len(value))), value)
			})
			s.countExpiring(int64(oldExp), exp)
			s.pol.access(e, h>>32, 1)
			s.sets.Add(1)
			return true, nil
		}
	}
	if !found {
		if err := s.ensureSlot(h); err != nil {
			return false, err
		}
	}
	ne, got, err := s.allocBlock(units)
	if err != nil {
		return false, err
	}
	pad := int(got*unit) - entryHeader - len(key) - len(value)
	m.store(ne, w0Pack(got, len(key), pad, kindEntry)|typ<<w0TypeShift)
	m.store(ne+8, uint64(exp))
	m.put(ne+16, 0)
	copy(m.bytes(ne+entryHeader, uint64(len(key))), key)
	copy(m.bytes(ne+entryHeader+uint64(len(key)), uint64(len(value))), value)
	// Evictions while allocating may have removed the old entry or moved its slot.
	if found {
		so, e, found = s.idx.find(h, key)
	}
	if found {
		s.idx.replace(so, ne)
		s.pol.replace(e, ne, h>>32)
		s.entryBytes -= w0Size(m.load(e)) * unit
		s.countExpiring(int64(m.load(e+8)&w1ExpMask), exp)
		s.al.release(e)
	} else {
		s.countExpiring(0, exp)
		if err := s.idx.insert(h, ne); err != nil {
			// ensureSlot made room and evictions only free slots; this is a bug, not a
			// condition, but the block must not leak.
			s.al.release(ne)
			return false, fmt.Errorf("store: index: %w", err)
		}
		s.pol.add(ne, h>>32)
		s.entries.Add(1)
	}
	s.entryBytes += got * unit
	s.sets.Add(1)
	if !s.weighted {
		s.evictToCount()
	}
	s.updateUsed()
	return true, nil
}

// fitsInPlace reports whether an entry with these lengths fits the block whose w0 is
// given, and the padding it would leave there.
func fitsInPlace(w0 uint64, klen, vlen int) (int, bool) {
	pad := int(w0Size(w0)*unit) - entryHeader - klen - vlen
	return pad, pad >= 0 && pad <= w0PadMask
}

// Delete removes key and reports whether it was there.
func (s *Store) Delete(key []byte) (bool, error) {
	return s.writeKey(key, func(h uint64, now int64) (bool, error) {
		return s.delete(h, key, now), nil
	})
}

func (s *Store) delete(h uint64, key []byte, now int64) bool {
	so, e, ok := s.idx.find(h, key)
	if !ok {
		return false
	}
	if s.expired(e, now) {
		s.removeEntry(h, so, e, &s.expirations)
		return false
	}
	s.removeEntry(h, so, e, &s.deletes)
	return true
}

// Item is one entry of SetMany.
type Item struct {
	Key, Value []byte
	Options    SetOptions
}

// SetMany stores items under one acquisition of the write lock. It returns nil if
// every item was stored, or a slice aligned with items holding each item's error.
// Items whose condition was not met get no error; stored reports them.
func (s *Store) SetMany(items []Item, stored []bool) []error {
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(items))
		}
		errs[i] = err
	}
	hashes := make([]uint64, len(items))
	for i, it := range items {
		if err := s.checkSet(it.Key, it.Value, it.Options); err != nil {
			fail(i, err)
		} else {
			hashes[i] = s.hash(it.Key)
		}
	}
	err := s.write(func() error {
		now := s.tick()
		for i, it := range items {
			if errs != nil && errs[i] != nil {
				continue
			}
			ok, err := s.set(hashes[i], it.Key, it.Value, it.Options, now)
			if err != nil {
				fail(i, err)
			}
			if stored != nil {
				stored[i] = ok
			}
		}
		return nil
	})
	if err != nil {
		for i := range items {
			fail(i, err)
		}
	}
	return errs
}

// Clear removes every entry.
func (s *Store) Clear() {
	_ = s.write(func() error { s.clear(); return nil }) // a closed store has nothing to clear
}

func (s *Store) clear() {
	var es []uint64
	s.idx.forEachSlot(func(so, slot uint64) { es = append(es, slot&0xffffffff*unit) })
	for _, e := range es {
		s.dropEntry(e, &s.deletes)
	}
}
