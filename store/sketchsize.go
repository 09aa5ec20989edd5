package store

import (
	"math/bits"
)

// initSketch sizes the sketch for the policy: MaxEntries, or what the arena could hold
// at a typical entry size, and grows it (growSketch) as entries arrive.
func (s *Store) initSketch() error {
	if s.cfg.Eviction != EvictionLFU {
		return nil
	}
	capacity := uint64(1024)
	if !s.weighted {
		capacity = uint64(s.cfg.MaxEntries)
	}
	return s.placeSketch(capacity)
}

func (s *Store) placeSketch(capacity uint64) error {
	block, units, err := s.allocBlock(sketchBlockUnits(capacity))
	if err != nil {
		return err
	}
	m := &s.v.m
	m.store(block, w0Pack(units, 0, 0, kindSketch))
	m.store(block+8, 0)
	if old := s.sk.block; old != 0 {
		s.sysBytes -= w0Size(m.load(old)) * unit
		s.al.release(old)
	}
	s.sk.init(sketchAt(m, block, capacity), block, capacity)
	s.sysBytes += units * unit
	return nil
}

// growSketch resizes the sketch to the next power of two above the number of entries
// once they outnumber it. Caller holds mu.
func (s *Store) growSketch() {
	if s.cfg.Eviction != EvictionLFU || !s.weighted {
		return
	}
	n := uint64(s.entries.Load())
	if n <= s.sk.capacity {
		return
	}
	if err := s.placeSketch(uint64(1) << bits.Len64(n-1)); err != nil {
		s.log.Debug("sketch stays small", "err", err)
	}
	s.pol.setMaximum(s.maximum())
}
