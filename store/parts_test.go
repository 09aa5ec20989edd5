package store

import (
	"testing"
	"time"
	"unsafe"

	"github.com/zeebo/xxh3"
)

// The parts of a Get, each alone, for telling where a Get's time goes: the key's hash,
// the probe (header, directory, bucket, tag and key compare, and the sequence re-check),
// the value's copy, the expiry rule, the clock it reads near a deadline, and the record
// of the hit for the policy. Each part is a function the compiler may not inline, so
// that bench/shmfloor -callgrind can count its instructions; the call costs a few.
// BenchmarkReaderGet is the whole Get through a Reader, for comparison.

const (
	partKey   = "bench:hot" // the SDK benchmarks' hot key
	partValue = 100
)

// partStore is a store in a shared segment holding 100,000 entries besides the hot key
// (100-byte value) and "bench:empty" (0-byte value), and a Reader of it.
func partStore(b *testing.B) (*Store, *Reader) {
	b.Helper()
	dir := b.TempDir()
	s, err := Open(Config{Dir: dir, MaxMemory: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	// A fixed seed puts the keys in the same slots every run, so that instruction counts
	// repeat.
	s.seed, s.v.seed = 42, 42
	s.v.m.store(hdrSeed, 42)
	filler := make([]byte, partValue)
	for i := range 100_000 {
		key := []byte("key:000000000000")
		for j, n := len(key)-1, i; n > 0; j, n = j-1, n/10 {
			key[j] = byte('0' + n%10)
		}
		if _, err := s.Set(key, filler, SetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, kv := range [][2]string{{partKey, string(filler)}, {"bench:empty", ""}} {
		if _, err := s.Set([]byte(kv[0]), []byte(kv[1]), SetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	r, err := OpenReader(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return s, r
}

var sink uint64

//go:noinline
func partHash(key []byte, seed uint64) uint64 { return xxh3.HashSeed(key, seed) }

//go:noinline
func partProbe(v *view, h uint64, key, dst []byte) int {
	_, _, res := v.get(h, key, dst)
	return res
}

//go:noinline
func partCopy(base unsafe.Pointer, out []byte, off uint64) { copyOut(base, out, off) }

//go:noinline
func partExpiry(v *view, exp int64) bool { return v.expired(exp) }

//go:noinline
func partClock() int64 { return time.Now().UnixMilli() }

//go:noinline
func partRecord(b *readBuffer, ref uint64) bool { return b.hit(ref) }

func BenchmarkPartHash(b *testing.B) {
	key := []byte(partKey)
	for b.Loop() {
		sink += partHash(key, 42)
	}
}

// BenchmarkPartProbe looks up a key whose value is empty: everything of a Get on the
// segment but the hash, the copy and the record.
func BenchmarkPartProbe(b *testing.B) {
	_, r := partStore(b)
	key := []byte("bench:empty")
	h := xxh3.HashSeed(key, r.v.seed)
	for b.Loop() {
		if partProbe(&r.v, h, key, nil) != resHit {
			b.Fatal("miss")
		}
	}
}

// BenchmarkPartCopy copies the hot key's 100-byte value out of its entry, where it
// starts unaligned (after a 9-byte key).
func BenchmarkPartCopy(b *testing.B) {
	s, r := partStore(b)
	_, e, ok := s.idx.find(s.hash([]byte(partKey)), []byte(partKey))
	if !ok {
		b.Fatal("no hot key")
	}
	out := make([]byte, partValue)
	for b.Loop() {
		partCopy(r.v.m.base, out, e+entryHeader+uint64(len(partKey)))
	}
}

// BenchmarkPartExpiry judges a deadline an hour away: the header clock decides.
func BenchmarkPartExpiry(b *testing.B) {
	_, r := partStore(b)
	exp := time.Now().Add(time.Hour).UnixMilli()
	for b.Loop() {
		if partExpiry(&r.v, exp) {
			b.Fatal("expired")
		}
	}
}

// BenchmarkPartClock reads real time as the expiry rule does near a deadline.
func BenchmarkPartClock(b *testing.B) {
	for b.Loop() {
		sink += uint64(partClock())
	}
}

// BenchmarkPartRecord records hits of one entry in the store's read buffer, draining it
// as Get does when it fills.
func BenchmarkPartRecord(b *testing.B) {
	s, _ := partStore(b)
	so, _, ok := s.idx.find(s.hash([]byte(partKey)), []byte(partKey))
	if !ok {
		b.Fatal("no hot key")
	}
	ref := s.v.m.load(so)
	for b.Loop() {
		if !partRecord(s.rb, ref) {
			s.tryDrain()
		}
	}
}

// BenchmarkReaderGet is a whole Get of the hot key through a Reader.
func BenchmarkReaderGet(b *testing.B) {
	_, r := partStore(b)
	key := []byte(partKey)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, _ := r.Get(key, buf); !ok {
			b.Fatal("miss")
		}
	}
}
