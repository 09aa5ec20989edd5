package store

import (
	"errors"
	"math/bits"
	"unsafe"

	"github.com/zeebo/xxh3"
)

// The index maps a key's hash to its entry. It is extendible hashing (Fagin et al. 1979)
// over fixed-size tables: the directory, indexed by the hash's low bits, points at
// tables; a table that fills splits in two by one more hash bit, and the directory
// doubles when a table's depth would exceed it. Growth is one table at a time, so the
// index grows with the number of entries without ever rehashing everything, and a table,
// once allocated, stays a table: readers in other processes may hold its address.
//
// Within a table a key has a home bucket (the hash's top bits) and may sit in the
// probeWindow buckets from there; the home's overflow count tells readers whether to
// look past it.

type table struct {
	off   uint64 // byte offset of bucket 0 (cache-line aligned)
	block uint64 // the arena block holding it
	depth uint   // local depth: the table holds hashes whose low depth bits match
	count int
}

type index struct {
	v        *view
	tables   []table
	dirIDs   []int32 // table id of each directory entry in use (the shared directory holds offsets)
	depth    uint    // global depth
	maxCount int     // entries a table holds before it splits
}

var errTableFull = errors.New("store: index table full")

func (x *index) nb() uint64 { return 1 << x.v.nbLog2 }

// tableBlockUnits is the size of the arena block that holds one table: two header words,
// the back-pointer to the block, and room to align the buckets to a cache line.
func tableBlockUnits(nbLog2 uint) uint64 {
	return (entryHeader + cacheLine - 1 + bucketBytes<<nbLog2) / unit
}

// tablePayload is where the buckets of the table in the block at off start.
func tablePayload(block uint64) uint64 {
	return (block + entryHeader + cacheLine - 1) &^ (cacheLine - 1)
}

func (x *index) tableOf(h uint64) *table {
	return &x.tables[x.dirIDs[h&(1<<x.depth-1)]]
}

// begin makes bucket b odd (changing) and returns the odd control word.
func (x *index) begin(b uint64) uint64 {
	c := x.v.m.load(b) + ctrlSeqOne
	x.v.m.store(b, c)
	return c
}

func (x *index) end(b, c uint64) { x.v.m.store(b, c+ctrlSeqOne) }

// addOverflow adjusts the overflow count of home bucket b by d, moving its sequence on
// so that readers comparing control words see the change.
func (x *index) addOverflow(b uint64, d int) {
	c := x.v.m.load(b)
	ovf := uint64(int64(c&ctrlOvfMask)+int64(d)) & ctrlOvfMask
	x.v.m.store(b, (c&^ctrlOvfMask+2*ctrlSeqOne)|ovf)
}

// find returns the slot and entry of key, whose hash is h.
func (x *index) find(h uint64, key []byte) (slot, e uint64, ok bool) {
	m := &x.v.m
	t := x.tableOf(h)
	nb := x.nb()
	home := h >> (64 - x.v.nbLog2)
	tag := h >> 32
	for p := uint64(0); p < probeWindow; p++ {
		b := t.off + (home+p)&(nb-1)*bucketBytes
		for i := uint64(0); i < slotsPerBucket; i++ {
			so := b + 8 + i*8
			s := m.load(so)
			if s == 0 || s>>32 != tag {
				continue
			}
			e := s & 0xffffffff * unit
			w0 := m.load(e)
			if w0Klen(w0) == len(key) && equalKey(m.base, e+entryHeader, key) {
				return so, e, true
			}
		}
		if p == 0 && m.load(b)&ctrlOvfMask == 0 {
			break
		}
	}
	return 0, 0, false
}

// findEntry returns the slot that points at entry e, whose hash is h.
func (x *index) findEntry(h, e uint64) (uint64, bool) {
	m := &x.v.m
	t := x.tableOf(h)
	nb := x.nb()
	home := h >> (64 - x.v.nbLog2)
	want := h>>32<<32 | e/unit
	for p := uint64(0); p < probeWindow; p++ {
		b := t.off + (home+p)&(nb-1)*bucketBytes
		for i := uint64(0); i < slotsPerBucket; i++ {
			if so := b + 8 + i*8; m.load(so) == want {
				return so, true
			}
		}
		if p == 0 && m.load(b)&ctrlOvfMask == 0 {
			break
		}
	}
	return 0, false
}

// insert links entry e under hash h. It returns errTableFull when the table must split
// first.
func (x *index) insert(h, e uint64) error {
	t := x.tableOf(h)
	if t.count >= x.maxCount {
		return errTableFull
	}
	if !x.place(t, h, e) {
		return errTableFull
	}
	t.count++
	return nil
}

// place puts the slot for (h, e) in the first free slot of its window.
func (x *index) place(t *table, h, e uint64) bool {
	m := &x.v.m
	nb := x.nb()
	home := h >> (64 - x.v.nbLog2)
	s := h>>32<<32 | e/unit
	for p := uint64(0); p < probeWindow; p++ {
		b := t.off + (home+p)&(nb-1)*bucketBytes
		for i := uint64(0); i < slotsPerBucket; i++ {
			so := b + 8 + i*8
			if m.load(so) != 0 {
				continue
			}
			if p > 0 {
				// Raise the home's overflow count before the slot appears, so that a
				// reader who finds the slot's bucket through the home always looks.
				x.addOverflow(t.off+home*bucketBytes, 1)
			}
			c := x.begin(b)
			m.store(so, s)
			x.end(b, c)
			return true
		}
	}
	return false
}

// remove clears slot so, which holds an entry of hash h.
func (x *index) remove(h, so uint64) {
	m := &x.v.m
	t := x.tableOf(h)
	b := so &^ (bucketBytes - 1)
	c := x.begin(b)
	m.store(so, 0)
	x.end(b, c)
	if home := t.off + (h>>(64-x.v.nbLog2))*bucketBytes; home != b {
		x.addOverflow(home, -1)
	}
	t.count--
}

// replace points slot so at entry e instead.
func (x *index) replace(so, e uint64) {
	m := &x.v.m
	b := so &^ (bucketBytes - 1)
	s := m.load(so)
	c := x.begin(b)
	m.store(so, s>>32<<32|e/unit)
	x.end(b, c)
}

// touchBucket moves the sequence of the bucket holding slot so on while fn changes the
// entry it points at in place, so that readers of that entry retry.
func (x *index) touchBucket(so uint64, fn func()) {
	b := so &^ (bucketBytes - 1)
	c := x.begin(b)
	fn()
	x.end(b, c)
}

// hasRoom reports whether h's window in t has a free slot.
func (x *index) hasRoom(t *table, h uint64) bool {
	free := false
	x.window(t, h, func(so, s uint64) bool {
		free = s == 0
		return !free
	})
	return free
}

// forWindow calls fn for every occupied slot in h's window.
func (x *index) forWindow(h uint64, fn func(so, s uint64)) {
	x.window(x.tableOf(h), h, func(so, s uint64) bool {
		if s != 0 {
			fn(so, s)
		}
		return true
	})
}

// window calls fn for each slot of h's probe window in t until it returns false.
func (x *index) window(t *table, h uint64, fn func(so, s uint64) bool) {
	nb := x.nb()
	home := h >> (64 - x.v.nbLog2)
	for p := uint64(0); p < probeWindow; p++ {
		b := t.off + (home+p)&(nb-1)*bucketBytes
		for i := uint64(0); i < slotsPerBucket; i++ {
			so := b + 8 + i*8
			if !fn(so, x.v.m.load(so)) {
				return
			}
		}
	}
}

// canSplit reports whether the table holding h can split.
func (x *index) canSplit(h uint64) bool { return x.tableOf(h).depth < x.v.maxDepth }

// split divides the table holding h into itself and the table whose buckets start at
// payload in block. hashOf returns the hash of the entry at an offset. Entries that
// cannot be placed in the new table (a pathological window overflow) are returned for
// the caller to evict.
func (x *index) split(h uint64, block, payload uint64, hashOf func(e uint64) uint64) (dropped []uint64) {
	m := &x.v.m
	oldID := x.dirIDs[h&(1<<x.depth-1)]
	old := &x.tables[oldID]
	if old.depth == x.depth {
		// Double the directory. Entries past the old end are invisible to readers until
		// the new depth is stored, and each copies its twin, so no reader sees a change.
		n := uint64(1) << x.depth
		for i := uint64(0); i < n; i++ {
			m.store32(x.v.dirOff+(n+i)*4, m.load32(x.v.dirOff+i*4))
		}
		x.dirIDs = append(x.dirIDs, x.dirIDs...)
		x.depth++
		m.store32(hdrGlobalDepth, uint32(x.depth))
	}
	bit := uint64(1) << old.depth
	newID := int32(len(x.tables))
	x.tables = append(x.tables, table{off: payload, block: block, depth: old.depth + 1})
	old = &x.tables[oldID]
	old.depth++
	nt := &x.tables[newID]

	// Copy the entries that move into the new table while nobody can see it.
	nb := x.nb()
	type mv struct{ so, h uint64 }
	var moved []mv
	for j := uint64(0); j < nb; j++ {
		b := old.off + j*bucketBytes
		for i := uint64(0); i < slotsPerBucket; i++ {
			so := b + 8 + i*8
			s := m.load(so)
			if s == 0 {
				continue
			}
			e := s & 0xffffffff * unit
			eh := hashOf(e)
			if eh&bit == 0 {
				continue
			}
			moved = append(moved, mv{so, eh})
			if x.place(nt, eh, e) {
				nt.count++
			} else {
				dropped = append(dropped, e)
			}
		}
	}

	// Publish: readers that began before this see the version move and retry.
	ver := m.load(hdrIndexVer)
	m.store(hdrIndexVer, ver+1)
	for i := range x.dirIDs {
		if x.dirIDs[i] == oldID && uint64(i)&bit != 0 {
			x.dirIDs[i] = newID
			m.store32(x.v.dirOff+uint64(i)*4, uint32(payload/unit))
		}
	}
	m.store(hdrIndexVer, ver+2)

	// Clear the moved slots from the old table.
	for _, mv := range moved {
		b := mv.so &^ (bucketBytes - 1)
		c := x.begin(b)
		m.store(mv.so, 0)
		x.end(b, c)
		if home := old.off + (mv.h>>(64-x.v.nbLog2))*bucketBytes; home != b {
			x.addOverflow(home, -1)
		}
		old.count--
	}
	return dropped
}

// forEachSlot calls fn for every occupied slot, table by table.
func (x *index) forEachSlot(fn func(so, s uint64)) {
	for ti := range x.tables {
		x.forTable(&x.tables[ti], fn)
	}
}

// forTable calls fn for every occupied slot of t.
func (x *index) forTable(t *table, fn func(so, s uint64)) {
	m := &x.v.m
	nb := x.nb()
	for j := uint64(0); j < nb; j++ {
		b := t.off + j*bucketBytes
		for i := uint64(0); i < slotsPerBucket; i++ {
			so := b + 8 + i*8
			if s := m.load(so); s != 0 {
				fn(so, s)
			}
		}
	}
}

// hashKey is the segment's key hash, XXH3-64 with a seed. Keys of 4 to 16 bytes, the
// usual cache key, are hashed here (the short-input paths of the XXH3 specification, in
// one call with no dispatch on the length); others by the xxh3 package. TestHashKey
// checks the two agree at every length.
func hashKey(key []byte, seed uint64) uint64 {
	n := uint64(len(key))
	if n-4 > 12 {
		return xxh3.HashSeed(key, seed)
	}
	if n > 8 {
		return hashKey16(key, seed)
	}
	p := unsafe.Pointer(unsafe.SliceData(key))
	seed ^= uint64(bits.ReverseBytes32(uint32(seed))) << 32
	in := uint64(*(*uint32)(unsafe.Add(p, n-4))) + uint64(*(*uint32)(p))<<32
	x := in ^ (xxhSecret8 ^ xxhSecret16 - seed)
	x ^= bits.RotateLeft64(x, 49) ^ bits.RotateLeft64(x, 24)
	x *= 0x9fb21c651e98df25
	x ^= x>>35 + n
	x *= 0x9fb21c651e98df25
	return x ^ x>>28
}

// hashKey16 is hashKey for keys of 9 to 16 bytes, small enough for the compiler to
// inline where a Get hashes its key.
func hashKey16(key []byte, seed uint64) uint64 {
	n := uint64(len(key))
	p := unsafe.Pointer(unsafe.SliceData(key))
	lo := *(*uint64)(p) ^ (xxhSecret24 ^ xxhSecret32 + seed)
	hi := *(*uint64)(unsafe.Add(p, n-8)) ^ (xxhSecret40 ^ xxhSecret48 - seed)
	mh, ml := bits.Mul64(lo, hi)
	x := n + bits.ReverseBytes64(lo) + hi + (mh ^ ml)
	x ^= x >> 37
	x *= 0x165667919e3779f9
	return x ^ x>>32
}

// Little-endian words of XXH3's default secret at the byte offsets that hashKey uses.
const (
	xxhSecret8  = 0x1cad21f72c81017c
	xxhSecret16 = 0xdb979083e96dd4de
	xxhSecret24 = 0x1f67b3b7a4a44072
	xxhSecret32 = 0x78e5c0cc4ee679cb
	xxhSecret40 = 0x2172ffcc7dd05a82
	xxhSecret48 = 0x8e2443f7744608b8
)
