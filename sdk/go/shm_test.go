package cachee_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
)

// testData is n keys of assorted lengths with values of assorted lengths and bytes,
// so that the segment reader's word copies meet every alignment.
func testData(prefix string, n int) (keys []string, values [][]byte) {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range n {
		keys = append(keys, fmt.Sprintf("%s:%d:%s", prefix, i, strings.Repeat("k", rng.IntN(40))))
		v := make([]byte, rng.IntN(300))
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		values = append(values, v)
	}
	return keys, values
}

// TestShmMatchesGRPC reads the same keys through shared memory and over gRPC: the
// values must be equal, and the shared-memory reads must really come from the
// segment (the Client's hit counter) and reach the sidecar's stats (RecordAccess).
func TestShmMatchesGRPC(t *testing.T) {
	s := startSidecar(t, true)
	cx := ctx(t)
	viaShm := dial(t, s, cachee.WithFlushInterval(10*time.Millisecond))
	viaGRPC := dial(t, s, cachee.WithoutShm())
	waitShm(t, viaShm)
	keys, values := testData("match", 500)
	for i, k := range keys {
		if _, err := viaGRPC.Set(cx, k, values[i]); err != nil {
			t.Fatal(err)
		}
	}
	before, err := viaGRPC.Stats(cx)
	if err != nil {
		t.Fatal(err)
	}
	c0 := viaShm.Counters()
	buf := make([]byte, 0, 512)
	for i, k := range keys {
		a, foundA, errA := viaShm.GetInto(cx, k, buf)
		b, foundB, errB := viaGRPC.Get(cx, k)
		if errA != nil || errB != nil || !foundA || !foundB || !bytes.Equal(a, b) || !bytes.Equal(a, values[i]) {
			t.Fatalf("%s: shm %v %v, grpc %v %v, equal %v", k, foundA, errA, foundB, errB, bytes.Equal(a, b))
		}
	}
	c1 := viaShm.Counters()
	if hits := c1.ShmHits - c0.ShmHits; hits != uint64(len(keys)) || c1.ShmFallbacks != c0.ShmFallbacks {
		t.Fatalf("shm hits %d, fallbacks %d; want %d and 0", hits, c1.ShmFallbacks-c0.ShmFallbacks, len(keys))
	}
	// GetWithSource says which path answered.
	if _, found, src, err := viaShm.GetWithSource(cx, keys[0], buf); err != nil || !found || src != cachee.SourceShm {
		t.Fatalf("GetWithSource via shm: %v %v %v", found, src, err)
	}
	if _, found, src, err := viaGRPC.GetWithSource(cx, keys[0], buf); err != nil || !found || src != cachee.SourceSidecar {
		t.Fatalf("GetWithSource via gRPC: %v %v %v", found, src, err)
	}

	// The gRPC client's Gets count once each, and so do the shm hits: the refs the
	// access buffer lost are reported as a count.
	eventually(t, "shm hits in the sidecar's stats", func() bool {
		st, err := viaGRPC.Stats(cx)
		return err == nil && st.Hits >= before.Hits+2*uint64(len(keys))
	})
	// The counter moves when the RecordAccess call returns, a little after the
	// sidecar counted it; the buffer is lossy, so a few refs may be missing.
	eventually(t, "the Client to count its reports", func() bool {
		return viaShm.Counters().AccessReported >= uint64(len(keys))*9/10
	})

	// A miss in the segment asks the sidecar, and is counted as a fallback.
	if _, found, err := viaShm.Get(cx, "match:absent"); err != nil || found {
		t.Fatalf("absent key: %v %v", found, err)
	}
	if c := viaShm.Counters(); c.ShmFallbacks != c1.ShmFallbacks+1 {
		t.Fatalf("fallbacks %d, want %d", c.ShmFallbacks, c1.ShmFallbacks+1)
	}

	// BatchGet answers what it can from the segment.
	res, err := viaShm.BatchGet(cx, append(keys[:3:3], "match:absent"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if !res[i].Found || !bytes.Equal(res[i].Value, values[i]) {
			t.Fatalf("BatchGet %d: %+v", i, res[i])
		}
	}
	if res[3].Found {
		t.Fatal("BatchGet found an absent key")
	}
}

// TestGetIntoNoAlloc: a hit in shared memory allocates nothing.
func TestGetIntoNoAlloc(t *testing.T) {
	c := dial(t, shared)
	waitShm(t, c)
	cx := ctx(t)
	if _, err := c.Set(cx, "noalloc", bytes.Repeat([]byte("v"), 100)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	var hit bool
	allocs := testing.AllocsPerRun(1000, func() {
		_, hit, _ = c.GetInto(cx, "noalloc", buf)
	})
	if !hit {
		t.Fatal("miss")
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per hit", allocs)
	}
}

// TestShmOfAnotherSidecar points the Client at one sidecar's socket and another's
// segment: it must not read the segment, whose generation the sidecar at the socket
// does not confirm.
func TestShmOfAnotherSidecar(t *testing.T) {
	a := startSidecar(t, true)
	b := startSidecar(t, true)
	cx := ctx(t)
	if _, err := dial(t, a, cachee.WithoutShm()).Set(cx, "only-in-a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	c := dial(t, b, cachee.WithShmDir(a.shm))
	for range 20 {
		if _, found, err := c.Get(cx, "only-in-a"); err != nil || found {
			t.Fatalf("read a's segment through b: %v %v", found, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.Counters().ShmActive || c.Counters().ShmHits != 0 {
		t.Fatalf("reading another sidecar's segment: %+v", c.Counters())
	}
}

// TestShmDirAbsent: without a segment, everything goes over gRPC.
func TestShmDirAbsent(t *testing.T) {
	c := dial(t, shared, cachee.WithShmDir(filepath.Join(t.TempDir(), "nothing-here")))
	cx := ctx(t)
	if _, err := c.Set(cx, "absent-dir", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, found, err := c.Get(cx, "absent-dir"); err != nil || !found || string(v) != "x" {
		t.Fatalf("%q %v %v", v, found, err)
	}
	if c.Counters().ShmActive {
		t.Fatal("shm active without a segment")
	}
	// A directory that holds something else is no segment either.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cachee.seg"), []byte("not a segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	c = dial(t, shared, cachee.WithShmDir(dir))
	if v, found, err := c.Get(cx, "absent-dir"); err != nil || !found || string(v) != "x" {
		t.Fatalf("%q %v %v", v, found, err)
	}
}
