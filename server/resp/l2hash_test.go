package resp_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/server/l2/redistest"
)

// TestL2Hashes runs the hash, bit and key commands with an L2: with write-through they
// run in L2 and L1 drops the keys they name; a hash L1 lacks is answered by L2, in the
// reply shape of the client's protocol; without write-through, hashes written to L1
// are read from L1 and strings missing there are read through for the bit commands.
func TestL2Hashes(t *testing.T) {
	r := redistest.Start(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			redistest.Command(r.Addr(), "FLUSHALL")
			e := startL2Env(t, m, r.URL())
			ctx := context.Background()
			c := e.client(t)
			if err := c.HSet(ctx, "h", "a", "1", "b", "2").Err(); err != nil {
				t.Fatal(err)
			}
			if v, _ := e.l2.HGet(ctx, "h", "b").Result(); v != "2" {
				t.Fatalf("L2 holds h.b = %q", v)
			}
			if e.st.Len() != 0 {
				t.Fatalf("L1 holds %d entries after a hash write-through", e.st.Len())
			}
			if v, err := c.HGet(ctx, "h", "a").Result(); err != nil || v != "1" {
				t.Fatalf("HGET answered by L2: %q %v", v, err)
			}
			if v, err := c.HGetAll(ctx, "h").Result(); err != nil || len(v) != 2 || v["b"] != "2" {
				t.Fatalf("HGETALL answered by L2: %v %v", v, err)
			}
			if v, err := c.Type(ctx, "h").Result(); err != nil || v != "hash" {
				t.Fatalf("TYPE answered by L2: %q %v", v, err)
			}
			c3 := redis.NewClient(&redis.Options{Addr: e.tcp, Protocol: 3})
			defer c3.Close()
			if v, err := c3.HGetAll(ctx, "h").Result(); err != nil || len(v) != 2 {
				t.Fatalf("HGETALL in RESP3 answered by L2: %v %v", v, err)
			}
			// A string in L1 that L2 changes by a bit or a rename is dropped from L1.
			if err := c.Set(ctx, "s", "a", 0).Err(); err != nil {
				t.Fatal(err)
			}
			c.Get(ctx, "s")
			if err := c.SetBit(ctx, "s", 6, 1).Err(); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.inL1("s"); ok {
				t.Fatal("SETBIT left L1's copy")
			}
			if v, err := c.Get(ctx, "s").Result(); err != nil || v != "c" {
				t.Fatalf("GET after SETBIT: %q %v", v, err)
			}
			if n, err := c.BitCount(ctx, "s", nil).Result(); err != nil || n != 4 {
				t.Fatalf("BITCOUNT: %d %v", n, err)
			}
			if err := c.Rename(ctx, "s", "s2").Err(); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.inL1("s"); ok {
				t.Fatal("RENAME left L1's copy of the source")
			}
			if v, _ := e.l2.Get(ctx, "s2").Result(); v != "c" {
				t.Fatalf("L2 s2 = %q", v)
			}
			if err := c.HSet(ctx, "s2", "f", "v").Err(); err == nil || err.Error() != "WRONGTYPE Operation against a key holding the wrong kind of value" {
				t.Fatalf("HSET on a string in L2: %v", err)
			}
		})
	}
	t.Run("read-only", func(t *testing.T) {
		redistest.Command(r.Addr(), "FLUSHALL")
		e := startL2Env(t, modes[0], r.URL(), func(c *l2.Config) { c.Write = l2.WriteNone })
		ctx := context.Background()
		c := e.client(t)
		e.l2.HSet(ctx, "remote", "f", "from-l2")
		e.l2.Set(ctx, "bits", "\xf0", 0)
		if err := c.HSet(ctx, "local", "f", "in-l1").Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := c.HGet(ctx, "local", "f").Result(); err != nil || v != "in-l1" {
			t.Fatalf("HGET from L1: %q %v", v, err)
		}
		if v, err := c.HGet(ctx, "remote", "f").Result(); err != nil || v != "from-l2" {
			t.Fatalf("HGET through to L2: %q %v", v, err)
		}
		if n, err := c.BitPos(ctx, "bits", 0).Result(); err != nil || n != 4 {
			t.Fatalf("BITPOS read through: %d %v", n, err)
		}
	})
}
