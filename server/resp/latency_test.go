package resp_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// TestLatencySample: one command in 512 on a connection is timed and reported, however
// the connection is served.
func TestLatencySample(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []time.Duration
			e := startEnv(t, resp.Config{EventLoops: m.loops, Latency: func(d time.Duration) {
				mu.Lock()
				got = append(got, d)
				mu.Unlock()
			}}, store.Config{})
			r := dial(t, "tcp", e.tcp)
			const n = 10 * 512
			var b []byte
			for i := range n {
				b = append(b, encode("GET", fmt.Sprint("k", i))...)
			}
			r.send(b)
			for range n {
				if s := r.read(); !strings.HasPrefix(s, "$-1") {
					t.Fatalf("GET: %q", s)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			// The first timed command is one of the first 512, then every 512th.
			if len(got) != n/512 {
				t.Fatalf("%d commands timed of %d, want %d", len(got), n, n/512)
			}
			for _, d := range got {
				if d <= 0 {
					t.Fatalf("a command took %v", d)
				}
			}
		})
	}
}
