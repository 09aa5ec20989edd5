package store

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"
)

// Hashes. A hash is one entry whose value type is typeHash, so that it is evicted,
// expired, renamed and counted against memory as one thing, as a string is. Its value
// is an encoding laid out so that a reader finds one field by hashing the field's name
// and reading that field's record alone (docs/segment-format.md, "Hashes"):
//
//	prefix: zero bytes up to the first 8-aligned offset after the key
//	B+0   u64  bits 0..31 number of fields, 32..39 log2 of the slot count,
//	           40..47 flags (kept for the caller, see Hash.Flags)
//	B+8   u64  the earliest field expiry, unix ms; 0 when no field has one
//	B+16  u64  slots[1 << log2]: bits 32..63 tag (the field hash's top 32 bits),
//	           bits 0..31 the field's record offset from B in units; 0 is empty
//	records, each 8-aligned, in the hash's field order:
//	R+0   u64  bits 0..31 field length, 32..63 value length
//	R+8   u64  field expiry, unix ms (bits 0..47); 0 for none
//	R+16  field, value, zero padding to a multiple of 8
//
// A field's slot is found by linear probing from slot (h mod slots), h being the
// field's XXH3-64 with the segment's seed (the key hash). There are at least twice as
// many slots as fields, so a probe always ends at an empty slot.
//
// Every write of a hash writes its whole encoding again (in place when it still fits):
// a write costs the hash's size, and a hash is at most MaxValueSize bytes encoded.

const (
	typeHash = 1

	hashHead     = 16 // the two header words
	hashRecHead  = 16 // a record's two header words
	hashMaxLog2  = 30
	hashLog2Shft = 32
	hashFlagShft = 40
)

// ValueType is the type of the value a key holds.
type ValueType uint8

const (
	TypeString ValueType = typeString
	TypeHash   ValueType = typeHash
)

// HashField is one field of a hash.
type HashField struct {
	Name, Value []byte
	// ExpireAt is the field's own expiry, unix ms; 0 for none.
	ExpireAt int64
}

// Hash is a hash's fields in their order, as Tx.Hash reads them and Tx.SetHash
// writes them.
type Hash struct {
	Fields []HashField
	// Flags are eight bits stored with the hash for the caller, which the store does
	// not interpret (the RESP server keeps there what OBJECT ENCODING answers).
	Flags uint8
}

// hashPrefix is the number of zero bytes before a hash's encoding, which starts at
// the first 8-aligned offset after a key of klen bytes (entries start 8-aligned, and
// their header is three words).
func hashPrefix(klen int) int { return (unit - klen%unit) % unit }

// hashLog2 is the log2 of the slot count for n fields: at least 2n slots.
func hashLog2(n int) uint {
	if n <= 1 {
		return 1
	}
	return uint(bits.Len(uint(2*n - 1)))
}

func recordSize(f *HashField) int {
	return (hashRecHead + len(f.Name) + len(f.Value) + unit - 1) &^ (unit - 1)
}

// hashSize is the bytes of the encoding of fields (without the prefix).
func hashSize(fields []HashField) int {
	n := hashHead + unit<<hashLog2(len(fields))
	for i := range fields {
		n += recordSize(&fields[i])
	}
	return n
}

// encodeHash appends the value of a hash with fields, for a key of klen bytes, to dst.
func encodeHash(dst []byte, klen int, h *Hash, seed uint64) []byte {
	prefix := hashPrefix(klen)
	log2 := hashLog2(len(h.Fields))
	size := hashSize(h.Fields)
	start := len(dst)
	dst = append(dst, make([]byte, prefix+size)...)
	b := dst[start+prefix:]
	var minExp int64
	for i := range h.Fields {
		if e := h.Fields[i].ExpireAt; e != 0 && (minExp == 0 || e < minExp) {
			minExp = e
		}
	}
	binary.LittleEndian.PutUint64(b, uint64(len(h.Fields))|uint64(log2)<<hashLog2Shft|uint64(h.Flags)<<hashFlagShft)
	binary.LittleEndian.PutUint64(b[8:], uint64(minExp))
	mask := uint64(1)<<log2 - 1
	r := hashHead + unit<<log2
	for i := range h.Fields {
		f := &h.Fields[i]
		binary.LittleEndian.PutUint64(b[r:], uint64(len(f.Name))|uint64(len(f.Value))<<32)
		binary.LittleEndian.PutUint64(b[r+8:], uint64(f.ExpireAt))
		copy(b[r+hashRecHead:], f.Name)
		copy(b[r+hashRecHead+len(f.Name):], f.Value)
		fh := hashKey(f.Name, seed)
		for j := fh & mask; ; j = (j + 1) & mask {
			so := hashHead + j*unit
			if binary.LittleEndian.Uint64(b[so:]) == 0 {
				binary.LittleEndian.PutUint64(b[so:], fh>>32<<32|uint64(r/unit))
				break
			}
		}
		r += recordSize(f)
	}
	return dst
}

// decodeHash reads the value of a hash entry whose key has klen bytes, checking it
// against the format throughout (slots included: every record is where a reader probing
// for its name with seed finds it). The fields alias value.
func decodeHash(value []byte, klen int, seed uint64) (Hash, error) {
	var h Hash
	prefix := hashPrefix(klen)
	if len(value) < prefix+hashHead {
		return h, fmt.Errorf("%w: hash of %d bytes", ErrCorrupt, len(value))
	}
	b := value[prefix:]
	head := binary.LittleEndian.Uint64(b)
	n := int(head & 0xffffffff)
	log2 := uint(head >> hashLog2Shft & 0xff)
	h.Flags = uint8(head >> hashFlagShft)
	if n == 0 || log2 > hashMaxLog2 || log2 != hashLog2(n) || head>>48 != 0 ||
		hashHead+unit<<log2 > len(b) || n > len(b)/hashRecHead {
		return h, fmt.Errorf("%w: hash header %#x of %d bytes", ErrCorrupt, head, len(b))
	}
	h.Fields = make([]HashField, 0, n)
	r := hashHead + unit<<log2
	for r < len(b) {
		if len(b)-r < hashRecHead {
			return h, fmt.Errorf("%w: hash record at %d", ErrCorrupt, r)
		}
		rw := binary.LittleEndian.Uint64(b[r:])
		flen, vlen := rw&0xffffffff, rw>>32
		exp := binary.LittleEndian.Uint64(b[r+8:])
		if flen+vlen > uint64(len(b)-r-hashRecHead) || exp > w1ExpMask {
			return h, fmt.Errorf("%w: hash record at %d", ErrCorrupt, r)
		}
		f := b[r+hashRecHead:]
		h.Fields = append(h.Fields, HashField{Name: f[:flen:flen], Value: f[flen : flen+vlen : flen+vlen], ExpireAt: int64(exp)})
		r += recordSize(&h.Fields[len(h.Fields)-1])
		if len(h.Fields) > n {
			break
		}
	}
	if r != len(b) || len(h.Fields) != n {
		return h, fmt.Errorf("%w: hash holds %d records, header says %d", ErrCorrupt, len(h.Fields), n)
	}
	return h, checkSlots(b, &h, log2, seed)
}

// checkSlots checks that the slots of the encoding b name exactly its records, each
// where probing for its name finds it first.
func checkSlots(b []byte, h *Hash, log2 uint, seed uint64) error {
	mask := uint64(1)<<log2 - 1
	used := 0
	for j := uint64(0); j <= mask; j++ {
		if binary.LittleEndian.Uint64(b[hashHead+j*unit:]) != 0 {
			used++
		}
	}
	if used != len(h.Fields) {
		return fmt.Errorf("%w: hash has %d slots in use for %d fields", ErrCorrupt, used, len(h.Fields))
	}
	r := uint64(hashHead + unit<<log2)
	for i := range h.Fields {
		f := &h.Fields[i]
		fh := hashKey(f.Name, seed)
		want := fh>>32<<32 | r/unit
		found := false
		for j, n := fh&mask, uint64(0); n <= mask; j, n = (j+1)&mask, n+1 {
			sw := binary.LittleEndian.Uint64(b[hashHead+j*unit:])
			if sw == 0 {
				break
			}
			if sw == want {
				found = true
				break
			}
			if sw>>32 == fh>>32 {
				// An earlier record with this tag: it must not have the same name, or
				// readers would find that one.
				o := (sw & 0xffffffff) * unit
				if o+hashRecHead <= uint64(len(b)) {
					rw := binary.LittleEndian.Uint64(b[o:])
					if rw&0xffffffff == uint64(len(f.Name)) && o+hashRecHead+uint64(len(f.Name)) <= uint64(len(b)) &&
						string(b[o+hashRecHead:o+hashRecHead+uint64(len(f.Name))]) == string(f.Name) {
						return fmt.Errorf("%w: hash field %q twice", ErrCorrupt, f.Name)
					}
				}
			}
		}
		if !found {
			return fmt.Errorf("%w: hash field %q not in its slots", ErrCorrupt, f.Name)
		}
		r += uint64(recordSize(f))
	}
	return nil
}

// hashDead reports whether the hash entry at e has fields with an expiry and none of
// them is live at now: the key is then as gone as an expired one.
func (s *Store) hashDead(e uint64, now int64) bool {
	m := &s.v.m
	w0 := m.load(e)
	klen := w0Klen(w0)
	b := e + entryHeader + uint64(klen+hashPrefix(klen))
	if minExp := int64(m.load(b + 8)); minExp == 0 || minExp > now {
		return false
	}
	h, err := decodeHash(s.entryValue(e), klen, s.seed)
	if err != nil {
		return false // Tx.Hash reports the corruption
	}
	for _, f := range h.Fields {
		if f.ExpireAt == 0 || f.ExpireAt > now {
			return false
		}
	}
	return true
}

// hashDue reports whether the live hash entry at e has a field expired at now, which
// the sweep then removes.
func (s *Store) hashDue(e uint64, now int64) bool {
	m := &s.v.m
	w0 := m.load(e)
	if w0Type(w0) != typeHash {
		return false
	}
	klen := w0Klen(w0)
	minExp := int64(m.load(e + entryHeader + uint64(klen+hashPrefix(klen)) + 8))
	return minExp != 0 && minExp <= now
}

// entryValue is the writer's view of the value bytes of the entry at e.
func (s *Store) entryValue(e uint64) []byte {
	m := &s.v.m
	w0 := m.load(e)
	klen := w0Klen(w0)
	vlen := w0Size(w0)*unit - entryHeader - uint64(klen) - uint64(w0Pad(w0))
	return m.bytes(e+entryHeader+uint64(klen), vlen)
}

// liveEntry finds key's entry as of now, removing it if it has expired.
func (s *Store) liveEntry(h uint64, key []byte, now int64) (uint64, bool) {
	so, e, ok := s.idx.find(h, key)
	if ok && s.expired(e, now) {
		s.removeEntry(h, so, e, &s.expirations)
		return 0, false
	}
	return e, ok
}

// Type reports the type of the value key holds, and false for a missing key.
func (tx *Tx) Type(key []byte) (ValueType, bool) {
	if tx.s.checkKey(key) != nil {
		return 0, false
	}
	e, ok := tx.s.liveEntry(tx.s.hash(key), key, tx.now)
	if !ok {
		return 0, false
	}
	return ValueType(w0Type(tx.s.v.m.load(e))), true
}

// Hash reads the hash at key: its fields that are live at the transaction's time, in
// order, copied out of the store. ErrWrongType means key holds a string. It counts as
// a read of the key, as Get does.
func (tx *Tx) Hash(key []byte) (Hash, bool, error) {
	s := tx.s
	if err := s.checkKey(key); err != nil {
		return Hash{}, false, err
	}
	h := s.hash(key)
	hs, e, ok, err := s.readHash(h, key, tx.now)
	switch {
	case err != nil:
		return Hash{}, false, err
	case !ok:
		s.rb.miss()
		return Hash{}, false, nil
	}
	s.pol.access(e, h>>32, 1)
	s.rb.countHit()
	return hs, true, nil
}

// readHash reads the hash at key (hash h) with its fields live at now, and its entry.
// Caller holds mu.
func (s *Store) readHash(h uint64, key []byte, now int64) (Hash, uint64, bool, error) {
	e, ok := s.liveEntry(h, key, now)
	if !ok {
		return Hash{}, 0, false, nil
	}
	if w0Type(s.v.m.load(e)) != typeHash {
		return Hash{}, 0, false, ErrWrongType
	}
	v := append([]byte(nil), s.entryValue(e)...)
	hs, err := decodeHash(v, len(key), s.seed)
	if err != nil {
		return Hash{}, 0, false, err
	}
	live := hs.Fields[:0]
	for _, f := range hs.Fields {
		if f.ExpireAt == 0 || f.ExpireAt > now {
			live = append(live, f)
		}
	}
	hs.Fields = live
	return hs, e, true, nil
}

// compactHashes rewrites the hashes at keys without their fields expired at now (the
// sweep's work for hashes; a hash with no live field left has expired as a whole).
// Caller holds mu.
func (s *Store) compactHashes(keys [][]byte, now int64) {
	tx := Tx{s: s, now: now}
	for _, k := range keys {
		hs, _, ok, err := s.readHash(s.hash(k), k, now)
		if err == nil && ok {
			_ = tx.SetHash(k, hs) // smaller than it was: fits, or is dropped by eviction
		}
	}
}

// SetHash stores hs as the hash at key, replacing what key held and keeping its
// expiry (a new key gets none). A hash without fields deletes the key. A hash whose
// encoding is over MaxValueSize is ErrHashTooLarge, and nothing changes.
func (tx *Tx) SetHash(key []byte, hs Hash) error {
	s := tx.s
	if err := s.checkKey(key); err != nil {
		return err
	}
	if len(hs.Fields) == 0 {
		_, err := tx.Delete(key)
		return err
	}
	if n := hashSize(hs.Fields); n > s.cfg.MaxValueSize {
		return fmt.Errorf("%w: %d fields take %d bytes encoded, over the limit of %d bytes (--max-value-size)",
			ErrHashTooLarge, len(hs.Fields), n, s.cfg.MaxValueSize)
	}
	v := encodeHash(nil, len(key), &hs, s.seed)
	if err := s.checkValue(key, v); err != nil {
		return fmt.Errorf("%w: %w", ErrHashTooLarge, err)
	}
	_, err := s.setTyped(s.hash(key), key, v, typeHash, SetOptions{KeepTTL: true}, tx.now)
	return err
}

// HGet appends the value of field in the hash at key to dst. It never blocks, as Get.
// ErrWrongType means key holds a string.
func (s *Store) HGet(key, field, dst []byte) ([]byte, bool, error) {
	if err := s.checkKey(key); err != nil {
		return dst, false, err
	}
	if s.closed.Load() {
		return dst, false, ErrClosed
	}
	out, ref, res := s.v.hget(key, field, dst)
	switch res {
	case resHit:
		if !s.rb.hit(ref) {
			s.tryDrain()
		}
		return out, true, nil
	case resMiss:
		s.rb.miss()
		return out, false, nil
	case resNotHash:
		return dst, false, ErrWrongType
	case resCorrupt:
		return dst, false, ErrCorrupt
	}
	// A long transaction kept the bucket changing: read under the lock.
	var found bool
	var v []byte
	err := s.Update(func(tx *Tx) error {
		var err error
		v, found, err = tx.HGet(key, field, dst)
		return err
	})
	return v, found, err
}

// HGet is Store.HGet inside the transaction.
func (tx *Tx) HGet(key, field, dst []byte) ([]byte, bool, error) {
	hs, ok, err := tx.Hash(key)
	if err != nil || !ok {
		return dst, false, err
	}
	for _, f := range hs.Fields {
		if string(f.Name) == string(field) {
			return append(dst, f.Value...), true, nil
		}
	}
	return dst, false, nil
}

// Copy copies the value at src, whatever its type, and its expiry to dst. It reports
// false, copying nothing, when src is missing or dst exists and replace is false.
func (tx *Tx) Copy(src, dst []byte, replace bool) (bool, error) {
	s := tx.s
	if err := s.checkKey(src); err != nil {
		return false, err
	}
	if err := s.checkKey(dst); err != nil {
		return false, err
	}
	e, ok := s.liveEntry(s.hash(src), src, tx.now)
	if !ok {
		return false, nil
	}
	if !replace && tx.Exists(dst) {
		return false, nil
	}
	w0 := s.v.m.load(e)
	typ := w0Type(w0)
	exp := int64(s.v.m.load(e+8) & w1ExpMask)
	var v []byte
	if typ == typeHash {
		// The encoding starts 8-aligned after the key: pad it for dst's length.
		old := s.entryValue(e)[hashPrefix(len(src)):]
		v = append(make([]byte, hashPrefix(len(dst)), hashPrefix(len(dst))+len(old)), old...)
	} else {
		v = append([]byte(nil), s.entryValue(e)...)
	}
	if err := s.checkValue(dst, v); err != nil {
		return false, err
	}
	var opt SetOptions
	if exp != 0 {
		opt.ExpireAt = time.UnixMilli(exp)
	}
	return s.setTyped(s.hash(dst), dst, v, typ, opt, tx.now)
}
