package cachee

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

// ringSlots is the size of one stripe of the access buffer. With a flush every 50ms a
// stripe holds up to ringSlots hits; beyond that the oldest are overwritten. That
// loss is on purpose: the sidecar's policy needs a fair sample of the hot keys, not
// every hit, and reporting every hit of a 30 ns read loop would cost the sidecar more
// than the reads themselves.
const ringSlots = 256

// maxStripes keeps a flush within the RecordAccess limit of 65536 refs.
const maxStripes = 64

// stripe is one lossy ring. Writers claim a position with one atomic add and store the
// ref there; the flusher takes what it finds. Each stripe sits on its own cache lines
// so that goroutines on different cores do not share a counter.
type stripe struct {
	head  atomic.Uint64 // positions claimed; the sum over stripes is the hit count
	_     [56]byte
	slots [ringSlots]uint64 // atomic access only
	tail  uint64            // the flusher's position; only the flusher uses it
	_     [56]byte
}

// accessBuffer collects the refs of shared-memory hits until the flusher reports them
// with RecordAccess. Recording never blocks and never allocates.
type accessBuffer struct {
	stripes []stripe
	mask    uint32
	full    chan struct{} // a stripe filled up: flush early
	dropped atomic.Uint64 // refs overwritten before a flush, or lost with a failed flush
	sent    atomic.Uint64 // refs the sidecar accepted
	// accounted is the hit count up to the positions the last drain read; only the
	// flusher uses it.
	accounted uint64
}

// stripesPerCPU: readers pick a stripe by their stack's address, not by the CPU they
// run on, so two readers share one with a chance of one in the stripe count; with two
// per CPU that was one run in four of bench/shmfloor's two-goroutine reads, at a
// fifth of the speed. A stripe is 2 KiB.
const stripesPerCPU = 8

func newAccessBuffer() *accessBuffer {
	n := 1
	for n < stripesPerCPU*runtime.GOMAXPROCS(0) && n < maxStripes {
		n *= 2
	}
	return &accessBuffer{stripes: make([]stripe, n), mask: uint32(n - 1), full: make(chan struct{}, 1)}
}

// record notes one hit. The stripe is picked by the address of the caller's stack,
// which differs between goroutines and costs nothing to read: concurrent readers of
// one hot key mostly land on different stripes, and one goroutine keeps to one stripe
// (a random pick cost a third of a hit).
func (a *accessBuffer) record(ref uint64) {
	s := &a.stripes[store.StackHash()&a.mask]
	i := s.head.Add(1) - 1
	// A hot key writes the ref its slot already holds from the last lap: skip that
	// store (an atomic store is a locked instruction on amd64, as costly as the add).
	if slot := &s.slots[i%ringSlots]; atomic.LoadUint64(slot) != ref {
		atomic.StoreUint64(slot, ref)
	}
	if i%(ringSlots/2) == ringSlots/2-1 {
		a.flushSoon()
	}
}

// flushSoon asks the flusher to report now: a stripe is half full. It is apart from
// record so that record, on every hit's path, is small enough to be inlined.
func (a *accessBuffer) flushSoon() {
	select {
	case a.full <- struct{}{}:
	default:
	}
}

// hits is the number of hits recorded so far.
func (a *accessBuffer) hits() uint64 {
	var n uint64
	for i := range a.stripes {
		n += a.stripes[i].head.Load()
	}
	return n
}

// drain appends the refs recorded since the last drain to dst, and reports the hits
// recorded since then that they do not name (hits whose refs were overwritten, or
// not yet stored): the refs and that count add up to exactly the hits recorded up to
// the positions drain read. Only the flusher calls it. A writer that claimed a
// position but has not stored its ref yet leaves a zero, which is skipped: its ref is
// picked up a lap later, or lost, and its hit is counted here either way.
func (a *accessBuffer) drain(dst []uint64) (refs []uint64, unnamed uint64) {
	n0 := len(dst)
	var heads uint64
	for i := range a.stripes {
		s := &a.stripes[i]
		h := s.head.Load()
		heads += h
		t := s.tail
		if h-t > ringSlots {
			a.dropped.Add(h - t - ringSlots)
			t = h - ringSlots
		}
		for ; t < h; t++ {
			if ref := atomic.SwapUint64(&s.slots[t%ringSlots], 0); ref != 0 {
				dst = append(dst, ref)
			}
		}
		s.tail = h
	}
	// Counted from the heads read above, not read again: a hit recorded since would
	// be counted now and its ref sent next time, twice.
	unnamed = heads - a.accounted - uint64(len(dst)-n0)
	a.accounted = heads
	return dst, unnamed
}

// flushLoop reports shared-memory hits every flush interval, or sooner when a stripe
// fills, but never more often than five times an interval, so that a hot read loop
// costs the sidecar a bounded number of calls.
func (c *Client) flushLoop(ctx context.Context) {
	defer c.done.Done()
	t := time.NewTicker(c.opts.flushInterval)
	defer t.Stop()
	minGap := c.opts.flushInterval / 5
	var buf []uint64
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.acc.full:
			if wait := minGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		fctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
		buf = c.flush(fctx, buf[:0])
		cancel()
	}
}

// flush sends the buffered refs, and the count of hits since the last flush that they
// do not name, so that the sidecar's hit count stays exact while its policy gets a
// sample; it returns buf for reuse.
func (c *Client) flush(ctx context.Context, buf []uint64) []uint64 {
	buf, unreported := c.acc.drain(buf[:0])
	if len(buf) == 0 && unreported == 0 {
		return buf
	}
	req := &cacheev1.RecordAccessRequest{Refs: buf, UnreportedHits: unreported}
	if _, err := c.rpc.RecordAccess(ctx, req); err != nil {
		// The sidecar is gone or restarting: these hits are lost, which costs the
		// policy a sample and nothing else.
		c.acc.dropped.Add(uint64(len(buf)))
		return buf
	}
	c.acc.sent.Add(uint64(len(buf)))
	return buf
}
