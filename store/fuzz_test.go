package store

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	templateOnce sync.Once
	template     []byte
	guarded      []byte // a mapping with PROT_NONE pages on both sides
)

// fuzzTemplate is a small segment holding entries of many sizes and a grown index,
// laid out with a fixed hash seed so that a crasher reproduces.
func fuzzTemplate(tb testing.TB) []byte {
	templateOnce.Do(func() {
		s, err := Open(Config{MaxMemory: MinMemory})
		if err != nil {
			tb.Fatal(err)
		}
		s.seed, s.v.seed = 42, 42
		s.v.m.store(hdrSeed, 42)
		for i := range 3000 {
			s.Set(fmt.Appendf(nil, "key-%d", i), make([]byte, i%300), SetOptions{})
		}
		template = append([]byte(nil), s.v.m.bytes(0, s.seg.size)...)
		s.Close()
		const page = 4096
		b, err := unix.Mmap(-1, 0, len(template)+2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			tb.Fatal(err)
		}
		if err := unix.Mprotect(b[:page], unix.PROT_NONE); err != nil {
			tb.Fatal(err)
		}
		if err := unix.Mprotect(b[page+len(template):], unix.PROT_NONE); err != nil {
			tb.Fatal(err)
		}
		guarded = b[page : page+len(template)]
	})
	return template
}

// FuzzReader patches a valid segment with arbitrary bytes at an arbitrary place and
// reads keys from it. A reader must never fault (the segment sits between guard pages,
// so a read outside it crashes the fuzzer), never panic, and never hang: whatever the
// bytes, each Get ends in a value, a miss, ErrRetry or ErrCorrupt.
func FuzzReader(f *testing.F) {
	tmpl := fuzzTemplate(f)
	f.Add(uint32(0), []byte{}, []byte("key-1"))
	f.Add(uint32(hdrDirOffset), []byte{0xff, 0xff, 0xff, 0xff}, []byte("key-2"))
	f.Add(uint32(hdrGlobalDepth), []byte{30}, []byte("key-3"))
	f.Add(uint32(4096), []byte{0xff, 0xff, 0xff, 0x7f}, []byte("key-4"))
	f.Add(uint32(8200), []byte("\xff\xff\xff\xff\xff\xff\xff\xff"), []byte("key-5"))
	f.Add(uint32(len(tmpl)/2), make([]byte, 4096), []byte("key-6"))
	f.Fuzz(func(t *testing.T, off uint32, patch, key []byte) {
		buf := guarded
		copy(buf, tmpl)
		o := int(off) % len(buf)
		copy(buf[o:], patch)
		r := &Reader{seg: segment{mem: mem{base: unsafe.Pointer(&buf[0]), size: uint64(len(buf))}}}
		if r.validate() != nil {
			return
		}
		dst := make([]byte, 0, 64)
		for _, k := range [][]byte{key, []byte("key-1"), []byte("key-2999"), []byte("key-1500")} {
			v, _, found, err := r.Get(k, dst)
			if found && err != nil {
				t.Fatalf("found with error %v", err)
			}
			if uint64(len(v)) > r.v.hi {
				t.Fatalf("value of %d bytes from a %d-byte segment", len(v), r.v.hi)
			}
		}
	})
}
