package store

import (
	"testing"
	"time"
)

// TestClockIdlesAndWakes checks that a quiet store slows its clock down, and that the
// first read afterwards brings the clock up to date before it judges expiry.
func TestClockIdlesAndWakes(t *testing.T) {
	s, err := Open(Config{MaxMemory: MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Set([]byte("k"), []byte("v"), SetOptions{TTL: 30 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.idle.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the store never went idle")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The key has expired by now; the header clock may lag by up to idleTick, but an
	// in-process read wakes the clock first and must not see the key.
	time.Sleep(idleTick)
	before := time.Now().UnixMilli()
	if _, ok, _ := s.Get([]byte("k"), nil); ok {
		t.Fatal("an expired key was read right after the store woke")
	}
	if s.idle.Load() {
		t.Fatal("a read did not wake the store")
	}
	if clock := int64(s.v.m.load(hdrClock)); clock < before {
		t.Fatalf("clock %d still behind the time of the read %d", clock, before)
	}
}

// TestReopenReusesAddressRange reopens a Reader, as the SDK does after each sidecar
// restart: the range a closed reader leaves reserved must be the one the next reader of
// that size maps, not a new one each time.
func TestReopenReusesAddressRange(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxMemory: MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := r.v.m.base
	r.Close()
	for range 10 {
		r, err = OpenReader(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r.v.m.base != base {
			t.Fatalf("reader mapped at %p, not the reserved %p", r.v.m.base, base)
		}
		r.Close()
	}
}
