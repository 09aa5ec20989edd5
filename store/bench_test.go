package store_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cachee/cachee/store"
)

const benchKeys = 100_000

// benchStore holds benchKeys entries of 16-byte keys and 100-byte values.
func benchStore(b *testing.B, policy string) (*store.Store, [][]byte) {
	s := open(b, store.Config{MaxMemory: 256 << 20, Eviction: policy})
	keys := make([][]byte, benchKeys)
	val := make([]byte, 100)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key:%012d", i) // 16 bytes
		if _, err := s.Set(keys[i], val, store.SetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

// BenchmarkGetHit reads a hot set (one key, 1,000 keys: in cache) and a uniform spread
// over all 100,000 keys (about 15 MB of entries: each read misses the CPU caches).
func BenchmarkGetHit(b *testing.B) {
	s, keys := benchStore(b, store.EvictionLFU)
	for _, n := range []int{1, 1000, benchKeys} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			buf := make([]byte, 0, 128)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok, _ := s.Get(keys[(i*7919)%n], buf[:0]); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	s, keys := benchStore(b, store.EvictionLFU)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 128)
		i := rand.IntN(benchKeys)
		for pb.Next() {
			s.Get(keys[i%benchKeys], buf[:0])
			i++
		}
	})
}

func BenchmarkGetMiss(b *testing.B) {
	s, _ := benchStore(b, store.EvictionLFU)
	miss := []byte("missing:00000000")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Get(miss, nil)
	}
}

// BenchmarkSet overwrites 100-byte values of a hot set (1,000 keys) and of all
// 100,000 keys (cache-missing).
func BenchmarkSet(b *testing.B) {
	s, keys := benchStore(b, store.EvictionLFU)
	val := make([]byte, 100)
	for _, n := range []int{1000, benchKeys} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s.Set(keys[(i*7919)%n], val, store.SetOptions{})
			}
		})
	}
}

func BenchmarkSetParallel(b *testing.B) {
	s, keys := benchStore(b, store.EvictionLFU)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		val := make([]byte, 100)
		i := rand.IntN(benchKeys)
		for pb.Next() {
			s.Set(keys[i%benchKeys], val, store.SetOptions{})
			i++
		}
	})
}

// BenchmarkSetEvicting inserts new keys into a full store: every Set evicts.
func BenchmarkSetEvicting(b *testing.B) {
	s := open(b, store.Config{MaxMemory: 16 << 20})
	val := make([]byte, 100)
	key := make([]byte, 16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		copy(key, fmt.Appendf(key[:0], "key:%012d", i))
		s.Set(key, val, store.SetOptions{})
	}
}

func BenchmarkMixed90_10(b *testing.B) {
	s, keys := benchStore(b, store.EvictionLFU)
	val := make([]byte, 100)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := keys[(i*7919)%benchKeys]
		if i%10 == 0 {
			s.Set(k, val, store.SetOptions{})
		} else {
			s.Get(k, buf[:0])
		}
	}
}

func BenchmarkMixed90_10Parallel(b *testing.B) {
	s, keys := benchStore(b, store.EvictionLFU)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		val := make([]byte, 100)
		buf := make([]byte, 0, 128)
		i := rand.IntN(benchKeys)
		for pb.Next() {
			k := keys[(i*7919)%benchKeys]
			if i%10 == 0 {
				s.Set(k, val, store.SetOptions{})
			} else {
				s.Get(k, buf[:0])
			}
			i++
		}
	})
}

// BenchmarkMetadataPerEntry fills a store with 1M entries of 16-byte keys and 100-byte
// values and reports the bytes it uses beyond the keys and values, per entry: header,
// alignment, index slots and buckets, sketch and fixed structures together.
func BenchmarkMetadataPerEntry(b *testing.B) {
	for b.Loop() {
		s := open(b, store.Config{MaxMemory: 256 << 20})
		const n = 1_000_000
		key := make([]byte, 16)
		val := make([]byte, 100)
		for i := range n {
			copy(key, fmt.Appendf(key[:0], "key:%012d", i))
			if _, err := s.Set(key, val, store.SetOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		st := s.Stats()
		if st.Entries != n {
			b.Fatalf("%d entries", st.Entries)
		}
		b.ReportMetric(float64(st.BytesUsed-n*116)/n, "meta-B/entry")
		b.ReportMetric(float64(st.BytesUsed)/n, "total-B/entry")
		s.Close()
	}
}
