package store

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// readBuffer carries hits from lock-free readers to the policy, which only the writer
// may change. Readers append the slot word of what they read to a ring; the writer
// drains the rings under its lock. A full ring drops the record: the policy learns from
// a sample, while the hit and miss counters beside each ring stay exact. Caffeine buffers
// reads the same way.
//
// It starts with one ring and doubles the rings in use when readers collide, each
// goroutine keeping to one of them (pick), so cores under load rarely share one. Order matters to the
// policy (LRU queues), and one ring keeps an uncontended reader's hits in order.
type readBuffer struct {
	stripes []stripe
	active  atomic.Uint32 // rings in use, a power of two
}

// ringSize is the records one ring holds. When a ring fills, the reader that found it
// full drains every ring (if the write lock is free), so a long run of reads without
// writes costs one drain per ringSize hits.
const ringSize = 1024

// stripe is one ring and its counters. What a reader touches for a hit, the counters and
// the limit it checks, share one cache line; the writer writes head there once a drain.
type stripe struct {
	tail   atomic.Uint64 // records accepted, which is also hits recorded here
	head   atomic.Uint64 // records drained; written by the writer only
	extra  atomic.Uint64 // hits that found the ring full or raced for a slot
	misses atomic.Uint64
	_      [cacheLine - 32]byte
	ring   [ringSize]atomic.Uint64
}

func newReadBuffer() *readBuffer {
	n := 4 * runtime.GOMAXPROCS(0)
	n = 1 << bits.Len(uint(n-1))
	n = min(n, 64)
	b := &readBuffer{stripes: make([]stripe, n)}
	b.active.Store(1)
	return b
}

// pick is the ring the calling goroutine records in: the first while readers have not
// contended, then one chosen by the address of the goroutine's stack, so that a
// goroutine keeps to one ring (its hits stay in order, its ring stays in its core's
// cache) and goroutines spread over the rings in use. A random pick per hit cost a
// third of a Get.
func (b *readBuffer) pick() *stripe {
	n := b.active.Load()
	if n == 1 {
		return &b.stripes[0]
	}
	return &b.stripes[StackHash()&(n-1)]
}

// StackHash mixes the address of a local variable of the calling goroutine: it differs
// between goroutines and costs nothing to read, so readers that pick a stripe by its low
// bits mostly land on different ones. Goroutine stacks start at 2 KiB and sit at
// regular distances, so the address is mixed fully (SplitMix64's finalizer): a shift
// and one multiply left the low bits equal for some distances every time (two new
// goroutines shared a stripe 200 times in 200).
func StackHash() uint32 {
	var x byte
	h := uint64(uintptr(unsafe.Pointer(&x))) >> 11
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return uint32(h ^ h>>31)
}

// contended spreads readers over twice as many rings.
func (b *readBuffer) contended() {
	if n := b.active.Load(); int(n) < len(b.stripes) {
		b.active.CompareAndSwap(n, n*2)
	}
}

// hit records a read of the entry in slot word s, and counts it. It returns false when
// the ring was full, which asks the caller to drain soon.
//
// A ring slot keeps its record after a drain, so a reader that reads the key its slot
// already names (a hot key, a lap later) stores nothing: one atomic write per hit, the
// claim, on the stripe's counter line.
func (b *readBuffer) hit(s uint64) bool {
	st := b.pick()
	t := st.tail.Load()
	if t-st.head.Load() >= ringSize {
		st.extra.Add(1)
		return false
	}
	if !st.tail.CompareAndSwap(t, t+1) {
		st.extra.Add(1)
		b.contended()
		return true
	}
	if slot := &st.ring[t%ringSize]; slot.Load() != s {
		slot.Store(s)
	}
	return true
}

func (b *readBuffer) miss() { b.pick().misses.Add(1) }

// countHit counts a hit whose record the caller delivers itself.
func (b *readBuffer) countHit() { b.pick().extra.Add(1) }

// drain hands every buffered record to fn, runs of one record folded into one call
// with their count (a hot key fills the ring with the same record). Writer only.
func (b *readBuffer) drain(fn func(s uint64, n int)) {
	var run uint64
	n := 0
	for i := range b.stripes {
		st := &b.stripes[i]
		t := st.tail.Load()
		if t == st.head.Load() {
			continue
		}
		for h := st.head.Load(); h < t; h++ {
			// A reader that won the slot may not have stored yet: the slot still holds
			// the record of a lap before, which the policy then counts once more (it
			// learns from a sample; recordRef checks every record against the index).
			s := st.ring[h%ringSize].Load()
			if s == 0 {
				continue
			}
			if s != run && n > 0 {
				fn(run, n)
				n = 0
			}
			run = s
			n++
		}
		st.head.Store(t)
	}
	if n > 0 {
		fn(run, n)
	}
}

func (b *readBuffer) counts() (hits, misses uint64) {
	for i := range b.stripes {
		hits += b.stripes[i].tail.Load() + b.stripes[i].extra.Load()
		misses += b.stripes[i].misses.Load()
	}
	return hits, misses
}
