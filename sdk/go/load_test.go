package cachee_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
)

func TestGetOrLoad(t *testing.T) {
	s := startSidecar(t, true)
	c := dial(t, s)
	waitShm(t, c)
	cx := ctx(t)
	var calls atomic.Int32
	load := func(context.Context) ([]byte, error) {
		calls.Add(1)
		return []byte("from the database"), nil
	}
	for i := range 3 {
		v, err := c.GetOrLoad(cx, "user:42", time.Minute, load)
		if err != nil || string(v) != "from the database" {
			t.Fatalf("call %d: %q %v", i, v, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("loader called %d times, want 1", calls.Load())
	}
	// Later calls are hits; the stored value is in the sidecar for everyone.
	if v, found, err := dial(t, s, cachee.WithoutShm()).Get(cx, "user:42"); err != nil || !found || string(v) != "from the database" {
		t.Fatalf("stored value: %q %v %v", v, found, err)
	}
	n := c.Counters()
	if n.Loads != 1 || n.SidecarErrors != 0 || n.ShmHits < 2 {
		t.Fatalf("counters %+v", n)
	}
	// The loader's errors are the caller's.
	boom := errors.New("database down")
	if _, err := c.GetOrLoad(cx, "user:43", time.Minute, func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("loader error: %v", err)
	}
}

// TestGetOrLoadSingleflight: concurrent misses on one key share one loader call.
func TestGetOrLoadSingleflight(t *testing.T) {
	c := dial(t, shared)
	cx := ctx(t)
	if _, err := c.Delete(cx, "sf:key"); err != nil { // left by an earlier -count run
		t.Fatal(err)
	}
	var calls atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return []byte("once"), nil
	}
	const n = 8
	var wg sync.WaitGroup
	results := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			v, err := c.GetOrLoad(cx, "sf:key", time.Minute, load)
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		})
	}
	// Let the callers pile up behind the first, then release it.
	eventually(t, "the loader to start", func() bool { return calls.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("loader called %d times", calls.Load())
	}
	for i, v := range results {
		if string(v) != "once" {
			t.Fatalf("caller %d: %q", i, v)
		}
	}
	// Each caller owns its slice.
	results[0][0] = 'X'
	if string(results[1]) != "once" {
		t.Fatal("callers share a value slice")
	}
}

// TestGetOrLoadWithoutSidecar: the sidecar is killed; GetOrLoad keeps serving the
// loader's values, never an error, and counts the failures. When the sidecar is back,
// the cache works again.
func TestGetOrLoadWithoutSidecar(t *testing.T) {
	s := startSidecar(t, true)
	c := dial(t, s, cachee.WithReconnectBackoff(10*time.Millisecond, 100*time.Millisecond))
	waitShm(t, c)
	cx := ctx(t)
	load := func(context.Context) ([]byte, error) { return []byte("fresh"), nil }
	if _, err := c.GetOrLoad(cx, "k", time.Minute, load); err != nil {
		t.Fatal(err)
	}

	s.kill()
	eventually(t, "the Client to drop the dead sidecar's segment", func() bool { return !c.Counters().ShmActive })
	before := c.Counters()
	for i := range 20 {
		v, err := c.GetOrLoad(cx, "k", time.Minute, load)
		if err != nil || string(v) != "fresh" {
			t.Fatalf("call %d without the sidecar: %q %v", i, v, err)
		}
	}
	after := c.Counters()
	// Each call failed its Get and its Set.
	if after.SidecarErrors-before.SidecarErrors != 40 || after.Loads-before.Loads != 20 {
		t.Fatalf("before %+v\nafter %+v", before, after)
	}

	s.restart(t)
	eventually(t, "the cache to work again", func() bool {
		_, err := c.Set(cx, "back", []byte("1"))
		return err == nil
	})
	loads := c.Counters().Loads
	for range 2 {
		if _, err := c.GetOrLoad(cx, "again", time.Minute, load); err != nil {
			t.Fatal(err)
		}
	}
	if c.Counters().Loads != loads+1 {
		t.Fatal("the second GetOrLoad after the restart did not hit the cache")
	}
}
