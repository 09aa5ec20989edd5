package store

import (
	"fmt"
	"sync/atomic"
)

// maximum is what the policy may hold: entries, or bytes the arena has for entries.
func (s *Store) maximum() uint64 {
	if !s.weighted {
		return uint64(s.cfg.MaxEntries)
	}
	return s.al.capacity() - s.sysBytes
}

func (s *Store) updateUsed() {
	s.used.Store(s.fixedBytes + s.sysBytes + s.entryBytes)
}

// ensureSlot makes sure the index table that h falls in can take one more entry,
// splitting it if needed.
func (s *Store) ensureSlot(h uint64) error {
	for {
		t := s.idx.tableOf(h)
		if t.count < s.idx.maxCount && s.idx.hasRoom(t, h) {
			return nil
		}
		if !s.idx.canSplit(h) {
			// The directory is as deep as the segment allows: make room in the window.
			return s.evictFromWindow(h)
		}
		block, payload, ok := s.allocTable()
		if !ok {
			return fmt.Errorf("%w: no room to grow the index", ErrOutOfMemory)
		}
		dropped := s.idx.split(h, block, payload, s.hashOf)
		for _, e := range dropped {
			s.dropEntry(e, &s.evictions)
		}
		s.pol.setMaximum(s.maximum())
	}
}

// evictFromWindow evicts the entry in h's probe window that the policy values least.
func (s *Store) evictFromWindow(h uint64) error {
	if s.cfg.Eviction == EvictionNone {
		return fmt.Errorf("%w: index full", ErrOutOfMemory)
	}
	var victim uint64
	s.idx.forWindow(h, func(so, slot uint64) {
		if victim == 0 {
			victim = slot & 0xffffffff * unit
		}
	})
	if victim == 0 {
		return fmt.Errorf("%w: index full", ErrOutOfMemory)
	}
	vh := s.hashOf(victim)
	so, _ := s.idx.findEntry(vh, victim)
	s.removeEntry(vh, so, victim, &s.evictions)
	return nil
}

// allocTable allocates and zeroes a block for an index table.
func (s *Store) allocTable() (block, payload uint64, ok bool) {
	block, units, err := s.allocBlock(tableBlockUnits(s.v.nbLog2))
	if err != nil {
		return 0, 0, false
	}
	m := &s.v.m
	m.store(block, w0Pack(units, 0, 0, kindTable))
	m.store(block+8, 0)
	payload = tablePayload(block)
	m.store(payload-8, block)
	clear(m.bytes(payload, bucketBytes<<s.v.nbLog2))
	s.sysBytes += units * unit
	return block, payload, true
}

// allocBlock allocates at least units units, evicting as the policy decides until they
// fit, and returns the block and its size (a little more than asked when the rest was
// too small to split off). Caller holds mu.
//
// Eviction frees a victim's block merged with its free neighbours. When that hole is
// large enough it is used at once. When memory is free overall but scattered, the hole
// around the last victim grows over its physical neighbours instead: evicting more
// policy victims, scattered as they are, would empty the cache long before two of them
// happened to sit side by side.
func (s *Store) allocBlock(units uint64) (uint64, uint64, error) {
	if off, got, ok := s.al.alloc(units); ok {
		return off, got, nil
	}
	s.pol.beginEviction()
	for {
		e, ok := s.pol.victim()
		if !ok {
			// Policies without a victim (noeviction) still drop what has expired.
			if _, n := s.sweepStep(1 << 16); n == 0 {
				return 0, 0, ErrOutOfMemory
			}
			if off, got, ok := s.al.alloc(units); ok {
				return off, got, nil
			}
			continue
		}
		hole, size := s.dropEntry(e, &s.evictions)
		if size < units && s.al.free >= units*unit {
			hole, size = s.growHole(hole, units)
		}
		if size >= units {
			off, got := s.al.take(hole, size, units)
			return off, got, nil
		}
		if off, got, ok := s.al.alloc(units); ok {
			return off, got, nil
		}
	}
}

// growHole evicts the entries that follow the free block at hole until it spans units,
// stopping at an index table, the sketch or the arena's end. It returns the free block
// that now holds hole.
func (s *Store) growHole(hole, units uint64) (uint64, uint64) {
	m := &s.v.m
	size := w0Size(m.load(hole))
	for size < units {
		next := hole + size*unit
		w0 := m.load(next)
		if w0&w0Free != 0 || w0Kind(w0) != kindEntry {
			break // a free block would have merged; anything else cannot move
		}
		hole, size = s.dropEntry(next, &s.evictions)
	}
	return hole, size
}

// dropEntry removes the entry at e from the index, the policy and the arena, counting
// it in c (evictions, expirations or deletes).
// It returns the free block, merged with its neighbours, that now holds e.
func (s *Store) dropEntry(e uint64, c *atomic.Uint64) (uint64, uint64) {
	h := s.hashOf(e)
	so, ok := s.idx.findEntry(h, e)
	if !ok {
		// Not indexed (a split could not place it): only the policy and arena hold it.
		s.pol.remove(e)
		s.entryBytes -= w0Size(s.v.m.load(e)) * unit
		s.countExpiring(int64(s.v.m.load(e+8)&w1ExpMask), 0)
		s.entries.Add(-1)
		c.Add(1)
		return s.al.release(e)
	}
	return s.removeEntry(h, so, e, c)
}

func (s *Store) removeEntry(h, so, e uint64, c *atomic.Uint64) (uint64, uint64) {
	if c == &s.evictions && s.expired(e, s.nowWrite()) {
		c = &s.expirations
	}
	s.countExpiring(int64(s.v.m.load(e+8)&w1ExpMask), 0)
	s.idx.remove(h, so)
	s.pol.remove(e)
	s.entryBytes -= w0Size(s.v.m.load(e)) * unit
	s.entries.Add(-1)
	c.Add(1)
	hole, size := s.al.release(e)
	s.updateUsed()
	return hole, size
}

// evictToCount evicts until the entry count is within MaxEntries.
func (s *Store) evictToCount() {
	if s.entries.Load() <= int64(s.cfg.MaxEntries) {
		return
	}
	s.pol.beginEviction()
	for s.entries.Load() > int64(s.cfg.MaxEntries) {
		e, ok := s.pol.victim()
		if !ok {
			return
		}
		s.dropEntry(e, &s.evictions)
	}
}
