package cachee_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	cachee "github.com/cachee/cachee/sdk/go"
	"github.com/cachee/cachee/store"
)

// Header fields of the segment (docs/segment-format.md) that the corruptions aim at.
const (
	hdrBucketsLog2 = 52
	hdrDirOffset   = 56
	hdrArenaOffset = 72
	hdrClock       = 128
	hdrGlobalDepth = 200
)

var le = binary.LittleEndian

// slotWords calls fn with the offset of every non-empty slot word of every index table.
func slotWords(b []byte, fn func(off int)) {
	dir := int(le.Uint64(b[hdrDirOffset:]))
	nb := 1 << le.Uint32(b[hdrBucketsLog2:])
	seen := map[int]bool{}
	for i := range 1 << le.Uint32(b[hdrGlobalDepth:]) {
		t := int(le.Uint32(b[dir+4*i:])) * 8
		if seen[t] || t == 0 || t+64*nb > len(b) {
			continue
		}
		seen[t] = true
		for j := range nb {
			for s := range 7 {
				off := t + 64*j + 8 + 8*s
				if le.Uint64(b[off:]) != 0 {
					fn(off)
				}
			}
		}
	}
}

// entryWords calls fn with the offset of the first word of every entry a slot names.
func entryWords(b []byte, fn func(off int)) {
	slotWords(b, func(off int) {
		if e := int(le.Uint64(b[off:])&0xffffffff) * 8; e > 0 && e+8 <= len(b) {
			fn(e)
		}
	})
}

// TestCorruptSegmentCopy corrupts copies of a live segment in ways a bug or a stray
// write could, and reads every key from them, directly with store.Reader and through a
// Client whose sidecar confirms the copy (it has the live segment's generation). The
// reader must fail safe: an error, a miss or a fallback to the sidecar, never a crash;
// and where the corruption is in the structure (not in value bytes, which carry no
// checksum) the Client must still return the sidecar's values.
func TestCorruptSegmentCopy(t *testing.T) {
	s := startSidecar(t, true)
	cx := ctx(t)
	keys, values := testData("corrupt", 300)
	setter := dial(t, s, cachee.WithoutShm())
	for i, k := range keys {
		if _, err := setter.Set(cx, k, values[i]); err != nil {
			t.Fatal(err)
		}
	}
	live, err := os.ReadFile(filepath.Join(s.shm, store.SegmentFile))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		structural bool // every read must fail safe, and the Client must fall back
		mutate     func(b []byte) []byte
	}{
		{"directory points outside the arena", true, func(b []byte) []byte {
			dir := int(le.Uint64(b[hdrDirOffset:]))
			for i := range 1 << le.Uint32(b[hdrGlobalDepth:]) {
				le.PutUint32(b[dir+4*i:], 0xffffffff)
			}
			return b
		}},
		{"directory misaligned", true, func(b []byte) []byte {
			dir := int(le.Uint64(b[hdrDirOffset:]))
			for i := range 1 << le.Uint32(b[hdrGlobalDepth:]) {
				le.PutUint32(b[dir+4*i:], le.Uint32(b[dir+4*i:])+1)
			}
			return b
		}},
		{"slots point outside the arena", true, func(b []byte) []byte {
			slotWords(b, func(off int) { le.PutUint64(b[off:], le.Uint64(b[off:])|0xfffffff0) })
			return b
		}},
		{"slots point at the header", true, func(b []byte) []byte {
			slotWords(b, func(off int) { le.PutUint64(b[off:], le.Uint64(b[off:])&^0xffffffff|1) })
			return b
		}},
		{"entries claim sizes past the end", true, func(b []byte) []byte {
			entryWords(b, func(e int) { le.PutUint64(b[e:], le.Uint64(b[e:])|0xffffffff) })
			return b
		}},
		{"entries marked free", true, func(b []byte) []byte {
			entryWords(b, func(e int) { le.PutUint64(b[e:], le.Uint64(b[e:])|1<<58) })
			return b
		}},
		{"entries claim a key longer than the block", true, func(b []byte) []byte {
			entryWords(b, func(e int) { le.PutUint64(b[e:], le.Uint64(b[e:])|0xfffff<<32) })
			return b
		}},
		{"random bytes in the arena", false, func(b []byte) []byte {
			rng := rand.New(rand.NewPCG(3, 4))
			lo := int(le.Uint64(b[hdrArenaOffset:]))
			for range 20000 {
				b[lo+rng.IntN(len(b)-lo)] = byte(rng.Uint32())
			}
			return b
		}},
		{"random bytes in the index", false, func(b []byte) []byte {
			rng := rand.New(rand.NewPCG(5, 6))
			slotWords(b, func(off int) {
				if rng.IntN(3) == 0 {
					b[off+rng.IntN(8)] = byte(rng.Uint32())
				}
			})
			return b
		}},
		{"random header", false, func(b []byte) []byte {
			rng := rand.New(rand.NewPCG(7, 8))
			for range 64 {
				b[8+rng.IntN(4096-8)] = byte(rng.Uint32())
			}
			return b
		}},
		{"truncated", false, func(b []byte) []byte { return b[:len(b)/2] }},
		{"size not a page multiple", false, func(b []byte) []byte { return b[:len(b)-100] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, store.SegmentFile)
			if err := os.WriteFile(path, tt.mutate(bytes.Clone(live)), 0o644); err != nil {
				t.Fatal(err)
			}

			// The reader alone.
			mapped := false
			if r, err := store.OpenReader(dir); err != nil {
				t.Logf("OpenReader refuses it: %v", err)
			} else {
				mapped = true
				buf := make([]byte, 0, 512)
				for _, k := range keys {
					_, _, found, err := r.Get([]byte(k), buf)
					if tt.structural && (found || !errors.Is(err, store.ErrCorrupt) && err != nil) {
						t.Fatalf("%s: found %v, %v", k, found, err)
					}
				}
				r.Close()
			}
			if tt.structural && !mapped {
				t.Fatal("a structural corruption should pass the header checks and be caught by Get")
			}
			if !mapped {
				return
			}

			// Through a Client. The copy needs a live writer to be read: hold its
			// lock and keep its clock fresh, as the sidecar would.
			stop := keepAlive(t, path)
			defer stop()
			c := dial(t, s, cachee.WithShmDir(dir))
			waitShm(t, c)
			for i, k := range keys {
				v, found, err := c.Get(cx, k)
				if err != nil {
					t.Fatalf("%s: %v", k, err)
				}
				if tt.structural && (!found || !bytes.Equal(v, values[i])) {
					t.Fatalf("%s: found %v, value differs from the sidecar's", k, found)
				}
			}
			n := c.Counters()
			t.Logf("counters %+v", n)
			if tt.structural && (n.ShmCorrupt == 0 || n.ShmHits != 0) {
				t.Fatalf("corruption not caught: %+v", n)
			}
		})
	}
}

// keepAlive plays the writer for a copied segment: it holds the writer's lock and
// advances the header's clock, so that a Client's liveness checks pass.
func keepAlive(t *testing.T, path string) (stop func()) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	tick := func() {
		var b [8]byte
		le.PutUint64(b[:], uint64(time.Now().UnixMilli()))
		if _, err := f.WriteAt(b[:], hdrClock); err != nil {
			t.Error(err)
		}
	}
	tick()
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				tick()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		f.Close()
	}
}
