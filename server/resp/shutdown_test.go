package resp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/server/l2/redistest"
	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// readToEnd reads replies until the server ends the stream, and fails on anything but
// a clean end (a reset loses replies the client had not read). Then it closes, as
// clients do at the end of the stream.
func readToEnd(t *testing.T, r *raw) []string {
	t.Helper()
	var got []string
	_ = r.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		s, err := readReply(r.r)
		if errors.Is(err, io.EOF) && s == "" {
			r.c.Close()
			return got
		}
		if err != nil {
			t.Errorf("after %d replies: %v (partial %q)", len(got), err, s)
			return got
		}
		got = append(got, s)
	}
}

// TestShutdownDrains starts a drain while clients have pipelines in flight, one of
// them with a request half-sent: every request sent gets its reply, then a clean end
// of stream, and every SET answered OK is in the store. New clients are refused.
func TestShutdownDrains(t *testing.T) {
	const clients, pipeline = 20, 200
	for _, m := range modes {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(m.name+"/"+network, func(t *testing.T) {
				e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
				addr := e.tcp
				if network == "unix" {
					addr = e.unix
				}
				conns := make([]*raw, clients)
				for i := range conns {
					conns[i] = dial(t, network, addr)
					if got := conns[i].do("PING"); got != "+PONG\r\n" {
						t.Fatalf("PING: %q", got)
					}
				}
				last := encode("SET", "half", "sent")
				for i, r := range conns {
					var b []byte
					for j := range pipeline {
						b = append(b, encode("SET", fmt.Sprintf("c%d-k%d", i, j), "v")...)
					}
					if i == 0 {
						b = append(b, last[:len(last)/2]...)
					}
					r.send(b)
				}
				done := make(chan error, 1)
				go func() { done <- e.srv.Shutdown(context.Background()) }()
				// The rest of the half-sent request, after the drain began: the server
				// waits for it.
				conns[0].send(last[len(last)/2:])

				var wg sync.WaitGroup
				for i, r := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						got := readToEnd(t, r)
						want := pipeline
						if i == 0 {
							want++
						}
						if len(got) != want {
							t.Errorf("client %d: %d replies, want %d", i, len(got), want)
						}
						for _, s := range got {
							if s != "+OK\r\n" {
								t.Errorf("client %d: reply %q", i, s)
								return
							}
						}
					}()
				}
				wg.Wait()
				if err := <-done; err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				for i := range clients {
					for j := range pipeline {
						if _, ok, _ := e.st.Get(fmt.Appendf(nil, "c%d-k%d", i, j), nil); !ok {
							t.Fatalf("c%d-k%d answered OK but not stored", i, j)
						}
					}
				}
				if v, ok, _ := e.st.Get([]byte("half"), nil); !ok || string(v) != "sent" {
					t.Fatalf("half-sent SET: %q %v", v, ok)
				}
				// Refused after the drain: closed at once, nothing answered.
				r := dial(t, network, addr)
				r.send(encode("PING"))
				if !r.closed() {
					t.Fatal("a client connected after Shutdown was served")
				}
			})
		}
	}
}

// TestShutdownDeadline: a client that never finishes its request holds the drain
// until the context ends; then Shutdown closes it and says why.
func TestShutdownDeadline(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			r := dial(t, "tcp", e.tcp)
			if got := r.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING: %q", got)
			}
			r.send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk"))
			idle := dial(t, "tcp", e.tcp)
			if got := idle.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING: %q", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown: %v, want the context's error", err)
			}
			if !r.closed() || !idle.closed() {
				t.Fatal("connections left open")
			}
		})
	}
}

// TestShutdownWaitsForL2: a client parked on a write-through while L2 is stopped keeps
// the drain open; once L2 answers, the client gets its OK, then the end of the
// stream, and the value is in L2 and in L1.
func TestShutdownWaitsForL2(t *testing.T) {
	r := redistest.Start(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startL2Env(t, m, r.URL(), func(c *l2.Config) { c.Timeout = time.Minute })
			c := dial(t, "tcp", e.tcp)
			if got := c.do("SET", "warm", "up"); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			r.Pause()
			resumed := false
			defer func() {
				if !resumed {
					r.Resume()
				}
			}()
			c.send(append(encode("SET", "parked", "1"), encode("SET", "behind", "2")...))
			done := make(chan error, 1)
			go func() { done <- e.srv.Shutdown(context.Background()) }()
			select {
			case err := <-done:
				t.Fatalf("Shutdown returned while a SET was parked on L2: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			r.Resume()
			resumed = true
			got := readToEnd(t, c)
			if strings.Join(got, "") != "+OK\r\n+OK\r\n" {
				t.Fatalf("replies %q", got)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]string{"parked": "1", "behind": "2"} {
				if v, err := e.l2.Get(context.Background(), k).Result(); err != nil || v != want {
					t.Fatalf("L2 %s: %q %v", k, v, err)
				}
				if v, ok := e.inL1(k); !ok || v != want {
					t.Fatalf("L1 %s: %q %v", k, v, ok)
				}
			}
		})
	}
}
