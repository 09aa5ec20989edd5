package store_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachee/cachee/store"
)

// TestConcurrentReadersNeverSeeTornValues runs writers that overwrite, delete, expire
// and evict in a small store against readers in this process and through a Reader on
// the shared file. Every value read must be whole and belong to its key.
func TestConcurrentReadersNeverSeeTornValues(t *testing.T) {
	dir := t.TempDir()
	s := open(t, store.Config{Dir: dir, MaxMemory: 2 << 20, MaxValueSize: 64 << 10})
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	const keys = 6000
	duration := 2 * time.Second
	if testing.Short() {
		duration = 500 * time.Millisecond
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, hits, retries atomic.Uint64
	var failure atomic.Value
	fail := func(msg string) { failure.CompareAndSwap(nil, msg) }

	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var version uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Appendf(nil, "key-%d", rng.IntN(keys))
				version++
				switch rng.IntN(10) {
				case 0:
					s.Delete(k)
				case 1:
					s.Set(k, store.SelfCheckingValue(k, version, rng), store.SetOptions{TTL: time.Millisecond})
				default:
					if _, err := s.Set(k, store.SelfCheckingValue(k, version, rng), store.SetOptions{}); err != nil {
						fail("set: " + err.Error())
					}
				}
			}
		}()
	}
	for rd := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(rd), 2))
			buf := make([]byte, 0, 32<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Appendf(nil, "key-%d", rng.IntN(keys))
				var v []byte
				var ok bool
				var err error
				if rd%2 == 0 {
					v, ok, err = s.Get(k, buf[:0])
				} else {
					v, _, ok, err = r.Get(k, buf[:0])
					if err == store.ErrRetry {
						retries.Add(1)
						continue
					}
				}
				reads.Add(1)
				if err != nil {
					fail("get: " + err.Error())
					continue
				}
				if ok {
					hits.Add(1)
					if msg := store.CheckSelfCheckingValue(k, v); msg != "" {
						fail(fmt.Sprintf("%s: %s", k, msg))
					}
				}
			}
		}()
	}
	// Run for duration, and on until the writers have evicted (a loaded machine, or the
	// race detector, may need longer to fill the store), within a minute.
	time.Sleep(duration)
	for limit := time.Now().Add(time.Minute); time.Now().Before(limit); time.Sleep(50 * time.Millisecond) {
		if s.Stats().Evictions > 0 && hits.Load() > 0 {
			break
		}
	}
	close(stop)
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatal(f)
	}
	st := s.Stats()
	t.Logf("reads %d hits %d reader retries-exhausted %d; %+v", reads.Load(), hits.Load(), retries.Load(), st)
	if hits.Load() == 0 || st.Evictions == 0 {
		t.Fatalf("the test did not exercise hits and evictions")
	}
}

func TestReaderMatchesStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, store.Config{Dir: dir, MaxMemory: 4 << 20})
	for i := range 3000 {
		mustSet(t, s, fmt.Sprintf("k%d", i), fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i%97)), store.SetOptions{})
	}
	mustSet(t, s, "gone", "soon", store.SetOptions{TTL: time.Millisecond})
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Check(time.Second); err != nil {
		t.Fatalf("Check on a live segment: %v", err)
	}
	var refs []uint64
	for i := range 3000 {
		k := fmt.Appendf(nil, "k%d", i)
		want, _, _ := s.Get(k, nil)
		got, ref, ok, err := r.Get(k, nil)
		if !ok || err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: reader %q %v %v, store %q", k, got, ok, err, want)
		}
		refs = append(refs, ref)
	}
	if _, _, ok, _ := r.Get([]byte("missing"), nil); ok {
		t.Fatal("reader found a missing key")
	}
	time.Sleep(20 * time.Millisecond)
	if _, _, ok, _ := r.Get([]byte("gone"), nil); ok {
		t.Fatal("reader returned an expired key")
	}
	// Hits reported back count in the writer's stats.
	before := s.Stats().Hits
	s.RecordAccess(refs, 0)
	s.RecordAccess([]uint64{0, 1 << 63, ^uint64(0)}, 5) // junk refs are ignored, but counted as reported
	if after := s.Stats().Hits; after-before != uint64(len(refs))+3+5 {
		t.Fatalf("hits went from %d to %d", before, after)
	}
	// Closing the writer makes the reader stale at once.
	s.Close()
	if _, _, _, err := r.Get([]byte("k1"), nil); err != store.ErrStale {
		t.Fatalf("Get after writer Close: %v", err)
	}
	if err := r.Check(time.Second); err == nil {
		t.Fatal("Check passed after writer Close")
	}
}

func TestReaderSeesWriterRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(store.Config{Dir: dir, MaxMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "k", "v1", store.SetOptions{})
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s.Close()
	// Same size: a warm restart that keeps the data under a new generation.
	s2 := open(t, store.Config{Dir: dir, MaxMemory: 1 << 20})
	if v, ok := get(t, s2, "k"); !ok || v != "v1" {
		t.Fatalf("warm restart lost k: %q %v", v, ok)
	}
	if _, _, _, err := r.Get([]byte("k"), nil); err != store.ErrStale {
		t.Fatalf("old reader after restart: %v", err)
	}
	r2, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if v, _, ok, err := r2.Get([]byte("k"), nil); !ok || err != nil || string(v) != "v1" {
		t.Fatalf("new reader: %q %v %v", v, ok, err)
	}
	s2.Close()
	// Another size: the segment is replaced, not trusted.
	s3 := open(t, store.Config{Dir: dir, MaxMemory: 2 << 20})
	if _, ok := get(t, s3, "k"); ok {
		t.Fatal("a segment of another size was reused")
	}
	if err := r2.Check(time.Second); err == nil {
		t.Fatal("reader of a replaced segment passed Check")
	}
}

func TestOpenRefusesUnsafeSegment(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(store.Config{Dir: dir, MaxMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// A second writer on the same directory is refused while the first lives.
	if _, err := store.Open(store.Config{Dir: dir, MaxMemory: 1 << 20}); err == nil {
		t.Fatal("two writers on one segment")
	}
	s.Close()
	if err := chmod(dir+"/"+store.SegmentFile, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(store.Config{Dir: dir, MaxMemory: 1 << 20}); err == nil {
		t.Fatal("opened a segment others may write")
	}
}
