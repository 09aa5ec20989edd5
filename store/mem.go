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

// equal reports whether the n = len(key) bytes at the aligned offset off equal key,
// using word loads.
func (m *mem) equal(off uint64, key []byte) bool {
	n := len(key)
	i := 0
	for ; i+8 <= n; i += 8 {
		if m.load(off+uint64(i)) != binary.LittleEndian.Uint64(key[i:]) {
			return false
		}
	}
	if i < n {
		w := m.load(off + uint64(i))
		var k uint64
		for j := n - 1; j >= i; j-- {
			k = k<<8 | uint64(key[j])
		}
		mask := uint64(1)<<(8*uint(n-i)) - 1
		if w&mask != k {
			return false
		}
	}
	return true
}

// copyOut copies n bytes starting at off (any alignment) into out[:n] using aligned
// word loads only. Every word it loads holds at least one of the n bytes, so it never
// reads past the block that holds them.
func (m *mem) copyOut(out []byte, off uint64, n int) {
	out = out[:n]
	a := off &^ 7
	sh := (off - a) * 8
	i := 0
	if sh == 0 {
		for ; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(out[i:], m.load(a))
			a += 8
		}
	} else if n >= 8 {
		cur := m.load(a) >> sh
		for ; i+8 <= n; i += 8 {
			a += 8
			nxt := m.load(a)
			binary.LittleEndian.PutUint64(out[i:], cur|nxt<<(64-sh))
			cur = nxt >> sh
		}
	}
	if i < n {
		p := off + uint64(i)
		pa := p &^ 7
		s := (p - pa) * 8
		w := m.load(pa) >> s
		if uint64(n-i) > 8-(p-pa) {
			w |= m.load(pa+8) << (64 - s)
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
