package store

import (
	"runtime"
	"slices"
	"time"
)

// view is what a reader needs to find a key in a segment: the geometry that the header
// fixes for the segment's life, and what the read path derives from it, computed once
// per mapping. The writer and every reader in other processes look keys up through the
// same get.
type view struct {
	m        mem
	dirOff   uint64
	maxDepth uint
	nbLog2   uint
	lo, hi   uint64 // arena bounds in bytes
	seed     uint64

	homeShift  uint   // h >> homeShift is a hash's home bucket
	nbMask     uint64 // buckets per table - 1
	tableBytes uint64

	// Test clocks, nil otherwise. testClock replaces the header's clock: a store with a
	// test clock publishes it only at writes, so its own reads use it directly.
	// wallClock replaces the reader's real-time clock.
	testClock, wallClock func() time.Time
}

// newView is the view of a mapping of size bytes whose keys hash with seed.
func newView(m mem, seed uint64) view {
	nbLog2, maxDepth, dirOff, arenaOff := geometry(m.size)
	return view{
		m: m, dirOff: dirOff, maxDepth: maxDepth, nbLog2: nbLog2, lo: arenaOff, hi: m.size, seed: seed,
		homeShift: 64 - nbLog2, nbMask: 1<<nbLog2 - 1, tableBytes: bucketBytes << nbLog2,
	}
}

// Results of view.get.
const (
	resMiss = iota
	resHit
	resRetry   // the writer kept changing what we read; bounded retries ran out
	resCorrupt // the bytes contradict the format while no writer was changing them
	resNotString
)

// expired applies the segment's expiry rule to an entry's deadline exp (unix ms, not 0):
// the header clock decides unless the deadline is within nearMillis of it, and only then
// is real time read. The header clock is never ahead of real time, so an entry it calls
// expired is; one more than nearMillis ahead of it cannot have reached its deadline while
// the clock is that fresh. Entries without an expiry never get here, so a Get of one
// reads no clock at all.
func (v *view) expired(exp int64) bool {
	clock := v.headerClock()
	switch {
	case exp <= clock:
		return true
	case exp-clock > nearMillis:
		return false
	}
	return exp <= v.now()
}

// headerClock is the writer's published clock, unix ms.
func (v *view) headerClock() int64 {
	if v.testClock != nil {
		return v.testClock().UnixMilli()
	}
	return int64(v.m.load(hdrClock))
}

// now is real time in unix ms: the reader's own clock.
func (v *view) now() int64 {
	if v.wallClock != nil {
		return v.wallClock().UnixMilli()
	}
	return time.Now().UnixMilli()
}

// maxReadRetries bounds a reader's attempts. A writer holds a bucket odd for a few
// stores, so in practice a second attempt succeeds; the bound only matters when a writer
// is stuck mid-change (it died) or the segment is corrupt.
const maxReadRetries = 64

// tableAt is the byte offset of the index table that holds hash h, or ok == false if the
// directory points outside the arena.
func (v *view) tableAt(h uint64, depth uint) (uint64, bool) {
	if depth > v.maxDepth {
		return 0, false
	}
	t := uint64(load32(v.m.base, v.dirOff+(h&(1<<(depth&63)-1))*4)) * unit
	if t < v.lo || t%cacheLine != 0 || t+v.tableBytes > v.hi {
		return 0, false
	}
	return t, true
}

// get looks key up. On a hit the value is appended to dst. ref is the
// slot word on a hit and the hash's tag on a miss; it is what a reader reports so that
// the writer's policy counts the access. An entry whose value is not a string is
// resNotString: the caller must not read it as one. Expiry follows expired.
//
// It is the read path of every Get. This first attempt covers what nearly every Get
// meets: the index and the home bucket holding still, the key in its home bucket (or
// absent from a bucket nothing overflowed from), a valid string entry. Anything else,
// it leaves to getSlow, which starts over and handles every case.
func (v *view) get(key, dst []byte) ([]byte, uint64, int) {
	var h uint64
	if uint64(len(key))-9 <= 7 {
		h = hashKey16(key, v.seed) // inlined: the usual key costs no call
	} else {
		h = hashKey(key, v.seed)
	}
	base := v.m.base
	ver := load(base, hdrIndexVer)
	depth := uint(load32(base, hdrGlobalDepth))
	if ver&1 != 0 || depth > v.maxDepth {
		return v.getSlow(h, key, dst)
	}
	t := uint64(load32(base, v.dirOff+(h&(1<<(depth&63)-1))*4)) * unit
	if t < v.lo || t%cacheLine != 0 || t+v.tableBytes > v.hi {
		return v.getSlow(h, key, dst)
	}
	b := t + h>>(v.homeShift&63)*bucketBytes
	c := load(base, b)
	if c&ctrlSeqOne != 0 {
		return v.getSlow(h, key, dst)
	}
	tag := h >> 32
	for so := b + 8; so < b+bucketBytes; so += 8 {
		s := load(base, so)
		if s>>32 != tag || s == 0 {
			continue
		}
		e := s & 0xffffffff * unit
		if e < v.lo || e+minBlock > v.hi {
			return v.getSlow(h, key, dst)
		}
		w0 := load(base, e)
		size := w0Size(w0) * unit
		klen := uint64(len(key))
		// Not a used string entry, or not inside the arena: getSlow tells which.
		if w0&(w0Free|w0KindMask<<w0KindShift|w0TypeMask<<w0TypeShift) != 0 ||
			e+size > v.hi || entryHeader+uint64(w0Klen(w0)+w0Pad(w0)) > size {
			return v.getSlow(h, key, dst)
		}
		if uint64(w0Klen(w0)) != klen {
			continue
		}
		if klen-9 <= 7 {
			if !equalKey16(base, e+entryHeader, key) {
				continue
			}
		} else if !equalKey(base, e+entryHeader, key) {
			continue
		}
		w1 := load(base, e+8)
		vlen := int(size-entryHeader-klen) - w0Pad(w0)
		n := len(dst)
		if cap(dst)-n < vlen {
			dst = slices.Grow(dst, vlen)
		}
		dst = dst[:n+vlen]
		copyOut(base, dst[n:], e+entryHeader+klen)
		if load(base, b) != c || load(base, hdrIndexVer) != ver {
			return v.getSlow(h, key, dst[:n])
		}
		if exp := int64(w1 & w1ExpMask); exp != 0 && v.expired(exp) {
			return dst[:n], tag << 32, resMiss
		}
		return dst, s, resHit
	}
	if c&ctrlOvfMask != 0 || load(base, b) != c || load(base, hdrIndexVer) != ver {
		return v.getSlow(h, key, dst)
	}
	return dst, tag << 32, resMiss
}

// getSlow is get in full: bounded attempts, the whole probe window, and every way a
// read can go wrong.
func (v *view) getSlow(h uint64, key, dst []byte) (out []byte, ref uint64, res int) {
	base, lo, hi, mask := v.m.base, v.lo, v.hi, v.nbMask
	home := h >> (v.homeShift & 63)
	tag := h >> 32
	klen := uint64(len(key))
	for attempt := 0; attempt < maxReadRetries; attempt++ {
		if attempt > 0 && attempt%8 == 0 {
			runtime.Gosched()
		}
		ver := load(base, hdrIndexVer)
		if ver&1 != 0 {
			continue
		}
		t, ok := v.tableAt(h, uint(load32(base, hdrGlobalDepth)))
		if !ok {
			if load(base, hdrIndexVer) == ver {
				return dst, 0, resCorrupt
			}
			continue
		}
		retry := false
	probe:
		for p := uint64(0); p < probeWindow; p++ {
			b := t + (home+p)&mask*bucketBytes
			c := load(base, b)
			if c&ctrlSeqOne != 0 {
				retry = true
				break
			}
			for so := b + 8; so < b+bucketBytes; so += 8 {
				s := load(base, so)
				if s>>32 != tag || s == 0 {
					continue
				}
				e := s & 0xffffffff * unit
				w0 := uint64(0)
				valid := e >= lo && e+minBlock <= hi
				if valid {
					w0 = load(base, e)
					size := w0Size(w0) * unit
					valid = w0&(w0Free|w0KindMask<<w0KindShift) == 0 && // a used entry block
						e+size <= hi && entryHeader+uint64(w0Klen(w0)+w0Pad(w0)) <= size
				}
				if !valid {
					// A writer recovering the segment rewrites buckets under the index
					// version alone, so both must hold still to call this corruption.
					if load(base, b) != c || load(base, hdrIndexVer) != ver {
						retry = true
						break probe
					}
					return dst, 0, resCorrupt
				}
				if uint64(w0Klen(w0)) != klen || !equalKey(base, e+entryHeader, key) {
					continue
				}
				w1 := load(base, e+8)
				if w0Type(w0) != typeString {
					if load(base, b) != c || load(base, hdrIndexVer) != ver {
						retry = true
						break probe
					}
					if exp := int64(w1 & w1ExpMask); exp != 0 && v.expired(exp) {
						return dst, tag << 32, resMiss
					}
					return dst, 0, resNotString
				}
				vlen := int(w0Size(w0)*unit-entryHeader-klen) - w0Pad(w0)
				n := len(dst)
				if cap(dst)-n >= vlen {
					dst = dst[:n+vlen]
				} else {
					dst = slices.Grow(dst, vlen)[:n+vlen]
				}
				copyOut(base, dst[n:], e+entryHeader+klen)
				if load(base, b) != c || load(base, hdrIndexVer) != ver {
					dst = dst[:n]
					retry = true
					break probe
				}
				if exp := int64(w1 & w1ExpMask); exp != 0 && v.expired(exp) {
					return dst[:n], tag << 32, resMiss
				}
				return dst, s, resHit
			}
			// A slot we skipped may have changed under us (an overwrite frees the old
			// entry): only a bucket that held still proves the key is absent.
			if load(base, b) != c {
				retry = true
				break
			}
			if p == 0 && c&ctrlOvfMask == 0 {
				break
			}
		}
		if !retry && load(base, hdrIndexVer) == ver {
			return dst, tag << 32, resMiss
		}
	}
	return dst, 0, resRetry
}
