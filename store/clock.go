package store

import (
	"time"
)

// The store's clock. Everything that decides by the time (a TTL set or answered,
// EXPIRE and its conditions, a write meeting an expired entry, the sweep) reads real
// time when it runs: now, truncated to the millisecond, so it is never behind real
// time by a millisecond or more. Lock-free reads, here and in other processes, apply
// the segment's expiry rule (view.expired): the clock published in the header decides
// for deadlines more than nearMillis from it, and real time is read only near one.

// now is the store's clock: the wall clock, or the test clock.
func (s *Store) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// nowWrite is the store's clock in unix ms, for everything but lock-free reads.
func (s *Store) nowWrite() int64 { return s.now().UnixMilli() }

// publishClock moves the header clock forward to ms; it never moves it back.
func (s *Store) publishClock(ms int64) {
	if int64(s.v.m.load(hdrClock)) < ms {
		s.v.m.store(hdrClock, uint64(ms))
	}
}

// tick reads the clock for a write and publishes it, so that the header clock is
// fresh whenever the store is written. Caller holds mu.
func (s *Store) tick() int64 {
	now := s.nowWrite()
	s.publishClock(now)
	return now
}

// clockTick is how often the background loop publishes the clock when nothing writes.
// It bounds how far the header clock lags real time (plus scheduling delays), which
// only needs to stay well under MaxReaderLag: the expiry rule reads real time near a
// deadline whatever the lag. 25 ms costs an idle sidecar almost no CPU.
// maintainTick is how often buffered reads reach the policy and expired entries are
// reclaimed.
const (
	clockTick    = 25 * time.Millisecond
	maintainTick = 100 * time.Millisecond
)

// background publishes the clock and, every maintainTick, feeds buffered reads to the
// policy, adapts it, and reclaims expired entries.
func (s *Store) background() {
	defer close(s.done)
	t := time.NewTicker(clockTick)
	defer t.Stop()
	lastMaintain := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		if s.clock == nil {
			s.publishClock(now.UnixMilli())
		}
		if now.Sub(lastMaintain) >= maintainTick && s.cfg.Repeatable == nil {
			lastMaintain = now
			s.maintain()
		}
	}
}

// Maintain runs the background loop's periodic work now: a store opened with
// Config.Repeatable runs it only when called.
func (s *Store) Maintain() { s.maintain() }

// maintain is the background loop's periodic work under the write lock: adapt the
// policy, grow the sketch to the entries, reclaim expired entries.
func (s *Store) maintain() {
	_ = s.write(func() error { // only ErrClosed: nothing left to maintain
		s.pol.maintain()
		s.growSketch()
		s.sweep()
		return nil
	})
}
