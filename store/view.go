package store

import (
	"runtime"
	"slices"
	"time"
)

// view is what a reader needs to find a key in a segment: the geometry that the header
// fixes for the segment's life. The writer and every reader in other processes look keys
// up through the same get.
type view struct {
	m        mem
	dirOff   uint64
	maxDepth uint
	nbLog2   uint
	lo, hi   uint64 // arena bounds in bytes
	seed     uint64
	// clock is real time, read only near a deadline (see expired); nil is the wall
	// clock. A store with a test clock sets it.
	clock func() time.Time
}

// Results of view.get.
const (
	resMiss = iota
	resHit
	resRetry   // the writer kept changing what we read; bounded retries ran out
	resCorrupt // the bytes contradict the format while no writer was changing them
	resNotString
)

// expired applies the segment's expiry rule to an entry's deadline exp (unix ms, 0 for
// none), given the header clock: the clock decides unless the deadline is within
// nearMillis of it, and only then is real time read. The header clock is never ahead of
// real time, so an entry it calls expired is; one more than nearMillis ahead of it
// cannot have reached its deadline while the clock is that fresh.
func (v *view) expired(exp, clock int64) bool {
	switch {
	case exp == 0:
		return false
	case exp <= clock:
		return true
	case exp-clock > nearMillis:
		return false
	}
	return exp <= v.now()
}

// now is real time in unix ms: the reader's own clock.
func (v *view) now() int64 {
	if v.clock != nil {
		return v.clock().UnixMilli()
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
	t := uint64(v.m.load32(v.dirOff+(h&(1<<depth-1))*4)) * unit
	if t < v.lo || t%cacheLine != 0 || t+bucketBytes<<v.nbLog2 > v.hi {
		return 0, false
	}
	return t, true
}

// get looks key (whose hash is h) up, judging expiry by the header clock (unix ms) as
// expired does. On a hit the value is appended to dst. ref is the slot word on a hit and
// the hash's tag on a miss; it is what a reader reports so that the writer's policy
// counts the access. An entry whose value is not a string is resNotString: the caller
// must not read it as one.
func (v *view) get(h uint64, key, dst []byte, clock int64) (out []byte, ref uint64, res int) {
	m := &v.m
	nb := uint64(1) << v.nbLog2
	home := h >> (64 - v.nbLog2)
	tag := h >> 32
	for attempt := 0; attempt < maxReadRetries; attempt++ {
		if attempt > 0 && attempt%8 == 0 {
			runtime.Gosched()
		}
		ver := m.load(hdrIndexVer)
		if ver&1 != 0 {
			continue
		}
		t, ok := v.tableAt(h, uint(m.load32(hdrGlobalDepth)))
		if !ok {
			if m.load(hdrIndexVer) == ver {
				return dst, 0, resCorrupt
			}
			continue
		}
		var ovf uint64
		retry := false
	probe:
		for p := uint64(0); p < probeWindow; p++ {
			b := t + (home+p)&(nb-1)*bucketBytes
			c := m.load(b)
			if c&ctrlSeqOne != 0 {
				retry = true
				break
			}
			if p == 0 {
				ovf = c & ctrlOvfMask
			}
			for i := uint64(0); i < slotsPerBucket; i++ {
				s := m.load(b + 8 + i*8)
				if s == 0 || s>>32 != tag {
					continue
				}
				e := s & 0xffffffff * unit
				w0 := uint64(0)
				valid := e >= v.lo && e+minBlock <= v.hi
				if valid {
					w0 = m.load(e)
					size := w0Size(w0) * unit
					valid = w0&w0Free == 0 && w0Kind(w0) == kindEntry &&
						e+size <= v.hi && uint64(entryHeader+w0Klen(w0)+w0Pad(w0)) <= size
				}
				if !valid {
					// A writer recovering the segment rewrites buckets under the index
					// version alone, so both must hold still to call this corruption.
					if m.load(b) != c || m.load(hdrIndexVer) != ver {
						retry = true
						break probe
					}
					return dst, 0, resCorrupt
				}
				if w0Klen(w0) != len(key) || !m.equal(e+entryHeader, key) {
					continue
				}
				w1 := m.load(e + 8)
				if w0Type(w0) != typeString {
					if m.load(b) != c || m.load(hdrIndexVer) != ver {
						retry = true
						break probe
					}
					if v.expired(int64(w1&w1ExpMask), clock) {
						return dst, tag << 32, resMiss
					}
					return dst, 0, resNotString
				}
				vlen := int(w0Size(w0)*unit) - entryHeader - len(key) - w0Pad(w0)
				n := len(dst)
				dst = slices.Grow(dst, vlen)[:n+vlen]
				m.copyOut(dst[n:], e+entryHeader+uint64(len(key)), vlen)
				if m.load(b) != c || m.load(hdrIndexVer) != ver {
					dst = dst[:n]
					retry = true
					break probe
				}
				if v.expired(int64(w1&w1ExpMask), clock) {
					return dst[:n], tag << 32, resMiss
				}
				return dst, s, resHit
			}
			// A slot we skipped may have changed under us (an overwrite frees the old
			// entry): only a bucket that held still proves the key is absent.
			if m.load(b) != c {
				retry = true
				break
			}
			if p == 0 && ovf == 0 {
				break
			}
		}
		if !retry && m.load(hdrIndexVer) == ver {
			return dst, tag << 32, resMiss
		}
	}
	return dst, 0, resRetry
}
