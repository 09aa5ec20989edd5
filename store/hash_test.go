package store

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/xxh3"
)

// TestHashVectors pins the key hash to XXH3-64 with a seed, as docs/segment-format.md
// states, with vectors from the reference implementation, so that readers in other
// languages can rely on them.
func TestHashVectors(t *testing.T) {
	cases := []struct {
		key  []byte
		seed uint64
		want uint64
	}{
		{[]byte("user:42"), 42, 0x1d4738214b98f74f},
		{nil, 0, 0x2d06800538d394c2},
		{bytes.Repeat([]byte("x"), 300), 0x9e3779b97f4a7c15, 0xd7aa4e081cbf1f58},
	}
	for _, c := range cases {
		if got := xxh3.HashSeed(c.key, c.seed); got != c.want {
			t.Errorf("XXH3(%q, %#x) = %#x, want %#x", c.key, c.seed, got, c.want)
		}
	}
	s := &Store{seed: 42}
	if got := s.hash([]byte("user:42")); got != 0x1d4738214b98f74f {
		t.Errorf("Store.hash disagrees with the format: %#x", got)
	}
}

// TestHashKey checks the store's own short-key path against the xxh3 package at every
// length from 0 to 40 bytes, with random keys and seeds, and with keys cut from the end
// of a page-sized buffer (hashKey reads only inside the key).
func TestHashKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 64)
	for n := 0; n <= 40; n++ {
		for range 2000 {
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			seed := rng.Uint64()
			if n%3 == 0 {
				seed = uint64(rng.Uint32()) // small seeds: the 4..8-byte path folds the seed's low half
			}
			key := buf[len(buf)-n:]
			if got, want := hashKey(key, seed), xxh3.HashSeed(key, seed); got != want {
				t.Fatalf("hashKey(%x, %#x) = %#x, xxh3 %#x", key, seed, got, want)
			}
		}
	}
}
