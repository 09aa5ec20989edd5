package store

import (
	"testing"
	"time"
	"unsafe"
)

// The parts of a Get, each alone, for telling where a Get's time goes: the key's hash,
// the probe (header, directory, bucket, tag and key compare, and the sequence re-check),
// the value's copy, the expiry rule, the clock it reads near a deadline, and the record
// of the hit for the policy; and the whole Get, through a Reader and through the Store.
// Each part is a function the compiler may not inline (the call costs a few
// instructions), so that a profile names it. bench/shmfloor -callgrind counts their
// instructions: the store's background loop is stopped, so that nothing but the
// benchmark runs.

const (
	partKey   = "bench:hot" // the SDK benchmarks' hot key
	partValue = 100
)

// partStore is a store in a shared segment holding the hot key (100-byte value) and
// "bench:empty" (0-byte value), with its background loop stopped, and a Reader of it.
// Each key sits first in its bucket, as a hot key mostly does.
func partStore(b *testing.B) (*Store, *Reader) {
	b.Helper()
	dir := b.TempDir()
	s, err := Open(Config{Dir: dir, MaxMemory: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	close(s.stop) // quiet: Close then finds the loop ended
	<-s.done
	s.stop = make(chan struct{})
	// A fixed seed puts the keys in the same slots every run, so that instruction counts
	// repeat.
	s.seed, s.v.seed = 42, 42
	s.v.m.store(hdrSeed, 42)
	for _, kv := range [][2]string{{partKey, string(make([]byte, partValue))}, {"bench:empty", ""}} {
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
func partNone() {}

//go:noinline
func partHash(key []byte, seed uint64) uint64 { return hashKey(key, seed) }

//go:noinline
func partProbe(v *view, key, dst []byte) int {
	_, _, res := v.get(key, dst)
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

// BenchmarkPartNone is the loop and the call alone, to subtract from the others.
func BenchmarkPartNone(b *testing.B) {
	for range b.N {
		partNone()
	}
}

func BenchmarkPartHash(b *testing.B) {
	key := []byte(partKey)
	for range b.N {
		sink += partHash(key, 42)
	}
}

// BenchmarkPartProbe looks up a key whose value is empty: everything of a Get on the
// segment (the hash too, which the read path computes inline) but the copy and the
// record.
func BenchmarkPartProbe(b *testing.B) {
	_, r := partStore(b)
	key := []byte("bench:empty")
	b.ResetTimer()
	for range b.N {
		if partProbe(&r.v, key, nil) != resHit {
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
	b.ResetTimer()
	for range b.N {
		partCopy(r.v.m.base, out, e+entryHeader+uint64(len(partKey)))
	}
}

// BenchmarkPartExpiry judges a deadline an hour away: the header clock decides.
func BenchmarkPartExpiry(b *testing.B) {
	_, r := partStore(b)
	exp := time.Now().Add(time.Hour).UnixMilli()
	b.ResetTimer()
	for range b.N {
		if partExpiry(&r.v, exp) {
			b.Fatal("expired")
		}
	}
}

// BenchmarkPartClock reads real time as the expiry rule does near a deadline.
func BenchmarkPartClock(b *testing.B) {
	for range b.N {
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
	b.ResetTimer()
	for range b.N {
		if !partRecord(s.rb, ref) {
			s.tryDrain()
		}
	}
}

// BenchmarkPartReaderGet is a whole Get of the hot key through a Reader.
func BenchmarkPartReaderGet(b *testing.B) {
	_, r := partStore(b)
	key := []byte(partKey)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, ok, _ := r.Get(key, buf); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkPartStoreGet is a whole Get of the hot key through the Store (GetHit).
func BenchmarkPartStoreGet(b *testing.B) {
	s, _ := partStore(b)
	key := []byte(partKey)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, ok, _ := s.Get(key, buf); !ok {
			b.Fatal("miss")
		}
	}
}
