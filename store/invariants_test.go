package store

import (
	"fmt"
)

// checkInvariants verifies every structure of the segment against every other: the
// arena's physical chain, the allocator's lists, the index, the policy's lists and the
// store's counters. Tests call it between operations.
func (s *Store) checkInvariants() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.v.m
	a := s.al

	// 1. The physical chain of blocks.
	type info struct {
		kind uint64
		free bool
		size uint64
	}
	blocks := map[uint64]info{}
	var free, entryBytes, sysBytes uint64
	prevFree := false
	for b := s.v.lo; b < a.sentinel(); {
		w0 := m.load(b)
		size := w0Size(w0) * unit
		if size < minBlock || b+size > a.sentinel() {
			return fmt.Errorf("block %d: size %d out of bounds", b, size)
		}
		isFree := w0&w0Free != 0
		if got := m.load(b+8)&w1PrevFree != 0; got != prevFree {
			return fmt.Errorf("block %d: prevFree bit %v, previous block free %v", b, got, prevFree)
		}
		if isFree {
			if prevFree {
				return fmt.Errorf("block %d: two free blocks in a row", b)
			}
			if m.load(b+size-8) != size/unit {
				return fmt.Errorf("free block %d: footer %d != size %d", b, m.load(b+size-8), size/unit)
			}
			free += size
		} else {
			switch w0Kind(w0) {
			case kindEntry:
				entryBytes += size
				klen, pad := w0Klen(w0), w0Pad(w0)
				if klen == 0 || uint64(entryHeader+klen+pad) > size {
					return fmt.Errorf("entry %d: klen %d pad %d size %d", b, klen, pad, size)
				}
			case kindTable, kindSketch:
				sysBytes += size
			default:
				return fmt.Errorf("block %d: kind %d", b, w0Kind(w0))
			}
		}
		blocks[b] = info{w0Kind(w0), isFree, size}
		prevFree = isFree
		b += size
	}
	if sw := m.load(a.sentinel()); w0Kind(sw) != kindSentinel {
		return fmt.Errorf("sentinel overwritten: %x", sw)
	}
	if free != a.free {
		return fmt.Errorf("free bytes: chain %d, allocator %d", free, a.free)
	}
	if entryBytes != s.entryBytes || sysBytes != s.sysBytes {
		return fmt.Errorf("bytes: chain entries %d sys %d, counters %d %d", entryBytes, sysBytes, s.entryBytes, s.sysBytes)
	}

	// 2. Every free block is listed once, in its class.
	listed := 0
	for fl := range flCount {
		for sl := range slCount {
			head := a.heads[fl][sl]
			if (head != 0) != (a.slBitmap[fl]&(1<<sl) != 0) {
				return fmt.Errorf("class %d/%d: head %d, bitmap %b", fl, sl, head, a.slBitmap[fl])
			}
			prev := uint64(0)
			for e := uint64(head) * unit; e != 0; e = m.load(e+16) >> 32 * unit {
				bi, ok := blocks[e]
				if !ok || !bi.free {
					return fmt.Errorf("class %d/%d lists %d, not a free block", fl, sl, e)
				}
				if f, s := mapping(bi.size / unit); f != fl || s != sl {
					return fmt.Errorf("free block %d of %d units in class %d/%d", e, bi.size/unit, fl, sl)
				}
				if m.load(e+16)&0xffffffff*unit != prev {
					return fmt.Errorf("free block %d: prev link broken", e)
				}
				prev = e
				listed++
			}
		}
		if (a.slBitmap[fl] != 0) != (a.flBitmap&(1<<fl) != 0) {
			return fmt.Errorf("first-level bitmap %b disagrees at %d", a.flBitmap, fl)
		}
	}
	nfree := 0
	for _, bi := range blocks {
		if bi.free {
			nfree++
		}
	}
	if listed != nfree {
		return fmt.Errorf("%d free blocks, %d listed", nfree, listed)
	}

	// 3. The index: every slot names a live entry of the right hash, in its window,
	// once; every entry block is named; counts and overflow counts add up.
	named := map[uint64]bool{}
	nb := s.idx.nb()
	for ti := range s.idx.tables {
		t := &s.idx.tables[ti]
		if bi := blocks[t.block]; bi.kind != kindTable || bi.free {
			return fmt.Errorf("table %d: block %d is not a table", ti, t.block)
		}
		count := 0
		ovf := make([]int, nb)
		for j := range nb {
			for i := range uint64(slotsPerBucket) {
				sl := m.load(t.off + j*bucketBytes + 8 + i*8)
				if sl == 0 {
					continue
				}
				e := sl & 0xffffffff * unit
				bi, ok := blocks[e]
				if !ok || bi.free || bi.kind != kindEntry {
					return fmt.Errorf("slot names %d, not an entry", e)
				}
				if named[e] {
					return fmt.Errorf("entry %d named twice", e)
				}
				named[e] = true
				h := s.hashOf(e)
				if h>>32 != sl>>32 {
					return fmt.Errorf("entry %d: tag mismatch", e)
				}
				if s.idx.tableOf(h) != t {
					return fmt.Errorf("entry %d in the wrong table", e)
				}
				home := h >> (64 - s.v.nbLog2)
				if !inWindow(h, j, s.v.nbLog2) {
					return fmt.Errorf("entry %d outside its window", e)
				}
				if home != j {
					ovf[home]++
				}
				count++
			}
		}
		if count != t.count {
			return fmt.Errorf("table %d: %d slots, count %d", ti, count, t.count)
		}
		for j := range nb {
			c := m.load(t.off + j*bucketBytes)
			if c&ctrlSeqOne != 0 {
				return fmt.Errorf("table %d bucket %d left odd", ti, j)
			}
			if int(c&ctrlOvfMask) != ovf[j] {
				return fmt.Errorf("table %d bucket %d: overflow %d, actual %d", ti, j, c&ctrlOvfMask, ovf[j])
			}
		}
	}
	for b, bi := range blocks {
		if !bi.free && bi.kind == kindEntry && !named[b] {
			return fmt.Errorf("entry %d leaked: no slot names it", b)
		}
	}
	expiring := int64(0)
	for e := range named {
		if m.load(e+8)&w1ExpMask != 0 {
			expiring++
		}
	}
	if expiring != s.expiring.Load() {
		return fmt.Errorf("%d entries with an expiry, counter %d", expiring, s.expiring.Load())
	}
	if int64(len(named)) != s.entries.Load() {
		return fmt.Errorf("%d entries indexed, counter %d", len(named), s.entries.Load())
	}
	for i, id := range s.idx.dirIDs {
		if want := uint32(s.idx.tables[id].off / unit); m.load32(s.v.dirOff+uint64(i)*4) != want {
			return fmt.Errorf("directory %d disagrees with the writer's view", i)
		}
	}

	// 4. The policy's lists hold every entry once, with the right queue bits and weights.
	var ls []*list
	var qs []int
	switch p := s.pol.(type) {
	case *tinyLFU:
		ls, qs = []*list{&p.window, &p.probation, &p.protected}, []int{qWindow, qProbation, qProtected}
	case *lru:
		ls, qs = []*list{&p.q}, []int{qProbation}
	}
	inList := 0
	for i, l := range ls {
		var w uint64
		n := 0
		prev := uint64(0)
		for e := l.head; e != 0; e = s.pol.(interface{ next(uint64) uint64 }).next(e) {
			if !named[e] {
				return fmt.Errorf("list %d holds %d, not an indexed entry", qs[i], e)
			}
			lk := lists{m: m, weighted: s.weighted}
			if lk.prev(e) != prev {
				return fmt.Errorf("list %d: prev link of %d broken", qs[i], e)
			}
			if lk.queue(e) != qs[i] {
				return fmt.Errorf("entry %d in list %d has queue bits %d", e, qs[i], lk.queue(e))
			}
			w += lk.weight(e)
			n++
			prev = e
			if n > len(named) {
				return fmt.Errorf("list %d loops", qs[i])
			}
		}
		if l.tail != prev || l.weight != w || l.n != n {
			return fmt.Errorf("list %d: tail %d/%d weight %d/%d n %d/%d", qs[i], l.tail, prev, l.weight, w, l.n, n)
		}
		inList += n
	}
	if inList != len(named) {
		return fmt.Errorf("%d entries in policy lists, %d indexed", inList, len(named))
	}
	return nil
}
