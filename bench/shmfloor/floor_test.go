package main

import (
	"bytes"
	"os"
	"sync/atomic"
	"testing"
	"unsafe"
)

func TestMain(m *testing.M) {
	runWriterIfAsked()
	os.Exit(m.Run())
}

// floorOf starts a writer child of this test binary and maps its slot.
func floorOf(tb testing.TB) *floorReader {
	tb.Helper()
	dir := tb.TempDir()
	w, err := startFloorWriter(os.Args[0], dir, "-test.run=^$")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.stop)
	f, err := openFloor(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// TestFloor checks that the floor reads what the other process wrote, misses another
// key, and gives up on a slot that stays odd.
func TestFloor(t *testing.T) {
	f := floorOf(t)
	v, ok, err := f.get([]byte(hotKey), []byte("x"))
	if !ok || err != nil || !bytes.Equal(v, append([]byte("x"), hotValue(valueSize)...)) {
		t.Fatalf("get = %q %v %v", v, ok, err)
	}
	for _, k := range []string{"bench:hoT", "bench:ho", "bench:hot!", "Bench:hot"} {
		if v, ok, err := f.get([]byte(k), nil); ok || err != nil || len(v) != 0 {
			t.Fatalf("get(%q) = %q %v %v", k, v, ok, err)
		}
	}
	// A private copy of the slot held odd: bounded retries, then an error.
	b := make([]byte, floorSize)
	copy(b, unsafe.Slice((*byte)(f.base), floorSize))
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&b[0])), 3)
	odd := &floorReader{base: unsafe.Pointer(&b[0])}
	if _, ok, err := odd.get([]byte(hotKey), nil); ok || err != errFloorRetry {
		t.Fatalf("odd slot: %v %v", ok, err)
	}
}

func BenchmarkFloor(b *testing.B) {
	f := floorOf(b)
	key := []byte(hotKey)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		if v, ok, _ := f.get(key, buf[:0]); !ok || len(v) != valueSize {
			b.Fatal("miss")
		}
	}
}
