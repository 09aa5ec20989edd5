package store

import (
	"math/rand/v2"
	"sync/atomic"
)

// Eviction policies work on entries in place: an entry's queue is two bits of its w1 and
// its list links are its w2, so a policy adds no memory per entry beyond the header.
// Only the writer calls them, with the store's lock held.

const (
	qNone = iota
	qWindow
	qProbation
	qProtected
)

type policy interface {
	// add links a new entry; access records n hits; remove unlinks an entry that leaves
	// the store; replace puts e in the place of old (an overwrite that moved the entry).
	// tag is the top 32 bits of the entry's key hash.
	add(e, tag uint64)
	access(e, tag uint64, n int)
	remove(e uint64)
	replace(old, e, tag uint64)
	// victim names the entry to evict next, or ok == false when there is none. The
	// store evicts it, which calls remove.
	victim() (e uint64, ok bool)
	// beginEviction starts a run of victim calls made to fit one write.
	beginEviction()
	// maintain adapts the policy after a batch of accesses.
	maintain()
	// hottest calls fn for entries from the most to the least valuable until it returns
	// false.
	hottest(fn func(e uint64) bool)
	setMaximum(max uint64)
	reset()
}

// lists is the shared doubly-linked-list machinery over entry headers.
type lists struct {
	m        *mem
	weighted bool // weights are block bytes; otherwise every entry weighs 1
}

type list struct {
	head, tail uint64 // head is the least recently used end; byte offsets, 0 if empty
	weight     uint64
	n          int
}

func (l *lists) weight(e uint64) uint64 {
	if l.weighted {
		return w0Size(l.m.load(e)) * unit
	}
	return 1
}

func (l *lists) prev(e uint64) uint64 { return l.m.get(e+16) & 0xffffffff * unit }
func (l *lists) next(e uint64) uint64 { return l.m.get(e+16) >> 32 * unit }

func (l *lists) setLinks(e, prev, next uint64) { l.m.put(e+16, next/unit<<32|prev/unit) }

func (l *lists) setPrev(e, prev uint64) {
	l.m.put(e+16, l.m.get(e+16)&^0xffffffff|prev/unit)
}

func (l *lists) setNext(e, next uint64) {
	l.m.put(e+16, l.m.get(e+16)&0xffffffff|next/unit<<32)
}

func (l *lists) queue(e uint64) int { return int(l.m.load(e+8) >> w1QueueShift & w1QueueMask) }

// setQueue rewrites w1 whole: readers load its expiry bits concurrently.
func (l *lists) setQueue(e uint64, q int) {
	w := l.m.load(e + 8)
	l.m.store(e+8, w&^(w1QueueMask<<w1QueueShift)|uint64(q)<<w1QueueShift)
}

func (l *lists) pushBack(q *list, e uint64) {
	l.setLinks(e, q.tail, 0)
	if q.tail != 0 {
		l.setNext(q.tail, e)
	} else {
		q.head = e
	}
	q.tail = e
	q.weight += l.weight(e)
	q.n++
}

func (l *lists) unlink(q *list, e uint64) {
	p, n := l.prev(e), l.next(e)
	if p != 0 {
		l.setNext(p, n)
	} else {
		q.head = n
	}
	if n != 0 {
		l.setPrev(n, p)
	} else {
		q.tail = p
	}
	q.weight -= l.weight(e)
	q.n--
}

func (l *lists) moveToBack(q *list, e uint64) {
	if q.tail == e {
		return
	}
	l.unlink(q, e)
	l.pushBack(q, e)
}

// swap puts e where old is in q.
func (l *lists) swap(q *list, old, e uint64) {
	p, n := l.prev(old), l.next(old)
	l.setLinks(e, p, n)
	if p != 0 {
		l.setNext(p, e)
	} else {
		q.head = e
	}
	if n != 0 {
		l.setPrev(n, e)
	} else {
		q.tail = e
	}
	q.weight = q.weight - l.weight(old) + l.weight(e)
}

// lru evicts the least recently used entry. With evict false it is noeviction: it keeps
// recency order (for hottest) but never names a victim.
type lru struct {
	lists
	q     list
	evict bool
}

func (p *lru) add(e, _ uint64)           { p.setQueue(e, qProbation); p.pushBack(&p.q, e) }
func (p *lru) access(e, _ uint64, _ int) { p.moveToBack(&p.q, e) }
func (p *lru) remove(e uint64)           { p.unlink(&p.q, e); p.setQueue(e, qNone) }
func (p *lru) replace(old, e, tag uint64) {
	p.setQueue(e, qProbation)
	p.swap(&p.q, old, e)
	p.access(e, tag, 1)
}
func (p *lru) beginEviction()    {}
func (p *lru) maintain()         {}
func (p *lru) setMaximum(uint64) {}
func (p *lru) reset()            { p.q = list{} }

func (p *lru) victim() (uint64, bool) {
	if !p.evict || p.q.head == 0 {
		return 0, false
	}
	return p.q.head, true
}

func (p *lru) hottest(fn func(e uint64) bool) {
	for e := p.q.tail; e != 0 && fn(e); e = p.prev(e) {
	}
}

// Tuning of the W-TinyLFU policy, as published for Caffeine (Einziger, Friedman, Manes,
// "TinyLFU: A Highly Efficient Cache Admission Policy", 2017).
const (
	protectedShare      = 0.80 // of the main space
	admitWarmThreshold  = 6    // a candidate this popular is sometimes admitted against a hotter victim
	queueTransferLimit  = 1000
	warmAdmissionChance = 128
	// windowMoveShift bounds how far the window's share moves per maintain: a sixteenth
	// of the maximum, so that the entries one eviction run moves from an oversized window
	// to probation stay a bounded share of the cache.
	windowMoveShift = 4
)

// tinyLFU is cachee-lfu: an LRU window in front of a segmented LRU main space, with
// entry to the main space decided by the frequency sketch. The window's share of the
// space is what the shadows (shadow.go) find best for the workload: a small window
// favours frequency, a large one recency.
type tinyLFU struct {
	lists
	sk                             *sketch
	tagOf                          func(e uint64) uint64
	window, probation, protected   list
	maximum, windowMax, protectMax uint64

	cand uint64 // next candidate to judge in this eviction run; 0 if none

	tuner     windowTuner
	windowPPM atomic.Uint64 // windowMax per million of maximum, for the metrics
	rnd       *rand.Rand
}

// newTinyLFU makes the policy; the sketch ages itself, so the sample size is unused.
func newTinyLFU(l lists, sk *sketch, tagOf func(uint64) uint64, _ func() uint64, seed uint64) *tinyLFU {
	p := &tinyLFU{lists: l, sk: sk, tagOf: tagOf, rnd: rand.New(rand.NewPCG(seed, seed^0x5deece66d))}
	p.tuner.init(sk)
	return p
}

// setMaximum keeps the window's share of the space: the tuner chose it for the workload,
// not for a size.
func (p *tinyLFU) setMaximum(max uint64) {
	if max == p.maximum {
		return
	}
	p.maximum = max
	p.windowMax = min(p.windowMax, max)
	p.setWindow(p.tuner.fraction())
	p.setProtectMax()
}

// setWindow makes the window target the given share of the maximum, moving at most a
// sixteenth of the maximum at once. A window over its share passes its oldest entries to
// probation at the next eviction; one under it fills with new entries as the main space
// gives up its victims; the protected space's overflow is demoted.
func (p *tinyLFU) setWindow(fraction float64) {
	target := max(1, uint64(fraction*float64(p.maximum)))
	if target == p.windowMax {
		return
	}
	step := max(1, p.maximum>>windowMoveShift)
	switch {
	case p.windowMax == 0:
		p.windowMax = min(target, p.maximum)
	case target > p.windowMax:
		p.windowMax = min(target, p.windowMax+step)
	case target < p.windowMax:
		p.windowMax = max(target, p.windowMax-min(step, p.windowMax))
	}
	p.setProtectMax()
}

func (p *tinyLFU) setProtectMax() {
	p.protectMax = uint64(protectedShare * float64(p.maximum-p.windowMax))
	if p.maximum > 0 {
		p.windowPPM.Store((p.windowMax*1_000_000 + p.maximum/2) / p.maximum)
	}
}

func (p *tinyLFU) reset() {
	p.window, p.probation, p.protected = list{}, list{}, list{}
	p.cand = 0
	p.tuner.init(p.sk)
	p.windowMax = 0
	p.setWindow(p.tuner.fraction())
}

func (p *tinyLFU) listOf(q int) *list {
	switch q {
	case qWindow:
		return &p.window
	case qProbation:
		return &p.probation
	case qProtected:
		return &p.protected
	}
	return nil
}

func (p *tinyLFU) add(e, tag uint64) {
	p.sk.increment(tag)
	p.tuner.record(tag)
	p.setQueue(e, qWindow)
	p.pushBack(&p.window, e)
}

func (p *tinyLFU) access(e, tag uint64, n int) {
	for range min(n, 16) {
		p.sk.increment(tag)
	}
	p.tuner.record(tag)
	switch p.queue(e) {
	case qWindow:
		p.moveToBack(&p.window, e)
	case qProbation:
		// Promote; protected's overflow is demoted in maintain.
		p.detach(&p.probation, e)
		p.setQueue(e, qProtected)
		p.pushBack(&p.protected, e)
	case qProtected:
		p.moveToBack(&p.protected, e)
	}
}

// detach unlinks e from q, first moving the candidate cursor past it.
func (p *tinyLFU) detach(q *list, e uint64) {
	if e == p.cand {
		p.cand = p.next(e)
	}
	p.unlink(q, e)
}

func (p *tinyLFU) remove(e uint64) {
	if q := p.listOf(p.queue(e)); q != nil {
		p.detach(q, e)
	}
	p.setQueue(e, qNone)
}

func (p *tinyLFU) replace(old, e, tag uint64) {
	q := p.queue(old)
	p.setQueue(e, q)
	if old == p.cand {
		p.cand = e
	}
	if l := p.listOf(q); l != nil {
		p.swap(l, old, e)
	}
	p.access(e, tag, 1)
}

// beginEviction moves the window's overflow to the probation space; the first entry
// moved is the first candidate for admission.
func (p *tinyLFU) beginEviction() {
	p.cand = 0
	for p.window.weight > p.windowMax && p.window.head != 0 {
		e := p.window.head
		p.unlink(&p.window, e)
		p.setQueue(e, qProbation)
		p.pushBack(&p.probation, e)
		if p.cand == 0 {
			p.cand = e
		}
	}
}

func (p *tinyLFU) victim() (uint64, bool) {
	cand := p.cand
	if cand == 0 && p.window.weight >= p.windowMax {
		// No entry came from the window this run: the window's oldest competes. A window
		// under its share (growing) gives up nothing: the main space's victim goes.
		cand = p.window.head
	}
	// The victim is the oldest of probation, else of protected, else of the window.
	victim := p.probation.head
	if victim == 0 {
		victim = p.protected.head
	}
	if victim == 0 && p.window.head != cand {
		victim = p.window.head
	}
	switch {
	case victim == 0 && cand == 0:
		return 0, false
	case victim == 0:
		return cand, true
	case cand == 0 || cand == victim:
		return victim, true
	}
	if p.admit(p.tagOf(cand), p.tagOf(victim)) {
		// The candidate stays; the next one is judged against the next victim.
		if cand == p.cand {
			p.cand = p.next(cand)
		} else {
			// Admitted straight from the window.
			p.unlink(&p.window, cand)
			p.setQueue(cand, qProbation)
			p.pushBack(&p.probation, cand)
		}
		return victim, true
	}
	return cand, true
}

func (p *tinyLFU) admit(cand, victim uint64) bool {
	vf := p.sk.frequency(victim)
	cf := p.sk.frequency(cand)
	if cf > vf {
		return true
	}
	// A hot candidate losing to a hotter victim is how an attacker pins the main space;
	// admitting warm candidates now and then breaks that at little cost to the hit rate.
	return cf >= admitWarmThreshold && p.rnd.IntN(warmAdmissionChance) == 0
}

// maintain lets the tuner judge the shadows when it has seen enough accesses, and moves
// the window toward the share it chose.
func (p *tinyLFU) maintain() {
	entries := uint64(p.window.n + p.probation.n + p.protected.n)
	p.tuner.judge(entries, p.used(), p.maximum)
	p.setWindow(p.tuner.fraction())
	p.demote()
}

func (p *tinyLFU) demote() {
	for i := 0; i < queueTransferLimit && p.protected.weight > p.protectMax && p.protected.head != 0; i++ {
		e := p.protected.head
		p.unlink(&p.protected, e)
		p.setQueue(e, qProbation)
		p.pushBack(&p.probation, e)
	}
}

func (p *tinyLFU) used() uint64 { return p.window.weight + p.probation.weight + p.protected.weight }

func (p *tinyLFU) hottest(fn func(e uint64) bool) {
	for e := p.protected.tail; e != 0; e = p.prev(e) {
		if !fn(e) {
			return
		}
	}
	// Then probation and window, most frequent first among their recent ends.
	a, b := p.probation.tail, p.window.tail
	for a != 0 || b != 0 {
		var e uint64
		switch {
		case a == 0:
			e, b = b, p.prev(b)
		case b == 0:
			e, a = a, p.prev(a)
		case p.sk.frequency(p.tagOf(a)) >= p.sk.frequency(p.tagOf(b)):
			e, a = a, p.prev(a)
		default:
			e, b = b, p.prev(b)
		}
		if !fn(e) {
			return
		}
	}
}

// WindowShare is the share of the space that cachee-lfu gives its recency window now
// (from the smallest of WindowShares when frequency pays to the largest when recency
// does), and false under another policy. It moves towards the share the policy's
// shadows found best.
func (s *Store) WindowShare() (float64, bool) {
	p, ok := s.pol.(*tinyLFU)
	if !ok {
		return 0, false
	}
	return float64(p.windowPPM.Load()) / 1e6, true
}
