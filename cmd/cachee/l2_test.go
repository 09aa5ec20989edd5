package main_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/l2/redistest"
)

func fillRedis(t *testing.T, addr string, n int) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	p := c.Pipeline()
	for i := range n {
		p.Set(context.Background(), fmt.Sprintf("key:%04d", i), fmt.Sprintf("value-%d", i), 0)
	}
	if _, err := p.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestL2EndToEnd runs the binary with --l2 (and nothing else about L2): it prewarms
// from L2 at start (the prewarm source defaults to --l2) and is ready once that is
// done, reads misses through and writes through over gRPC and RESP, drops what another
// client changes in L2, and exports the L2 metrics.
func TestL2EndToEnd(t *testing.T) {
	r := redistest.Start(t)
	fillRedis(t, r.Addr(), 1000)
	p := start(t, "--l2="+r.URL(), "--prewarm-keys=1000", "--prewarm-timeout=5s")
	waitReady(t, p)
	if !strings.Contains(p.logs.String(), `"msg":"startup prewarm done"`) || !strings.Contains(p.logs.String(), `"loaded":1000`) {
		t.Fatalf("startup prewarm not logged as loading 1000 keys:\n%s", p.logs)
	}
	ctx := ctx(t)
	other := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer other.Close()
	other.Set(ctx, "fresh", "from-l2", 0)

	c := p.client()
	if g, err := c.Get(ctx, &cacheev1.GetRequest{Key: []byte("fresh")}); err != nil || !g.GetFound() || string(g.GetValue()) != "from-l2" {
		t.Fatalf("gRPC read-through: %v %v", g, err)
	}
	if _, err := c.Set(ctx, &cacheev1.SetRequest{Key: []byte("grpc"), Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if v, _ := other.Get(ctx, "grpc").Result(); v != "1" {
		t.Fatalf("gRPC write-through: L2 has %q", v)
	}
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: p.sock})
	defer rc.Close()
	if v, err := rc.Get(ctx, "key:0007").Result(); err != nil || v != "value-7" {
		t.Fatalf("RESP GET of a prewarmed key: %q %v", v, err)
	}
	if err := rc.Set(ctx, "resp", "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := other.Get(ctx, "resp").Result(); v != "2" {
		t.Fatalf("RESP write-through: L2 has %q", v)
	}
	// Another pod's write is seen through both protocols.
	other.Set(ctx, "grpc", "changed", 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, _ := c.Get(ctx, &cacheev1.GetRequest{Key: []byte("grpc")})
		if string(g.GetValue()) == "changed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("another client's write did not reach the sidecar")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Delete(ctx, &cacheev1.DeleteRequest{Key: []byte("grpc")}); err != nil {
		t.Fatal(err)
	}
	if other.Exists(ctx, "grpc").Val() != 0 {
		t.Fatal("gRPC Delete did not reach L2")
	}
	code, body := get(t, "http://"+p.metrics+"/metrics")
	for _, m := range []string{"cachee_l2_reads_total", "cachee_l2_fills_total", "cachee_l2_invalidations_received_total",
		"cachee_l2_invalidation_lag_seconds_bucket", "cachee_l2_up 1", "cachee_prewarm_keys_total{result=\"loaded\"} 1000"} {
		if code != http.StatusOK || !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	// cachee prewarm asks the running server; everything is present now.
	out, stderr, exit := run(t, []string{"CACHEE_SOCKET=" + p.sock}, "", "prewarm", "--keys=10")
	if exit != 0 || !strings.Contains(out, "requested 10") || !strings.Contains(out, "skipped 10") {
		t.Fatalf("cachee prewarm: %d %q %q", exit, out, stderr)
	}
}

// TestL2FromEnvironment: every L2 flag reads CACHEE_<FLAG>; L2 down at start does not
// stop the sidecar, and the failed startup prewarm does not keep it unready.
func TestL2FromEnvironment(t *testing.T) {
	r := redistest.Start(t)
	r.Stop()
	p := startProc(t, procOptions{env: []string{
		"CACHEE_L2=" + r.URL(), "CACHEE_L1_TTL=5s", "CACHEE_NEGATIVE_TTL=1s", "CACHEE_L2_WRITE=none",
		"CACHEE_L2_INVALIDATE=tracking", "CACHEE_L2_TIMEOUT=20ms", "CACHEE_HOTSET_KEY=hs", "CACHEE_HOTSET_INTERVAL=1h",
		"CACHEE_READY_HIT_RATE=0", "CACHEE_READY_MAX_WAIT=1s",
	}})
	if err := p.waitServing(); err != nil {
		t.Fatalf("%v\n%s", err, p.logs)
	}
	waitReady(t, p)
	ctx := ctx(t)
	// --l2-write=none: a write with L2 down succeeds, locally.
	if _, err := p.client().Set(ctx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("local write with --l2-write=none: %v", err)
	}
	if !strings.Contains(p.logs.String(), "L2 unreachable") && !strings.Contains(p.logs.String(), "startup prewarm failed") {
		t.Fatalf("L2 down not logged:\n%s", p.logs)
	}
}

// TestReadyHitRateGate: with --ready-hit-rate, /ready waits for the hit rate.
func TestReadyHitRateGate(t *testing.T) {
	p := start(t, "--ready-hit-rate=0.5", "--ready-max-wait=1m")
	code, body := get(t, "http://"+p.http+"/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "hit-rate") {
		t.Fatalf("/ready %d %s", code, body)
	}
	ctx := ctx(t)
	c := p.client()
	c.Set(ctx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")})
	deadline := time.Now().Add(60 * time.Second)
	for {
		for range 50 {
			c.Get(ctx, &cacheev1.GetRequest{Key: []byte("k")})
		}
		if code, _ := get(t, "http://"+p.http+"/ready"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestL2BadFlags(t *testing.T) {
	for _, tc := range []struct{ args []string }{
		{[]string{"--l2=http://x"}},
		{[]string{"--l2=redis://a:1,b:2"}},
		{[]string{"--l2=redis://r:1", "--l2-write=back"}},
		{[]string{"--l2=redis://r:1", "--l2-invalidate=bcast"}},
		{[]string{"--l2=redis://r:1", "--l2-timeout=-1s"}},
		{[]string{"--ready-hit-rate=1.5"}},
		{[]string{"--l2=redis://r:1", "--l1-ttl=0s"}},
	} {
		_, stderr, code := run(t, nil, "", tc.args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
	}
}

func waitReady(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		if code, _ := get(t, "http://"+p.http+"/ready"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", p.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
