package store

import (
	"bytes"
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
