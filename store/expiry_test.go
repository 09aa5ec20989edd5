package store

import (
	"errors"
	"testing"
	"time"
)

// readerAt is a Reader of s's segment whose own real-time clock reads *now.
func readerAt(t *testing.T, dir string, now *int64, calls *int) *Reader {
	t.Helper()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r.v.wallClock = func() time.Time {
		*calls++
		return time.UnixMilli(*now)
	}
	return r
}

// TestReaderExpiryRule reads entries through a Reader at one millisecond before, at and
// one millisecond after their deadlines, while the writer's clock stands still (a test
// clock that only writes move: the writer is idle). The Reader's own clock decides near
// a deadline; far from one, the header clock decides without reading it.
func TestReaderExpiryRule(t *testing.T) {
	dir := t.TempDir()
	base := time.UnixMilli(1_700_000_000_000)
	s, err := Open(Config{Dir: dir, MaxMemory: MinMemory, Clock: func() time.Time { return base }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := base.UnixMilli()
	for k, exp := range map[string]int64{"near": c + 300, "edge": c + nearMillis, "far": c + nearMillis + 1} {
		if _, err := s.Set([]byte(k), []byte("v"), SetOptions{ExpireAt: time.UnixMilli(exp)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := int64(s.v.m.load(hdrClock)); got != c {
		t.Fatalf("header clock %d, want the writer's %d", got, c)
	}
	var now int64
	var calls int
	r := readerAt(t, dir, &now, &calls)
	for _, k := range []string{"near", "edge"} {
		exp := c + 300
		if k == "edge" {
			exp = c + nearMillis
		}
		for _, tc := range []struct {
			now  int64
			live bool
		}{{exp - 1, true}, {exp, false}, {exp + 1, false}} {
			now, calls = tc.now, 0
			_, _, found, err := r.Get([]byte(k), nil)
			if err != nil || found != tc.live || calls != 1 {
				t.Errorf("%s, deadline %+d ms from the reader's clock: found %v (want %v), err %v, clock read %d times",
					k, exp-tc.now, found, tc.live, err, calls)
			}
		}
	}
	// Further than nearMillis from the header clock: live without reading the clock.
	now, calls = c+nearMillis+1, 0
	if _, _, found, err := r.Get([]byte("far"), nil); !found || err != nil || calls != 0 {
		t.Errorf("far: found %v err %v, clock read %d times", found, err, calls)
	}
	// At or behind the header clock: expired without reading it.
	base = base.Add((nearMillis + 1) * time.Millisecond)
	if _, err := s.Set([]byte("other"), []byte("v"), SetOptions{}); err != nil { // publishes the clock
		t.Fatal(err)
	}
	now, calls = 0, 0
	if _, _, found, _ := r.Get([]byte("far"), nil); found || calls != 0 {
		t.Errorf("far at the header clock: found %v, clock read %d times", found, calls)
	}
}

// TestIdleWriterReaderExpiry reads an entry through a Reader while the writer is idle
// (its published clock lags real time by up to clockTick) across the entry's deadline:
// no read that begins at or after the deadline may find it, and a miss must not come
// before it.
func TestIdleWriterReaderExpiry(t *testing.T) {
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
	defer r.Close()
	for round := 0; round < 3; round++ {
		if _, err := s.Set([]byte("k"), []byte("v"), SetOptions{TTL: 400 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		e := s.entryOf(t, "k")
		exp := int64(s.v.m.load(e+8) & w1ExpMask)
		time.Sleep(300 * time.Millisecond) // no writes from here on
		for {
			before := time.Now().UnixMilli()
			_, _, found, err := r.Get([]byte("k"), nil)
			after := time.Now().UnixMilli()
			if err != nil {
				t.Fatal(err)
			}
			if found && before >= exp {
				t.Fatalf("read at %d found an entry whose deadline is %d (header clock %d)", before, exp, s.v.m.load(hdrClock))
			}
			if !found {
				if after < exp {
					t.Fatalf("read ending at %d missed an entry whose deadline is %d", after, exp)
				}
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// entryOf is the offset of key's entry.
func (s *Store) entryOf(t *testing.T, key string) uint64 {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, ok := s.idx.find(s.hash([]byte(key)), []byte(key))
	if !ok {
		t.Fatalf("%s not in the index", key)
	}
	return e
}

// setType marks key's entry as holding a value of type typ, as a writer that stores
// other types would.
func (s *Store) setType(t *testing.T, key string, typ uint64) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	so, e, ok := s.idx.find(s.hash([]byte(key)), []byte(key))
	if !ok {
		t.Fatalf("%s not in the index", key)
	}
	s.idx.touchBucket(so, func() {
		w0 := s.v.m.load(e)
		s.v.m.store(e, w0&^(7<<w0TypeShift)|typ<<w0TypeShift)
	})
}

// TestNotAStringIsRefused checks that neither the store's Get nor a Reader returns a
// value whose type bits say it is not a string, whatever its bytes; an expired one is
// a miss.
func TestNotAStringIsRefused(t *testing.T) {
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
	defer r.Close()
	for typ := uint64(1); typ < 8; typ++ {
		if _, err := s.Set([]byte("k"), []byte("looks like a string"), SetOptions{}); err != nil {
			t.Fatal(err)
		}
		s.setType(t, "k", typ)
		if v, ok, err := s.Get([]byte("k"), nil); ok || !errors.Is(err, ErrWrongType) || len(v) != 0 {
			t.Fatalf("type %d: Store.Get = %q %v %v, want ErrWrongType", typ, v, ok, err)
		}
		if v, ref, ok, err := r.Get([]byte("k"), []byte("dst")); ok || !errors.Is(err, ErrWrongType) || string(v) != "dst" || ref != 0 {
			t.Fatalf("type %d: Reader.Get = %q %#x %v %v, want ErrWrongType", typ, v, ref, ok, err)
		}
	}
	if _, err := s.Set([]byte("old"), []byte("v"), SetOptions{TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	s.setType(t, "old", 1)
	time.Sleep(5 * time.Millisecond)
	if _, _, ok, err := r.Get([]byte("old"), nil); ok || err != nil {
		t.Fatalf("expired entry of another type: %v %v, want a miss", ok, err)
	}
}
