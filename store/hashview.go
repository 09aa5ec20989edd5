package store

import (
	"runtime"
	"slices"
)

// resNotHash is hget's answer for a key that holds a value of another type.
const resNotHash = resNotString

// hget looks up field in the hash at key, as get looks a key up: lock-free, with the
// bucket's sequence and the index version around the whole read, every offset checked
// against the entry before it is followed, and bounded attempts. On a hit the value
// is appended to dst and ref is the entry's slot word. An entry that is not a hash is
// resNotHash; a field past its own expiry, or in an entry past its, is a miss.
func (v *view) hget(key, field, dst []byte) ([]byte, uint64, int) {
	h := hashKey(key, v.seed)
	fh := hashKey(field, v.seed)
	base := v.m.base
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
		b, c, s, res := v.locate(t, h, key)
		if res != resHit {
			if res == resMiss && load(base, hdrIndexVer) != ver || res == resRetry {
				continue
			}
			if res == resMiss {
				return dst, h >> 32 << 32, resMiss
			}
			return dst, 0, res
		}
		e := s & 0xffffffff * unit
		w0, w1 := load(base, e), load(base, e+8)
		n := len(dst)
		var fexp uint64
		if w0Type(w0) == typeHash {
			dst, fexp, res = v.hashField(e, w0, len(key), field, fh, dst)
		} else {
			res = resNotHash
		}
		if load(base, b) != c || load(base, hdrIndexVer) != ver {
			dst = dst[:n]
			continue
		}
		exp := int64(w1 & w1ExpMask)
		switch {
		case exp != 0 && v.expired(exp):
			return dst[:n], h >> 32 << 32, resMiss
		case res == resHit && fexp != 0 && v.expired(int64(fexp)):
			return dst[:n], h >> 32 << 32, resMiss
		case res == resHit:
			return dst, s, resHit
		case res == resMiss:
			return dst, h >> 32 << 32, resMiss
		}
		return dst[:n], 0, res
	}
	return dst, 0, resRetry
}

// locate finds key (hash h) in the table at t: its bucket b, the bucket's control word
// c as read before the entry, and the slot word s. res is resHit, resMiss (absent, if
// the index version held still), resRetry (a bucket changed) or resCorrupt.
func (v *view) locate(t, h uint64, key []byte) (b, c, s uint64, res int) {
	base, lo, hi := v.m.base, v.lo, v.hi
	home := h >> (v.homeShift & 63)
	tag := h >> 32
	for p := uint64(0); p < probeWindow; p++ {
		b = t + (home+p)&v.nbMask*bucketBytes
		c = load(base, b)
		if c&ctrlSeqOne != 0 {
			return b, c, 0, resRetry
		}
		for so := b + 8; so < b+bucketBytes; so += 8 {
			s = load(base, so)
			if s>>32 != tag || s == 0 {
				continue
			}
			e := s & 0xffffffff * unit
			valid := e >= lo && e+minBlock <= hi
			if valid {
				w0 := load(base, e)
				size := w0Size(w0) * unit
				valid = w0&(w0Free|w0KindMask<<w0KindShift) == 0 &&
					e+size <= hi && entryHeader+uint64(w0Klen(w0)+w0Pad(w0)) <= size
				if valid && (w0Klen(w0) != len(key) || !equalKey(base, e+entryHeader, key)) {
					continue
				}
			}
			if !valid {
				if load(base, b) != c {
					return b, c, 0, resRetry
				}
				return b, c, 0, resCorrupt
			}
			return b, c, s, resHit
		}
		if load(base, b) != c {
			return b, c, 0, resRetry
		}
		if p == 0 && c&ctrlOvfMask == 0 {
			break
		}
	}
	return b, c, 0, resMiss
}

// hashField finds field (hash fh) in the encoding of the hash entry at e (header word
// w0, key of klen bytes) and appends its value to dst, returning the field's expiry.
// Every offset is checked against the entry's value bytes, so a torn or corrupt
// encoding gives resCorrupt (which the caller trusts only if the bucket held still),
// never a read outside the entry.
func (v *view) hashField(e, w0 uint64, klen int, field []byte, fh uint64, dst []byte) ([]byte, uint64, int) {
	base := v.m.base
	end := e + w0Size(w0)*unit - uint64(w0Pad(w0))
	b := e + entryHeader + uint64(klen+hashPrefix(klen))
	if b+hashHead > end {
		return dst, 0, resCorrupt
	}
	head := load(base, b)
	log2 := head >> hashLog2Shft & 0xff
	if log2 > hashMaxLog2 || b+hashHead+unit<<log2 > end {
		return dst, 0, resCorrupt
	}
	mask := uint64(1)<<log2 - 1
	recs := b + hashHead + unit<<log2
	flen := uint64(len(field))
	for j, n := fh&mask, uint64(0); n <= mask; j, n = (j+1)&mask, n+1 {
		sw := load(base, b+hashHead+j*unit)
		if sw == 0 {
			return dst, 0, resMiss
		}
		if sw>>32 != fh>>32 {
			continue
		}
		r := b + (sw&0xffffffff)*unit
		if r < recs || r+hashRecHead > end {
			return dst, 0, resCorrupt
		}
		rw := load(base, r)
		rf, rv := rw&0xffffffff, rw>>32
		if rf+rv > end-r-hashRecHead {
			return dst, 0, resCorrupt
		}
		if rf != flen || !equalKey(base, r+hashRecHead, field) {
			continue
		}
		exp := load(base, r+8) & w1ExpMask
		k := len(dst)
		dst = slices.Grow(dst, int(rv))[:k+int(rv)]
		copyOut(base, dst[k:], r+hashRecHead+rf)
		return dst, exp, resHit
	}
	return dst, 0, resMiss
}

// HGet appends the value of field in the hash at key to dst, as Get reads a string:
// ref is the entry's ref on a hit (report it with RecordAccess), and ErrWrongType means
// key holds a string. A field with its own expiry follows the segment's expiry rule,
// as the key's does. A miss means the segment lacks the field now; the writer may
// still get the key elsewhere (an L2), so ask it.
func (r *Reader) HGet(key, field, dst []byte) (value []byte, ref uint64, found bool, err error) {
	if err := r.live(key); err != nil {
		return dst, 0, false, err
	}
	out, ref, res := r.v.hget(key, field, dst)
	switch res {
	case resHit:
		return out, ref, true, nil
	case resMiss:
		return out, 0, false, nil
	case resRetry:
		return dst, 0, false, ErrRetry
	case resNotHash:
		return dst, 0, false, ErrWrongType
	}
	return dst, 0, false, ErrCorrupt
}

// live checks what every Reader lookup checks first: the writer still serves the
// segment this Reader mapped, and the key can exist.
func (r *Reader) live(key []byte) error {
	base := r.v.m.base
	if load32(base, hdrState) != stateActive || load(base, hdrGeneration) != r.gen {
		return ErrStale
	}
	if uint(len(key))-1 >= maxKeyLimit { // empty, or too long
		if len(key) == 0 {
			return ErrKeyEmpty
		}
		return ErrKeyTooLarge
	}
	return nil
}
