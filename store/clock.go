package store

import (
	"time"
)

// now is the writer's clock: exact.
func (s *Store) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

func (s *Store) nowWrite() int64 { return s.now().UnixMilli() }

// nowRead is the readers' clock: the one the writer publishes in the header, unless a
// test clock is set.
func (s *Store) nowRead() int64 {
	if s.clock != nil {
		return s.clock().UnixMilli()
	}
	return int64(s.v.m.load(hdrClock))
}

func (s *Store) publishClock(ms int64) {
	if int64(s.v.m.load(hdrClock)) < ms {
		s.v.m.store(hdrClock, uint64(ms))
	}
}

// tick returns the clock a write judges expiry by: the readers' clock, so that the
// writer and every reader agree on what has expired. A test clock is published first.
// Caller holds mu.
func (s *Store) tick() int64 {
	if s.clock != nil {
		s.publishClock(s.nowWrite())
	} else if s.idle.Load() {
		s.wake()
	}
	return int64(s.v.m.load(hdrClock))
}

// Clock rates. While the store is busy the readers' clock advances every millisecond,
// so expiry is exact to the millisecond; after idleAfter without an operation it
// advances every idleTick, so an idle sidecar costs almost no CPU. The first operation
// in this process after a quiet spell sets the clock itself (wake), so only readers in
// other processes ever see the coarser clock, and only until their reported hits wake
// the store.
const (
	busyTick     = time.Millisecond
	idleTick     = 25 * time.Millisecond
	idleAfter    = 100 * time.Millisecond
	maintainTick = 100 * time.Millisecond
)

// background advances the readers' clock and, every maintainTick, feeds buffered reads
// to the policy, adapts it, and reclaims expired entries.
func (s *Store) background() {
	defer close(s.done)
	t := time.NewTimer(busyTick)
	defer t.Stop()
	var lastOps uint64
	lastActive, lastMaintain := time.Now(), time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wakeCh:
		case <-t.C:
		}
		now := time.Now()
		if s.clock == nil {
			s.publishClock(now.UnixMilli())
		}
		// Deciding "idle" and waking take idleMu, so a wake that races the decision
		// (an operation under way but not counted yet) is never overwritten.
		s.idleMu.Lock()
		if ops := s.ops(); ops != lastOps || s.woken {
			lastOps, lastActive, s.woken = ops, now, false
		}
		idle := now.Sub(lastActive) > idleAfter
		s.idle.Store(idle)
		s.idleMu.Unlock()
		if now.Sub(lastMaintain) >= maintainTick {
			lastMaintain = now
			s.maintain()
		}
		t.Stop()
		select {
		case <-t.C:
		default:
		}
		if idle {
			t.Reset(idleTick)
		} else {
			t.Reset(busyTick)
		}
	}
}

// ops counts operations, for telling a busy store from an idle one.
func (s *Store) ops() uint64 {
	hits, misses := s.rb.counts()
	return hits + misses + s.sets.Load() + s.deletes.Load() + s.sdk.Load()
}

// wake brings the clock up to date after a quiet spell and returns the background loop
// to the busy rate.
func (s *Store) wake() {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if !s.idle.Load() {
		return
	}
	s.idle.Store(false)
	s.woken = true
	if s.clock == nil {
		s.publishClock(time.Now().UnixMilli())
	}
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

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
