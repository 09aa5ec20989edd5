package resp_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/server/l2/redistest"
	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// l2env is a RESP server over a store with an L2 tier in front of a real redis-server.
type l2env struct {
	srv  *resp.Server
	st   *store.Store
	tier *l2.Tier
	tcp  string
	l2   *redis.Client // a direct client of L2: "another pod"
}

func startL2Env(t *testing.T, m mode, url string, edit ...func(*l2.Config)) *l2env {
	t.Helper()
	st, err := store.Open(store.Config{MaxMemory: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A generous timeout: the suite runs under -race beside other packages on 2 cores.
	cfg := l2.Config{URL: url, CanaryInterval: -1, Logger: quiet, Timeout: 2 * time.Second}
	for _, e := range edit {
		e(&cfg)
	}
	tier, err := l2.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := resp.New(st, resp.Config{EventLoops: m.loops, L2: tier, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptLoop(ln, srv)
	ep, _ := l2.ParseURL(url)
	direct := redis.NewClient(&redis.Options{Addr: ep.Addrs[0]})
	t.Cleanup(func() {
		direct.Close()
		ln.Close()
		srv.Close()
		tier.Close()
		st.Close()
	})
	return &l2env{srv: srv, st: st, tier: tier, tcp: ln.Addr().String(), l2: direct}
}

func (e *l2env) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.tcp, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *l2env) inL1(key string) (string, bool) {
	v, ok, _ := e.st.Get([]byte(key), nil)
	return string(v), ok
}

func TestL2ReadThrough(t *testing.T) {
	r := redistest.Start(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			// FLUSHALL first: its invalidation reaches every tracking client, late.
			redistest.Command(r.Addr(), "FLUSHALL")
			e := startL2Env(t, m, r.URL())
			ctx := context.Background()
			e.l2.Set(ctx, "a", "from-l2", 0)
			e.l2.Set(ctx, "b", "hello world", 2*time.Second)
			c := e.client(t)
			if v, err := c.Get(ctx, "a").Result(); err != nil || v != "from-l2" {
				t.Fatalf("GET read-through: %q %v", v, err)
			}
			if v, ok := e.inL1("a"); !ok || v != "from-l2" {
				t.Fatal("not filled")
			}
			if ttl, _, _ := e.st.TTL([]byte("a")); ttl > time.Minute {
				t.Fatalf("L1 TTL %v", ttl)
			}
			if err := c.Get(ctx, "none").Err(); err != redis.Nil {
				t.Fatalf("GET of a key nowhere: %v", err)
			}
			// A pipeline mixing hits, misses and misses nowhere keeps its order.
			e.st.Delete([]byte("a"))
			p := c.Pipeline()
			g1 := p.Get(ctx, "a")
			g2 := p.Get(ctx, "none")
			mg := p.MGet(ctx, "b", "none", "a")
			sl := p.StrLen(ctx, "b")
			gr := p.GetRange(ctx, "b", 0, 4)
			ex := p.Exists(ctx, "a", "b", "none")
			ty := p.Type(ctx, "b")
			if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
				t.Fatal(err)
			}
			if g1.Val() != "from-l2" || g2.Err() != redis.Nil || sl.Val() != 11 || gr.Val() != "hello" || ex.Val() != 2 || ty.Val() != "string" {
				t.Fatalf("pipeline: %v %v %v %v %v %v", g1, g2, sl, gr, ex, ty)
			}
			if v := mg.Val(); len(v) != 3 || v[0] != "hello world" || v[1] != nil || v[2] != "from-l2" {
				t.Fatalf("MGET: %v", v)
			}
			// Another client's write reaches L1 as an invalidation.
			e.l2.Set(ctx, "a", "changed", 0)
			deadline := time.Now().Add(5 * time.Second)
			for {
				if v, _ := c.Get(ctx, "a").Result(); v == "changed" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("invalidation did not reach a RESP reader")
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

func TestL2WriteThroughRESP(t *testing.T) {
	r := redistest.Start(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			// FLUSHALL first: its invalidation reaches every tracking client, late.
			redistest.Command(r.Addr(), "FLUSHALL")
			e := startL2Env(t, m, r.URL())
			ctx := context.Background()
			c := e.client(t)
			check := func(key, want string) {
				t.Helper()
				if v, _ := e.l2.Get(ctx, key).Result(); v != want {
					t.Fatalf("L2 %s = %q, want %q", key, v, want)
				}
			}
			if err := c.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			check("k", "v")
			if v, ok := e.inL1("k"); !ok || v != "v" {
				t.Fatal("SET did not reach L1")
			}
			if ttl := e.l2.TTL(ctx, "k").Val(); ttl <= 50*time.Second {
				t.Fatalf("L2 TTL %v", ttl)
			}
			if ttl := c.TTL(ctx, "k").Val(); ttl <= 50*time.Second {
				t.Fatalf("TTL answered %v, want L2's", ttl)
			}
			// NX against L2's state.
			e.l2.Set(ctx, "theirs", "x", 0)
			if ok, err := c.SetNX(ctx, "theirs", "mine", 0).Result(); err != nil || ok {
				t.Fatalf("SETNX over L2's key: %v %v", ok, err)
			}
			if err := c.MSet(ctx, "m1", "1", "m2", "2").Err(); err != nil {
				t.Fatal(err)
			}
			check("m2", "2")
			if n, err := c.IncrBy(ctx, "m1", 41).Result(); err != nil || n != 42 {
				t.Fatalf("INCRBY: %d %v", n, err)
			}
			if v, _ := e.inL1("m1"); v != "42" {
				t.Fatalf("L1 after INCRBY: %q", v)
			}
			if f, err := c.IncrByFloat(ctx, "m2", 0.5).Result(); err != nil || f != 2.5 {
				t.Fatalf("INCRBYFLOAT: %v %v", f, err)
			}
			if n, err := c.Append(ctx, "k", "w").Result(); err != nil || n != 2 {
				t.Fatalf("APPEND: %d %v", n, err)
			}
			if _, ok := e.inL1("k"); ok {
				t.Fatal("APPEND kept L1's copy")
			}
			if v, _ := c.Get(ctx, "k").Result(); v != "vw" {
				t.Fatalf("GET after APPEND: %q", v)
			}
			if v, err := c.GetSet(ctx, "k", "new").Result(); err != nil || v != "vw" {
				t.Fatalf("GETSET: %q %v", v, err)
			}
			if ok, err := c.Expire(ctx, "k", time.Hour).Result(); err != nil || !ok {
				t.Fatalf("EXPIRE: %v %v", ok, err)
			}
			if n, err := c.Del(ctx, "k", "m1", "none").Result(); err != nil || n != 2 {
				t.Fatalf("DEL: %d %v", n, err)
			}
			if _, ok := e.inL1("m1"); ok {
				t.Fatal("DEL kept L1's copy")
			}
			if err := e.l2.Get(ctx, "m1").Err(); err != redis.Nil {
				t.Fatal("DEL did not reach L2")
			}
			if err := c.Incr(ctx, "theirs").Err(); err == nil || !strings.Contains(err.Error(), "not an integer") {
				t.Fatalf("INCR of a non-number: %v", err)
			}
			// A transaction runs in L2.
			var get *redis.StringCmd
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "t1", "a", 0)
				p.Incr(ctx, "t2")
				get = p.Get(ctx, "t1")
				return nil
			})
			if err != nil || get.Val() != "a" {
				t.Fatalf("MULTI/EXEC: %v %v", get, err)
			}
			check("t2", "1")
			if err := c.Watch(ctx, func(*redis.Tx) error { return nil }, "t1"); err == nil {
				t.Fatal("WATCH accepted with write-through")
			}
		})
	}
}

// TestL2ParkingDoesNotBlockTheLoop: a connection waiting for L2 must not hold up the
// other connections of its event loop. With L2 frozen and a 1 s timeout, one client's
// miss waits; another client's hits on the same loop answer meanwhile: they all come
// back while the miss is still waiting (its L2 timeout is long), which they could not
// if the loop were blocked by it.
func TestL2ParkingDoesNotBlockTheLoop(t *testing.T) {
	r := redistest.Start(t)
	e := startL2Env(t, mode{"loop", 1}, r.URL(), func(c *l2.Config) { c.Timeout = time.Minute; c.ProbeInterval = time.Hour })
	ctx := context.Background()
	e.st.Set([]byte("hot"), []byte("v"), store.SetOptions{})
	slow, fast := e.client(t), e.client(t)
	fast.Ping(ctx)
	slow.Ping(ctx)
	r.Pause()
	resumed := false
	defer func() {
		if !resumed {
			r.Resume()
		}
	}()
	missDone := make(chan error, 1)
	go func() { missDone <- slow.Get(ctx, "cold").Err() }()
	time.Sleep(50 * time.Millisecond) // the miss is parked now
	t0 := time.Now()
	for range 20 {
		if v, err := fast.Get(ctx, "hot").Result(); err != nil || v != "v" {
			t.Fatalf("hit while another connection waits: %q %v", v, err)
		}
	}
	t.Logf("20 hits on the same loop while a miss waited for a frozen L2: %v", time.Since(t0))
	select {
	case err := <-missDone:
		t.Fatalf("the miss finished (%v) before the hits on the same loop did: they waited for it", err)
	default:
	}
	r.Resume()
	resumed = true
	if err := <-missDone; err != redis.Nil {
		t.Fatalf("the parked miss, once L2 answered: %v", err)
	}
}

// TestL2DownRESP: L2 killed: hits are served, misses are nil, writes are errors.
func TestL2DownRESP(t *testing.T) {
	r := redistest.Start(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r.Restart()
			e := startL2Env(t, m, r.URL(), func(c *l2.Config) { c.ProbeInterval = 20 * time.Millisecond })
			ctx := context.Background()
			c := e.client(t)
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			r.Stop()
			for range 10 {
				if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
					t.Fatalf("hit with L2 down: %q %v", v, err)
				}
				t0 := time.Now()
				// The time is logged by the l2 package's tests; here the bound only
				// catches a miss that waits for L2 instead of giving up.
				if err := c.Get(ctx, "cold").Err(); err != redis.Nil || time.Since(t0) > 5*time.Second {
					t.Fatalf("miss with L2 down: %v after %v", err, time.Since(t0))
				}
			}
			if err := c.Set(ctx, "k", "w", 0).Err(); err == nil || !strings.Contains(err.Error(), "L2") {
				t.Fatalf("SET with L2 down: %v", err)
			}
		})
	}
}

// TestL2ClusterRESP: the RESP path against a 3-master cluster: read-through, write-
// through, a DEL across slots (split per key), and MSET across slots (refused, as a
// cluster refuses it).
func TestL2ClusterRESP(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	e := startL2Env(t, mode{"loop", 1}, cl.URL())
	ctx := context.Background()
	other := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cl.Nodes[0].Addr()}})
	defer other.Close()
	c := e.client(t)
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := other.Set(ctx, k, "l2-"+k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := c.MGet(ctx, "a", "b", "c", "d").Result(); err != nil || v[3] != "l2-d" {
		t.Fatalf("MGET across slots: %v %v", v, err)
	}
	if err := c.Set(ctx, "a", "mine", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := other.Get(ctx, "a").Result(); v != "mine" {
		t.Fatalf("write-through to the cluster: %q", v)
	}
	other.Set(ctx, "a", "theirs", 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, _ := c.Get(ctx, "a").Result(); v == "theirs" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no invalidation from the cluster")
		}
		time.Sleep(time.Millisecond)
	}
	if n, err := c.Del(ctx, "a", "b", "c", "none").Result(); err != nil || n != 3 {
		t.Fatalf("DEL across slots: %d %v", n, err)
	}
	if err := c.MSet(ctx, "a", "1", "b", "2").Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MSET across slots: %v", err)
	}
	if err := c.MSet(ctx, "{t}a", "1", "{t}b", "2").Err(); err != nil {
		t.Fatalf("MSET in one slot: %v", err)
	}
}

// EXEC under write-through answers each queued command as that command does: +OK for
// SET, not a bulk "OK" (the queue is cleared before L2 answers).
func TestL2ExecRepliesInKind(t *testing.T) {
	r := redistest.Start(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startL2Env(t, m, r.URL())
			c := dial(t, "tcp", e.tcp)
			if got := c.do("MULTI"); got != "+OK\r\n" {
				t.Fatalf("MULTI: %q", got)
			}
			c.do("SET", "tx:a", "1")
			c.do("INCR", "tx:b:"+m.name)
			if got, want := c.do("EXEC"), "*2\r\n+OK\r\n:1\r\n"; got != want {
				t.Fatalf("EXEC: %q, want %q", got, want)
			}
		})
	}
}
