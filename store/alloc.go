package store

import "math/bits"

// allocator hands out blocks of the arena. It is a two-level segregated-fit allocator
// (TLSF, Masmano et al. 2004): free blocks sit in lists by size class, a two-level bitmap
// finds a fitting class in constant time, and boundary tags merge a freed block with its
// free neighbours at once, so fragmentation stays low without a compaction pass.
//
// Only the writer touches it. Its lists and bitmaps live on the Go heap (a fixed few
// hundred bytes); the block headers live in the arena, so recovery can rebuild it from the
// index alone (see recover.go).
type allocator struct {
	m        *mem
	lo, hi   uint64 // arena bounds in bytes; the sentinel occupies the last minBlock bytes
	flBitmap uint32
	slBitmap [flCount]uint16
	heads    [flCount][slCount]uint32 // first free block of each class, in units; 0 if none
	free     uint64                   // bytes in free blocks
}

const (
	slLog2  = 4
	slCount = 1 << slLog2
	flCount = 29 // classes up to 2^32 units
)

// newAllocator returns an allocator over [lo, hi) that knows no blocks yet: reset lays
// out an empty arena, recovery rebuilds the lists from what it finds.
func newAllocator(m *mem, lo, hi uint64) *allocator {
	return &allocator{m: m, lo: lo, hi: hi}
}

// reset makes the whole arena one free block followed by the sentinel.
func (a *allocator) reset() {
	a.flBitmap = 0
	a.slBitmap = [flCount]uint16{}
	a.heads = [flCount][slCount]uint32{}
	a.free = 0
	s := a.sentinel()
	a.m.store(s, w0Pack(minBlock/unit, 0, 0, kindSentinel))
	a.m.store(s+8, 0)
	if s > a.lo {
		a.insertFree(a.lo, (s-a.lo)/unit)
	}
}

func (a *allocator) sentinel() uint64 { return a.hi - minBlock }

// capacity is the number of bytes blocks can occupy.
func (a *allocator) capacity() uint64 { return a.sentinel() - a.lo }

func mapping(u uint64) (fl, sl int) {
	if u < slCount {
		return 0, int(u)
	}
	f := bits.Len64(u) - 1
	return f - slLog2 + 1, int(u>>(f-slLog2)) & (slCount - 1)
}

// mappingSearch rounds u up to the start of the next class, so that any block of the
// class it returns is large enough.
func mappingSearch(u uint64) (fl, sl int) {
	if u >= slCount {
		u += 1<<(bits.Len64(u)-1-slLog2) - 1
	}
	return mapping(u)
}

func (a *allocator) insertFree(off, units uint64) {
	fl, sl := mapping(units)
	head := a.heads[fl][sl]
	m := a.m
	m.store(off, units|w0Free)
	m.store(off+8, 0)
	m.store(off+16, uint64(head)<<32)
	m.store(off+units*unit-8, units)
	if head != 0 {
		h := uint64(head) * unit
		m.store(h+16, m.load(h+16)&^0xffffffff|off/unit)
	}
	a.heads[fl][sl] = uint32(off / unit)
	a.slBitmap[fl] |= 1 << sl
	a.flBitmap |= 1 << fl
	next := off + units*unit
	m.store(next+8, m.load(next+8)|w1PrevFree)
	a.free += units * unit
}

func (a *allocator) removeFree(off, units uint64) {
	m := a.m
	links := m.load(off + 16)
	prev, next := links&0xffffffff, links>>32
	if prev != 0 {
		p := prev * unit
		m.store(p+16, m.load(p+16)&0xffffffff|next<<32)
	}
	if next != 0 {
		n := next * unit
		m.store(n+16, m.load(n+16)&^0xffffffff|prev)
	}
	fl, sl := mapping(units)
	if uint64(a.heads[fl][sl]) == off/unit {
		a.heads[fl][sl] = uint32(next)
		if next == 0 {
			a.slBitmap[fl] &^= 1 << sl
			if a.slBitmap[fl] == 0 {
				a.flBitmap &^= 1 << fl
			}
		}
	}
	a.free -= units * unit
}

// alloc returns the offset and size in units of a block of at least units units, or
// ok == false if no free block is large enough. The block's w0 and w1 are the caller's
// to write; its predecessor is never free.
func (a *allocator) alloc(units uint64) (off, got uint64, ok bool) {
	fl, sl := mappingSearch(units)
	if fl >= flCount {
		return 0, 0, false
	}
	slMap := a.slBitmap[fl] & (^uint16(0) << sl)
	if slMap == 0 {
		flMap := a.flBitmap & (^uint32(0) << (fl + 1))
		if flMap == 0 {
			return 0, 0, false
		}
		fl = bits.TrailingZeros32(flMap)
		slMap = a.slBitmap[fl]
	}
	sl = bits.TrailingZeros16(slMap)
	off = uint64(a.heads[fl][sl]) * unit
	off, got = a.take(off, w0Size(a.m.load(off)), units)
	return off, got, true
}

// take allocates units from the free block at off (of size units, in units), as alloc
// does from the block it finds.
func (a *allocator) take(off, size, units uint64) (uint64, uint64) {
	a.removeFree(off, size)
	if size-units >= minBlock/unit {
		a.insertFree(off+units*unit, size-units)
		size = units
	} else {
		next := off + size*unit
		a.m.store(next+8, a.m.load(next+8)&^w1PrevFree)
	}
	return off, size
}

// fits reports whether alloc(units) would succeed.
func (a *allocator) fits(units uint64) bool {
	fl, sl := mappingSearch(units)
	if fl >= flCount {
		return false
	}
	if a.slBitmap[fl]&(^uint16(0)<<sl) != 0 {
		return true
	}
	return a.flBitmap&(^uint32(0)<<(fl+1)) != 0
}

// release returns the block at off to the free lists, merged with free neighbours, and
// returns the offset and size of the free block that now holds it.
func (a *allocator) release(off uint64) (uint64, uint64) {
	m := a.m
	units := w0Size(m.load(off))
	prevFree := m.load(off+8)&w1PrevFree != 0
	next := off + units*unit
	if nw := m.load(next); nw&w0Free != 0 {
		nu := w0Size(nw)
		a.removeFree(next, nu)
		units += nu
	}
	if prevFree {
		pu := m.load(off - 8)
		prev := off - pu*unit
		a.removeFree(prev, pu)
		off = prev
		units += pu
	}
	a.insertFree(off, units)
	return off, units
}

// isFree reports whether the block at off is free.
func (a *allocator) isFree(off uint64) bool { return a.m.load(off)&w0Free != 0 }

// next is the block after the one at off.
func (a *allocator) next(off uint64) uint64 { return off + w0Size(a.m.load(off))*unit }
