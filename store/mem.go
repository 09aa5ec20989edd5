package store

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// mem is a view of a mapped segment. Offsets are bytes from the start of the mapping.
//
// Words that a reader may load concurrently are read with atomic loads. On the
// platforms we build for (amd64, arm64) an aligned atomic load is a plain load, so the
// seqlock read costs nothing extra, and the Go memory model orders it against the
// sequence checks that bracket it. The writer fills unpublished memory with plain stores
// and publishes it with an atomic store; see docs/segment-format.md for the protocol.
type mem struct {
	base unsafe.Pointer
	size uint64
}

func (m *mem) ptr(off uint64) *uint64 { return (*uint64)(unsafe.Add(m.base, off)) }

// load is an atomic load of the aligned word at off.
func (m *mem) load(off uint64) uint64 { return atomic.LoadUint64(m.ptr(off)) }

// store is an atomic store of the aligned word at off.
func (m *mem) store(off, v uint64) { atomic.StoreUint64(m.ptr(off), v) }

func (m *mem) load32(off uint64) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Add(m.base, off)))
}

func (m *mem) store32(off uint64, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Add(m.base, off)), v)
}

// bytes is the writer's plain view of n bytes at off.
func (m *mem) bytes(off, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(m.base, off)), n)
}

// load is an atomic load of the aligned word at off from the mapping at base. The read
// path calls it with base in a register: a method on mem would reload the base from
// memory after every atomic load.
func load(base unsafe.Pointer, off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Add(base, off)))
}

func load32(base unsafe.Pointer, off uint64) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Add(base, off)))
}

// equalKey16 is equalKey for keys of 9 to 16 bytes (the usual cache key): two words,
// compared where the compiler can inline them.
func equalKey16(base unsafe.Pointer, off uint64, key []byte) bool {
	n := uint(len(key))
	p := unsafe.Pointer(unsafe.SliceData(key))
	// The segment's second word holds key bytes 8..n-1 in its low bytes; the key's last
	// eight bytes hold them in their high bytes. Shift both to the top.
	sh := (128 - 8*n) & 63
	return load(base, off) == *(*uint64)(p) &&
		load(base, off+8)<<sh == *(*uint64)(unsafe.Add(p, n-8))>>sh<<sh
}

// equalKey reports whether the len(key) bytes at the aligned offset off equal key: word
// loads on the segment's side, and on the key's side word loads too, the last one ending
// at the key's end (keys of 8 bytes or more), so that no byte is compared alone.
func equalKey(base unsafe.Pointer, off uint64, key []byte) bool {
	n := len(key)
	p := unsafe.Pointer(unsafe.SliceData(key))
	i := 0
	for ; i+8 <= n; i += 8 {
		if load(base, off+uint64(i)) != *(*uint64)(unsafe.Add(p, i)) {
			return false
		}
	}
	if i == n {
		return true
	}
	r := uint(n-i) * 8 // 8..56 bits left
	var k uint64
	if n >= 8 {
		k = *(*uint64)(unsafe.Add(p, n-8)) >> ((64 - r) & 63)
	} else {
		for j := n - 1; j >= 0; j-- {
			k = k<<8 | uint64(*(*byte)(unsafe.Add(p, j)))
		}
	}
	return load(base, off+uint64(i))&(1<<(r&63)-1) == k
}

// copyWords copies len(out) bytes starting at off (any alignment) into out using aligned
// word loads only. Every word it loads holds at least one of the bytes, so it never
// reads past the block that holds them.
func copyWords(base unsafe.Pointer, out []byte, off uint64) {
	n := len(out)
	a := off &^ 7
	sh := (off - a) * 8
	i := 0
	if sh == 0 {
		for ; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(out[i:], load(base, a))
			a += 8
		}
	} else if n >= 8 {
		cur := load(base, a) >> sh
		for ; i+8 <= n; i += 8 {
			a += 8
			nxt := load(base, a)
			binary.LittleEndian.PutUint64(out[i:], cur|nxt<<(64-sh))
			cur = nxt >> sh
		}
	}
	if i < n {
		p := off + uint64(i)
		pa := p &^ 7
		s := (p - pa) * 8
		w := load(base, pa) >> s
		if uint64(n-i) > 8-(p-pa) {
			w |= load(base, pa+8) << (64 - s)
		}
		for j := i; j < n; j++ {
			out[j] = byte(w)
			w >>= 8
		}
	}
}

// get and put are plain accesses for words only the writer uses (policy links).
func (m *mem) get(off uint64) uint64    { return *m.ptr(off) }
func (m *mem) put(off uint64, v uint64) { *m.ptr(off) = v }
