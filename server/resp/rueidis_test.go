package resp_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// rueidis speaks RESP3 only and pipelines every concurrent command on one connection.
func TestRueidis(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			for _, addr := range []string{e.tcp, e.unix} {
				opt := rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true}
				if addr == e.unix {
					opt.DialFn = unixDialer(addr)
				}
				c, err := rueidis.NewClient(opt)
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Ex(100*time.Second).Build()).Error(); err != nil {
					t.Fatal(err)
				}
				if v, err := c.Do(ctx, c.B().Get().Key("k").Build()).ToString(); err != nil || v != "v" {
					t.Fatalf("get: %q %v", v, err)
				}
				if err := c.Do(ctx, c.B().Get().Key("nope").Build()).Error(); !rueidis.IsRedisNil(err) {
					t.Fatalf("get missing: %v", err)
				}
				cmds := make(rueidis.Commands, 0, 10000)
				for range 10000 {
					cmds = append(cmds, c.B().Incr().Key("n").Build())
				}
				for i, r := range c.DoMulti(ctx, cmds...) {
					if n, err := r.AsInt64(); err != nil || n != int64(i+1) {
						t.Fatalf("incr %d: %d %v", i, n, err)
					}
				}
				cfg, err := c.Do(ctx, c.B().ConfigGet().Parameter("maxmemory-policy").Build()).AsStrMap()
				if err != nil || cfg["maxmemory-policy"] != "allkeys-lfu" {
					t.Fatalf("config get: %v %v", cfg, err)
				}
				c.Do(ctx, c.B().Del().Key("n").Build())
				if got := c.Do(ctx, c.B().Dbsize().Build()); got.Error() != nil {
					t.Fatal(got.Error())
				}
				c.Close()
			}
		})
	}
}
