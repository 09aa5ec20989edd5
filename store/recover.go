package store

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// recover reuses the segment an earlier writer left: the index is the source of truth.
// An entry survives if a slot points at it, its header and key are consistent with
// that slot, its bucket was not mid-change when the writer stopped, and it has not
// expired. Survivors stay in the slots they were found in; everything else in the arena
// becomes free space, and the allocator and the policy are rebuilt from the survivors.
// It returns the number of entries kept, or an error if the segment cannot be trusted
// at all (the caller then lays it out afresh).
func (s *Store) recover() (int, error) {
	if err := s.checkHeader(); err != nil {
		return 0, err
	}
	m := &s.seg.mem
	// Hold readers off until the index is whole again.
	m.store32(hdrState, stateInit)
	ver := m.load(hdrIndexVer)
	m.store(hdrIndexVer, ver|1)

	s.seed = m.load(hdrSeed)
	s.initView()
	depth := uint(m.load32(hdrGlobalDepth))
	if depth > s.v.maxDepth {
		return 0, fmt.Errorf("directory depth %d beyond %d", depth, s.v.maxDepth)
	}
	if err := s.recoverTables(depth); err != nil {
		return 0, err
	}
	found := s.findEntries()
	kept, blocks := s.dropOverlaps(found)
	s.rebuildAllocator(blocks)
	s.rebuildIndex(kept)
	n := s.rebuildPolicy(kept)

	s.sk = sketch{}
	if err := s.initSketch(); err != nil {
		return 0, err
	}
	s.pol.setMaximum(s.maximum())
	s.writeHeader(0)
	m.store(hdrIndexVer, (ver|1)+1)
	s.updateUsed()
	if !s.weighted {
		s.evictToCount()
	}
	return n, nil
}

// checkHeader refuses a segment whose header is not this build's format and layout for
// this size.
func (s *Store) checkHeader() error {
	m := &s.seg.mem
	switch {
	case m.load(hdrMagic) != segmentMagic:
		return errors.New("no segment header")
	case m.load32(hdrVersion) != formatVersion:
		return fmt.Errorf("format version %d, want %d", m.load32(hdrVersion), formatVersion)
	case m.load32(hdrHeaderSize) != headerSize || m.load(hdrSegSize) != s.seg.size:
		return errors.New("header describes another size")
	}
	nbLog2, maxDepth, dirOff, arenaOff := geometry(s.seg.size)
	if uint(m.load32(hdrBucketsLog2)) != nbLog2 || uint(m.load32(hdrDirMaxDepth)) != maxDepth ||
		m.load(hdrDirOffset) != dirOff || m.load(hdrArenaOffset) != arenaOff ||
		m.load(hdrArenaSize) != s.seg.size-arenaOff {
		return errors.New("header describes another layout")
	}
	return nil
}

// recovered is an entry that a slot points at: its offset, hash, block size and slot.
type recovered struct{ e, h, size, so uint64 }

// findEntries lists the entries the index points at that check out and have not
// expired, in arena order.
func (s *Store) findEntries() []recovered {
	m := &s.seg.mem
	var found []recovered
	now := s.nowWrite()
	for ti := range s.idx.tables {
		t := &s.idx.tables[ti]
		s.idx.forTable(t, func(so, sl uint64) {
			b := so &^ (bucketBytes - 1)
			if m.load(b)&ctrlSeqOne != 0 {
				return // the writer stopped inside this bucket: trust none of it
			}
			e := sl & 0xffffffff * unit
			h, ok := s.validEntry(e, sl)
			if !ok || s.idx.tableOf(h) != t || !inWindow(h, (b-t.off)/bucketBytes, s.v.nbLog2) || s.expired(e, now) {
				return
			}
			found = append(found, recovered{e, h, w0Size(m.load(e)) * unit, so})
		})
	}
	slices.SortFunc(found, func(a, b recovered) int { return cmp.Compare(a.e, b.e) })
	return found
}

// arenaBlock is a block in use, for rebuilding the allocator.
type arenaBlock struct{ off, size uint64 }

// dropOverlaps keeps the entries that overlap no index table and no other entry (a
// corrupt one would), and returns them with every block in use, in arena order.
func (s *Store) dropOverlaps(found []recovered) ([]recovered, []arenaBlock) {
	m := &s.seg.mem
	used := make([]arenaBlock, 0, len(s.idx.tables)+len(found))
	for _, t := range s.idx.tables {
		used = append(used, arenaBlock{t.block, w0Size(m.load(t.block)) * unit})
	}
	for _, en := range found {
		used = append(used, arenaBlock{en.e, en.size})
	}
	slices.SortStableFunc(used, func(a, b arenaBlock) int { return cmp.Compare(a.off, b.off) })
	keep := make(map[uint64]bool, len(found))
	var end uint64
	var blocks []arenaBlock
	for _, b := range used {
		if b.off < end {
			continue
		}
		blocks = append(blocks, b)
		keep[b.off] = true
		end = b.off + b.size
	}
	kept := found[:0]
	for _, en := range found {
		if keep[en.e] {
			kept = append(kept, en)
			delete(keep, en.e) // a second slot pointing at the same entry is dropped
		}
	}
	return kept, blocks
}

// rebuildAllocator makes every gap between the blocks in use one free block.
func (s *Store) rebuildAllocator(blocks []arenaBlock) {
	m := &s.seg.mem
	s.al.flBitmap, s.al.slBitmap, s.al.heads, s.al.free = 0, [flCount]uint16{}, [flCount][slCount]uint32{}, 0
	for _, b := range blocks {
		m.store(b.off+8, m.load(b.off+8)&^w1PrevFree)
	}
	sent := s.al.sentinel()
	m.store(sent, w0Pack(minBlock/unit, 0, 0, kindSentinel))
	m.store(sent+8, 0)
	prevEnd := s.v.lo
	for _, b := range append(blocks, arenaBlock{sent, minBlock}) {
		if b.off > prevEnd {
			s.al.insertFree(prevEnd, (b.off-prevEnd)/unit)
		}
		prevEnd = b.off + b.size
	}
}

// rebuildIndex clears every slot but the kept entries', which stay where they are (so
// every one still fits its window, whatever order the writer placed them in), and
// recounts each table's entries and each bucket's overflow.
func (s *Store) rebuildIndex(kept []recovered) {
	m := &s.seg.mem
	nb := s.idx.nb()
	keepSlot := make(map[uint64]bool, len(kept))
	for _, en := range kept {
		keepSlot[en.so] = true
	}
	for ti := range s.idx.tables {
		t := &s.idx.tables[ti]
		t.count = 0
		for j := uint64(0); j < nb; j++ {
			b := t.off + j*bucketBytes
			c := m.load(b)
			seq := (c>>16 | 1) + 1 // even, and past anything a reader saw
			for i := uint64(0); i < slotsPerBucket; i++ {
				if so := b + 8 + i*8; !keepSlot[so] {
					m.store(so, 0)
				}
			}
			m.store(b, seq<<16)
		}
	}
	for _, en := range kept {
		t := s.idx.tableOf(en.h)
		t.count++
		home := t.off + en.h>>(64-s.v.nbLog2)*bucketBytes
		if en.so&^(bucketBytes-1) != home {
			m.store(home, m.load(home)+1) // the overflow count, in the low bits
		}
	}
}

// rebuildPolicy gives the policy the kept entries, in arena order, and recounts the
// store's entries. It returns how many there are.
func (s *Store) rebuildPolicy(kept []recovered) int {
	m := &s.seg.mem
	s.pol.reset()
	s.entryBytes, s.sysBytes = 0, 0
	for _, t := range s.idx.tables {
		s.sysBytes += w0Size(m.load(t.block)) * unit
	}
	expiring := int64(0)
	for _, en := range kept {
		m.put(en.e+16, 0)
		w1 := m.load(en.e + 8)
		m.store(en.e+8, w1&^(w1QueueMask<<w1QueueShift))
		s.pol.add(en.e, en.h>>32)
		s.entryBytes += en.size
		if w1&w1ExpMask != 0 {
			expiring++
		}
	}
	s.entries.Store(int64(len(kept)))
	s.expiring.Store(expiring)
	return len(kept)
}

// recoverTables rebuilds the writer's view of the directory: the tables, their local
// depths, and which directory entries point at each.
func (s *Store) recoverTables(depth uint) error {
	m := &s.seg.mem
	nb := s.idx.nb()
	ids := map[uint64]int32{}
	s.idx.tables = nil
	s.idx.dirIDs = make([]int32, 1<<depth)
	s.idx.depth = depth
	counts := map[int32]int{}
	first := map[int32]uint64{}
	for i := range s.idx.dirIDs {
		p := uint64(m.load32(s.v.dirOff+uint64(i)*4)) * unit
		if p < s.v.lo+entryHeader || p%cacheLine != 0 || p+nb*bucketBytes > s.al.sentinel() {
			return fmt.Errorf("directory entry %d points outside the arena", i)
		}
		id, ok := ids[p]
		if !ok {
			block := m.load(p - 8)
			w0 := m.load(block)
			if block < s.v.lo || block >= p || tablePayload(block) != p || w0Kind(w0) != kindTable ||
				w0&w0Free != 0 || w0Size(w0) < tableBlockUnits(s.v.nbLog2) {
				return fmt.Errorf("directory entry %d points at no table", i)
			}
			id = int32(len(s.idx.tables))
			ids[p] = id
			first[id] = uint64(i)
			s.idx.tables = append(s.idx.tables, table{off: p, block: block})
		}
		s.idx.dirIDs[i] = id
		counts[id]++
	}
	for id, c := range counts {
		if c&(c-1) != 0 {
			return errors.New("directory half-updated")
		}
		d := depth - uint(bits.TrailingZeros(uint(c)))
		s.idx.tables[id].depth = d
		mask := uint64(1)<<d - 1
		for i, x := range s.idx.dirIDs {
			if x == id && uint64(i)&mask != first[id]&mask {
				return errors.New("directory half-updated")
			}
		}
	}
	return nil
}

// validEntry checks the entry a slot points at and returns its key's hash.
func (s *Store) validEntry(e, sl uint64) (uint64, bool) {
	m := &s.seg.mem
	if e < s.v.lo || e+minBlock > s.al.sentinel() {
		return 0, false
	}
	w0 := m.load(e)
	size := w0Size(w0) * unit
	klen := w0Klen(w0)
	if w0&w0Free != 0 || w0Kind(w0) != kindEntry || klen == 0 || klen > s.cfg.MaxKeySize ||
		e+size > s.al.sentinel() || uint64(entryHeader+klen+w0Pad(w0)) > size {
		return 0, false
	}
	h := s.hashOf(e)
	if h>>32 != sl>>32 {
		return 0, false
	}
	switch w0Type(w0) {
	case typeString:
	case typeHash:
		if _, err := decodeHash(s.entryValue(e), klen, s.seed); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return h, true
}

// inWindow reports whether bucket j is within the probe window of h's home.
func inWindow(h, j uint64, nbLog2 uint) bool {
	home := h >> (64 - nbLog2)
	return (j-home)&(1<<nbLog2-1) < probeWindow
}
