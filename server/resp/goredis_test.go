package resp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// goRedis returns a go-redis client for the env over the given transport and protocol.
func goRedis(t testing.TB, e *env, network string, proto int, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Network: network, Addr: e.tcp, Protocol: proto, PoolSize: 8, MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	if network == "unix" {
		o.Addr = e.unix
	}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// eachClient runs f for every serving mode, transport and protocol version.
func eachClient(t *testing.T, cfg resp.Config, f func(t *testing.T, e *env, c *redis.Client)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := cfg
			c.EventLoops = m.loops
			e := startEnv(t, c, store.Config{})
			for _, nw := range []string{"tcp", "unix"} {
				for _, proto := range []int{2, 3} {
					t.Run(fmt.Sprintf("%s/resp%d", nw, proto), func(t *testing.T) {
						if err := e.st.Update(func(tx *store.Tx) error { tx.Clear(); return nil }); err != nil {
							t.Fatal(err)
						}
						f(t, e, goRedis(t, e, nw, proto))
					})
				}
			}
		})
	}
}

// ok returns v, failing the test if err is not nil.
func ok(t testing.TB) func(v any, err error) any {
	return func(v any, err error) any {
		t.Helper()
		if err != nil {
			t.Errorf("unexpected error: %v", err)
		}
		return v
	}
}

func TestGoRedisCommands(t *testing.T) {
	eachClient(t, resp.Config{}, func(t *testing.T, e *env, c *redis.Client) {
		ctx := context.Background()
		r := ok(t)
		eq := func(what string, got, want any) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: got %v want %v", what, got, want)
			}
		}
		eq("ping", r(c.Ping(ctx).Result()), "PONG")
		eq("echo", r(c.Echo(ctx, "hi").Result()), "hi")
		eq("set", r(c.Set(ctx, "k", "v", 0).Result()), "OK")
		eq("get", r(c.Get(ctx, "k").Result()), "v")
		if _, err := c.Get(ctx, "missing").Result(); err != redis.Nil {
			t.Errorf("get missing: %v", err)
		}
		eq("setnx", r(c.SetNX(ctx, "k", "x", 0).Result()), false)
		eq("setxx", r(c.SetXX(ctx, "k", "x", time.Hour).Result()), true)
		eq("ttl", r(c.TTL(ctx, "k").Result()), time.Hour)
		eq("setargs get", r(c.SetArgs(ctx, "k", "y", redis.SetArgs{Get: true, KeepTTL: true}).Result()), "x")
		eq("pttl kept", c.PTTL(ctx, "k").Val() > 59*time.Minute, true)
		eq("persist", r(c.Persist(ctx, "k").Result()), true)
		eq("ttl -1", r(c.TTL(ctx, "k").Result()), time.Duration(-1))
		eq("ttl -2", r(c.TTL(ctx, "nope").Result()), time.Duration(-2))
		eq("expire", r(c.Expire(ctx, "k", time.Minute).Result()), true)
		eq("expire gt", r(c.ExpireGT(ctx, "k", time.Second).Result()), false)
		eq("expire lt", r(c.ExpireLT(ctx, "k", time.Second).Result()), true)
		eq("expireat", r(c.ExpireAt(ctx, "k", time.Now().Add(time.Hour)).Result()), true)
		eq("getex", r(c.GetEx(ctx, "k", 0).Result()), "y")
		eq("getdel", r(c.GetDel(ctx, "k").Result()), "y")
		eq("exists", r(c.Exists(ctx, "k").Result()), 0)
		eq("mset", r(c.MSet(ctx, "a", "1", "b", "2").Result()), "OK")
		eq("mget", r(c.MGet(ctx, "a", "b", "c").Result()), []any{"1", "2", nil})
		eq("msetnx", r(c.MSetNX(ctx, "a", "9", "c", "3").Result()), false)
		eq("incr", r(c.Incr(ctx, "a").Result()), 2)
		eq("incrby", r(c.IncrBy(ctx, "a", 40).Result()), 42)
		eq("decr", r(c.Decr(ctx, "a").Result()), 41)
		eq("decrby", r(c.DecrBy(ctx, "a", 1).Result()), 40)
		eq("incrbyfloat", r(c.IncrByFloat(ctx, "a", 0.5).Result()), 40.5)
		if err := c.Incr(ctx, "a").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
			t.Errorf("incr float: %v", err)
		}
		eq("append", r(c.Append(ctx, "s", "hello").Result()), 5)
		eq("setrange", r(c.SetRange(ctx, "s", 5, " world").Result()), 11)
		eq("getrange", r(c.GetRange(ctx, "s", -5, -1).Result()), "world")
		eq("strlen", r(c.StrLen(ctx, "s").Result()), 11)
		eq("type", r(c.Type(ctx, "s").Result()), "string")
		eq("type none", r(c.Type(ctx, "zz").Result()), "none")
		keys := c.Keys(ctx, "*").Val()
		slices.Sort(keys)
		eq("keys", keys, []string{"a", "b", "s"})
		var scanned []string
		it := c.Scan(ctx, 0, "[ab]", 1).Iterator()
		for it.Next(ctx) {
			scanned = append(scanned, it.Val())
		}
		r(nil, it.Err())
		slices.Sort(scanned)
		eq("scan", scanned, []string{"a", "b"})
		eq("dbsize", r(c.DBSize(ctx).Result()), 3)
		eq("del", r(c.Del(ctx, "a", "b", "zz").Result()), 2)
		eq("unlink", r(c.Unlink(ctx, "s").Result()), 1)
		eq("config get", c.ConfigGet(ctx, "maxmemory*").Val()["maxmemory-policy"], "allkeys-lfu")
		info := c.Info(ctx, "server", "keyspace").Val()
		if !strings.Contains(info, "redis_version:") || !strings.Contains(info, "# Keyspace") {
			t.Errorf("info: %q", info)
		}
		eq("time", c.Time(ctx).Val().Year() >= 2024, true)
		eq("client setname", r(c.Do(ctx, "CLIENT", "SETNAME", "me").Result()), "OK")
		eq("client getname", r(c.Do(ctx, "CLIENT", "GETNAME").Result()), "me")
		id := c.ClientID(ctx).Val()
		list := c.ClientList(ctx).Val()
		if !strings.Contains(list, "id="+strconv.FormatInt(id, 10)+" ") || !strings.Contains(list, "name=me") {
			t.Errorf("client list %q lacks id %d / name", list, id)
		}
		eq("command count", c.Do(ctx, "COMMAND", "COUNT").Val().(int64) > 50, true)
		cmds := c.Command(ctx).Val()
		if g := cmds["get"]; g == nil || g.Arity != 2 || g.FirstKeyPos != 1 || !g.ReadOnly {
			t.Errorf("command get: %+v", g)
		}
		if err := c.Do(ctx, "NOSUCH", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR unknown command 'NOSUCH'") {
			t.Errorf("unknown: %v", err)
		}
		eq("still usable", r(c.Ping(ctx).Result()), "PONG")
		eq("flushdb", r(c.FlushDB(ctx).Result()), "OK")
		eq("empty", r(c.DBSize(ctx).Result()), 0)
	})
}

func TestGoRedisPipeline10k(t *testing.T) {
	eachClient(t, resp.Config{}, func(t *testing.T, e *env, c *redis.Client) {
		ctx := context.Background()
		const n = 10000
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range n {
				p.Set(ctx, "key:"+strconv.Itoa(i), strings.Repeat("v", i%200), 0)
				p.Incr(ctx, "counter")
				p.Get(ctx, "key:"+strconv.Itoa(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(cmds) != 3*n {
			t.Fatalf("%d replies", len(cmds))
		}
		for i := range n {
			if v := cmds[3*i+1].(*redis.IntCmd).Val(); v != int64(i+1) {
				t.Fatalf("incr %d: %d", i, v)
			}
			if v := cmds[3*i+2].(*redis.StringCmd).Val(); v != strings.Repeat("v", i%200) {
				t.Fatalf("get %d: %q", i, v)
			}
		}
	})
}

func TestGoRedisTransactions(t *testing.T) {
	eachClient(t, resp.Config{}, func(t *testing.T, e *env, c *redis.Client) {
		ctx := context.Background()
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "t", "1", 0)
			p.Incr(ctx, "t")
			p.Get(ctx, "t")
			return nil
		})
		if err != nil || cmds[2].(*redis.StringCmd).Val() != "2" {
			t.Fatalf("tx: %v %v", cmds, err)
		}
		// A runtime error inside EXEC fails only its own command.
		cmds, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "t", "x", 0)
			p.Incr(ctx, "t")
			p.Get(ctx, "t")
			return nil
		})
		if err == nil || cmds[1].Err() == nil || cmds[2].(*redis.StringCmd).Val() != "x" {
			t.Fatalf("tx with error: %v %v", cmds, err)
		}

		// Optimistic locking: concurrent WATCH/GET/MULTI/SET/EXEC increments must not
		// lose an update.
		const workers, each = 8, 25
		if err := c.Set(ctx, "ctr", "0", 0).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					for attempt := 0; ; attempt++ {
						err := c.Watch(ctx, func(tx *redis.Tx) error {
							n, err := tx.Get(ctx, "ctr").Int()
							if err != nil {
								return err
							}
							_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
								p.Set(ctx, "ctr", n+1, 0)
								return nil
							})
							return err
						}, "ctr")
						if err == nil {
							break
						}
						if !errors.Is(err, redis.TxFailedErr) || attempt > 10000 {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n, _ := c.Get(ctx, "ctr").Int(); n != workers*each {
			t.Fatalf("counter %d, want %d: an EXEC ran on a changed key", n, workers*each)
		}
	})
}

// WATCH also sees writes that do not come through RESP (gRPC, other processes, expiry).
func TestWatchSeesStoreWrites(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			c := dial(t, "tcp", e.tcp)
			for _, tc := range []struct {
				name  string
				write func()
			}{
				{"set", func() { e.st.Set([]byte("w"), []byte("other"), store.SetOptions{}) }},
				{"delete", func() { e.st.Delete([]byte("w")) }},
				{"expire", func() { e.st.Expire([]byte("w"), time.Now().Add(time.Hour), store.ExpireAlways) }},
				{"none", nil},
			} {
				c.do("SET", "w", "v")
				c.do("WATCH", "w")
				if tc.write != nil {
					tc.write()
				}
				c.do("MULTI")
				c.do("GET", "w")
				got := c.do("EXEC")
				want := "*-1\r\n"
				if tc.write == nil {
					want = "*1\r\n$1\r\nv\r\n"
				}
				if got != want {
					t.Errorf("%s: EXEC = %q, want %q", tc.name, got, want)
				}
			}
		})
	}
}

func TestGoRedisManyClients(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					nw := []string{"tcp", "unix"}[g%2]
					c := goRedis(t, e, nw, 2+g%2, func(o *redis.Options) { o.PoolSize = 1 })
					for i := range 100 {
						k := fmt.Sprintf("g%d:%d", g, i)
						if err := c.Set(ctx, k, k, 0).Err(); err != nil {
							errs <- err
							return
						}
						if v, err := c.Get(ctx, k).Result(); err != nil || v != k {
							errs <- fmt.Errorf("get %s: %q %v", k, v, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestLargeValuesAndSlowReader(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops, MaxOutput: 128 << 20}, store.Config{MaxMemory: 64 << 20})
			ctx := context.Background()
			c := goRedis(t, e, "tcp", 2)
			big := bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16)
			if err := c.Set(ctx, "big", big, 0).Err(); err != nil {
				t.Fatal(err)
			}
			// A pipeline whose replies (64 MiB) far exceed socket buffers but not
			// MaxOutput: the server must keep reading and running it while the replies
			// wait, and deliver them all once the client reads. (Past MaxOutput the
			// client would be disconnected: see TestOutputLimitDisconnects.)
			conn, err := net.Dial("tcp", e.tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			const n = 64
			go func() {
				for range n {
					conn.Write(encode("GET", "big"))
				}
			}()
			time.Sleep(50 * time.Millisecond) // let the server fill the socket first
			r := bufioReader(conn)
			for i := range n {
				s, err := readReply(r)
				if err != nil {
					t.Fatalf("reply %d: %v", i, err)
				}
				if len(s) != len(big)+len("$1048576\r\n\r\n") {
					t.Fatalf("reply %d: %d bytes", i, len(s))
				}
			}
			if v, _ := c.Get(ctx, "big").Bytes(); !bytes.Equal(v, big) {
				t.Fatal("big value changed")
			}
			// A bulk longer than the store's largest value is refused before it is read,
			// then read and dropped: the connection closes at the end of the request.
			raw := dial(t, "tcp", e.tcp)
			raw.send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n"))
			if got := raw.read(); got != "-ERR Protocol error: invalid bulk length 2097152: over the limit of 1048576 bytes (--max-value-size)\r\n" {
				t.Fatalf("2 MiB value: %q", got)
			}
			raw.send(append(bytes.Repeat([]byte("v"), 2<<20), "\r\n"...))
			if !raw.closed() {
				t.Fatal("2 MiB value: not closed after the refused request")
			}
		})
	}
}

// GET and MGET write a value straight from the store into the reply, after room for a
// header as long as the previous value's: values whose lengths need more, fewer or
// the same digits than the one before, in one pipeline and one by one, must all come
// back whole.
func TestGetValuesOfChangingLengths(t *testing.T) {
	sizes := []int{0, 5, 100_000, 3, 12, 900_000, 7, 99, 1000, 10, 0, 65_536}
	eachClient(t, resp.Config{}, func(t *testing.T, e *env, c *redis.Client) {
		ctx := context.Background()
		keys := make([]string, len(sizes))
		want := make([]string, len(sizes))
		for i, n := range sizes {
			keys[i] = fmt.Sprintf("len:%d:%d", i, n)
			want[i] = strings.Repeat(string(rune('a'+i%26)), n)
			if err := c.Set(ctx, keys[i], want[i], 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range keys {
			if got, err := c.Get(ctx, keys[i]).Result(); err != nil || got != want[i] {
				t.Fatalf("GET %s: %d bytes, %v; want %d", keys[i], len(got), err, len(want[i]))
			}
		}
		p := c.Pipeline()
		gets := make([]*redis.StringCmd, len(keys))
		for i := range keys {
			gets[len(keys)-1-i] = p.Get(ctx, keys[len(keys)-1-i])
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for i, g := range gets {
			if g.Val() != want[i] {
				t.Fatalf("pipelined GET %s: %d bytes, want %d", keys[i], len(g.Val()), len(want[i]))
			}
		}
		vals, err := c.MGet(ctx, append(keys, "len:missing")...).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i := range keys {
			if vals[i] != want[i] {
				t.Fatalf("MGET %s: wrong value", keys[i])
			}
		}
		if vals[len(keys)] != nil {
			t.Fatalf("MGET of a missing key: %v", vals[len(keys)])
		}
	})
}
