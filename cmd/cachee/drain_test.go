package main_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/server/l2/redistest"
)

// TestRESPDrainOnSIGTERM sends SIGTERM while 50 RESP clients each have a pipeline of
// 100 SETs in flight, with the event loop (the default), and again with every client
// parked on a write-through to an L2 that is stopped (SIGSTOP) until after the signal.
// Every client must get all its replies and then a clean end of stream (never a reset
// mid-reply), the server must exit 0 within the grace period, and every SET answered
// OK must be in L2 (with an L2) and in the store, read back after a warm restart of
// the segment.
func TestRESPDrainOnSIGTERM(t *testing.T) {
	const clients, pipeline = 50, 100
	for _, withL2 := range []bool{false, true} {
		name := "event-loop"
		if withL2 {
			name = "parked-on-l2"
		}
		t.Run(name, func(t *testing.T) {
			shm := socketDir(t)
			args := []string{"--shm=" + shm}
			var r *redistest.Server
			if withL2 {
				r = redistest.Start(t)
				// Long enough that the parked writes wait for L2 rather than fail.
				args = append(args, "--l2="+r.URL(), "--l2-timeout=1m", "--prewarm-keys=0")
			}
			p := start(t, args...)
			conns := make([]*respConn, clients)
			for i := range conns {
				network, addr := "tcp", p.tcp
				if i%2 == 1 {
					network, addr = "unix", p.sock
				}
				conns[i] = dialRESP(t, network, addr)
			}
			for i, c := range conns {
				var b []byte
				for j := range pipeline {
					b = appendCommand(b, "SET", drainKey(i, j), drainValue(i, j))
				}
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			if withL2 {
				r.Pause()
			}
			p.signal(syscall.SIGTERM)
			if withL2 {
				// The clients sit parked on L2 while the drain starts.
				time.Sleep(300 * time.Millisecond)
				r.Resume()
			}

			answered := make([][]bool, clients)
			var wg sync.WaitGroup
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					answered[i] = make([]bool, pipeline)
					n := 0
					for {
						line, err := c.r.ReadString('\n')
						if errors.Is(err, io.EOF) && line == "" {
							break // a clean end of stream
						}
						if err != nil {
							t.Errorf("client %d after %d replies: %v (partial %q)", i, n, err, line)
							break
						}
						if n >= pipeline {
							t.Errorf("client %d: reply %d %q: more replies than requests", i, n, line)
							break
						}
						answered[i][n] = line == "+OK\r\n"
						if !answered[i][n] {
							t.Errorf("client %d: reply %d: %q", i, n, line)
						}
						n++
					}
					c.Close()
					// Every request was sent before SIGTERM, so the drain answers all.
					if n != pipeline {
						t.Errorf("client %d: %d replies of %d", i, n, pipeline)
					}
				}()
			}
			wg.Wait()
			if code := p.wait(); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			if logs := p.logs.String(); !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "grace period over") {
				t.Fatalf("drain did not finish within the grace period:\n%s", logs)
			}

			var keys []string
			var want []string
			for i := range clients {
				for j := range pipeline {
					if answered[i][j] {
						keys = append(keys, drainKey(i, j))
						want = append(want, drainValue(i, j))
					}
				}
			}
			if withL2 {
				direct := redis.NewClient(&redis.Options{Addr: r.Addr()})
				defer direct.Close()
				checkAll(t, "L2", direct, keys, want)
			}
			// A warm restart on the same segment, without L2, shows what the store kept.
			q := start(t, "--shm="+shm)
			if !strings.Contains(q.logs.String(), `"msg":"segment recovered"`) {
				t.Fatalf("segment not reused:\n%s", q.logs)
			}
			rc := redis.NewClient(&redis.Options{Network: "unix", Addr: q.sock})
			defer rc.Close()
			checkAll(t, "the store", rc, keys, want)
		})
	}
}

func drainKey(i, j int) string   { return fmt.Sprintf("drain:%d:%d", i, j) }
func drainValue(i, j int) string { return fmt.Sprintf("value-%d-%d", i, j) }

// checkAll reads keys with MGET and fails on any value that is not the one wanted.
func checkAll(t *testing.T, where string, c *redis.Client, keys, want []string) {
	t.Helper()
	for len(keys) > 0 {
		n := min(len(keys), 500)
		got, err := c.MGet(context.Background(), keys[:n]...).Result()
		if err != nil {
			t.Fatalf("%s: MGET: %v", where, err)
		}
		for i, v := range got {
			if s, _ := v.(string); s != want[i] {
				t.Fatalf("%s: %s answered OK but holds %v", where, keys[i], v)
			}
		}
		keys, want = keys[n:], want[n:]
	}
}

// respConn is a raw RESP connection: the test writes whole pipelines and reads replies
// as lines (every reply here is a one-line status or error).
type respConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRESP(t *testing.T, network, addr string) *respConn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &respConn{Conn: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(startTimeout))
	if _, err := c.Write(appendCommand(nil, "PING")); err != nil {
		t.Fatal(err)
	}
	if line, err := rc.r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q %v", line, err)
	}
	return rc
}

func appendCommand(b []byte, args ...string) []byte {
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}
