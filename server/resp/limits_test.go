package resp_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// info returns one field of INFO from a fresh connection.
func info(t *testing.T, e *env, field string) string {
	t.Helper()
	c := dial(t, "tcp", e.tcp)
	defer c.c.Close() // so that it holds nothing of a budget the test watches
	s := c.do("INFO", "everything")
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	t.Fatalf("INFO has no %s", field)
	return ""
}

// waitClosed reads from c until the server closes it, discarding what comes; it fails
// the test if the server neither closes nor goes quiet within 30 seconds. It returns
// how many bytes came.
func waitClosed(t *testing.T, c net.Conn) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after reading %d bytes", n)
	}
	return int(n)
}

// TestOutputLimitDisconnects: a client that pipelines without reading its replies is
// disconnected once more than MaxOutput waits, instead of making the server hold
// replies without end or stop reading it (which would leave both sides blocked in
// write for good).
func TestOutputLimitDisconnects(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const maxOutput = 2 << 20
			budget := server.NewBudget(64 << 20)
			e := startEnv(t, resp.Config{EventLoops: m.loops, MaxOutput: maxOutput, Memory: budget}, store.Config{MaxMemory: 16 << 20})
			setup := dial(t, "tcp", e.tcp)
			big := strings.Repeat("v", 256<<10)
			if got := setup.do("SET", "big", big); got != "+OK\r\n" {
				t.Fatal(got)
			}
			c, err := net.Dial("tcp", e.tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// 4000 replies of 256 KiB: 1 GiB, far past the limit and the socket
			// buffers. The writes fail once the server closes.
			done := make(chan struct{})
			go func() {
				defer close(done)
				req := encode("GET", "big")
				for range 4000 {
					if _, err := c.Write(req); err != nil {
						return
					}
				}
			}()
			// Read nothing until the server has had time to fill the socket and pass
			// the limit; then the connection must end, well short of all the replies.
			eventually(t, "the client to be disconnected", func() bool {
				return info(t, e, "client_output_buffer_limit_disconnections") == "1"
			})
			if got := waitClosed(t, c); got >= 4000*(256<<10) {
				t.Fatalf("all %d bytes of replies arrived", got)
			}
			<-done
			if u := budget.Used(); u > 1<<20 {
				t.Errorf("%d bytes still charged after the disconnect", u)
			}
			if got := setup.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("server after the disconnect: %q", got)
			}
		})
	}
}

// TestOneReplyPastTheLimit: a single command whose reply alone is over MaxOutput
// disconnects the client without the server building that reply.
func TestOneReplyPastTheLimit(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops, MaxOutput: 1 << 20}, store.Config{MaxMemory: 16 << 20})
			c := dial(t, "tcp", e.tcp)
			if got := c.do("SET", "k", strings.Repeat("v", 300<<10)); got != "+OK\r\n" {
				t.Fatal(got)
			}
			if got := c.do("MGET", "k", "k", "k"); len(got) < 900<<10 {
				t.Fatalf("MGET of 900 KiB: %d bytes", len(got))
			}
			// 300 KiB × 1000 = 300 MiB in one reply.
			args := []string{"MGET"}
			for range 1000 {
				args = append(args, "k")
			}
			c.send(encode(args...))
			if n := waitClosed(t, c.c); n != 0 {
				t.Fatalf("%d bytes of a reply over the limit were sent", n)
			}
			if got := info(t, e, "client_output_buffer_limit_disconnections"); got != "1" {
				t.Fatalf("disconnections: %s", got)
			}
		})
	}
}

// TestClientMemoryBudget: clients whose buffers together would exceed the budget are
// disconnected as they ask for more; what they held is released.
func TestClientMemoryBudget(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const limit = 1 << 20
			budget := server.NewBudget(limit)
			e := startEnv(t, resp.Config{EventLoops: m.loops, Memory: budget}, store.Config{MaxMemory: 16 << 20})
			// Each client starts a SET of a 700 KiB value and sends most of it: its
			// read buffer must grow to hold the whole request. Two of them cannot both.
			head := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$716800\r\n" + strings.Repeat("x", 600<<10)
			a := dial(t, "tcp", e.tcp)
			a.send([]byte(head))
			eventually(t, "the first request to be charged", func() bool { return budget.Used() > 700<<10 })
			b := dial(t, "tcp", e.tcp)
			b.send([]byte(head))
			if n := waitClosed(t, b.c); n != 0 {
				t.Fatalf("second client got %d bytes", n)
			}
			if got := info(t, e, "evicted_clients"); got != "1" {
				t.Fatalf("evicted_clients %s", got)
			}
			// The first finishes its request and is served; its buffers go back.
			a.send([]byte(strings.Repeat("x", 100<<10) + "\r\n"))
			if got := a.read(); got != "+OK\r\n" {
				t.Fatalf("first client: %q", got)
			}
			eventually(t, "the request's buffer to be released", func() bool { return budget.Used() < 64<<10 })
			// Now another client can do the same.
			c := dial(t, "tcp", e.tcp)
			if got := c.do("SET", "k2", strings.Repeat("y", 700<<10)); got != "+OK\r\n" {
				t.Fatalf("third client: %q", got)
			}
			a.c.Close()
			c.c.Close()
			eventually(t, "every charge to be released", func() bool { return budget.Used() == 0 })
		})
	}
}

// TestClientMemoryBudgetRefusesNewClients: with the budget spent, a new client is
// told why and closed.
func TestClientMemoryBudgetRefusesNewClients(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			budget := server.NewBudget(100)
			e := startEnv(t, resp.Config{EventLoops: m.loops, Memory: budget}, store.Config{})
			c := dial(t, "tcp", e.tcp)
			c.send(encode("PING"))
			if got := c.read(); got != "-ERR client memory limit reached\r\n" || !c.closed() {
				t.Fatalf("%q", got)
			}
		})
	}
}

// TestIdleTimeout: a client that sends nothing for IdleTimeout is closed; one that
// keeps sending is not.
func TestIdleTimeout(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops, IdleTimeout: 300 * time.Millisecond}, store.Config{})
			busy := dial(t, "tcp", e.tcp)
			idle := dial(t, "unix", e.unix)
			if got := idle.do("PING"); got != "+PONG\r\n" {
				t.Fatal(got)
			}
			stop := make(chan struct{})
			var busyErr error
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if got := busy.do("PING"); got != "+PONG\r\n" {
						busyErr = fmt.Errorf("busy client: %q", got)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
			if n := waitClosed(t, idle.c); n != 0 {
				t.Fatalf("idle client got %d bytes", n)
			}
			close(stop)
			wg.Wait()
			if busyErr != nil {
				t.Fatal(busyErr)
			}
			if got := info(t, e, "cachee_idle_timeout_disconnections"); got != "1" {
				t.Fatalf("idle disconnections %s", got)
			}
			if got := busy.do("CONFIG", "GET", "timeout"); !strings.Contains(got, "timeout\r\n$1\r\n0\r\n") {
				// 300 ms is 0 whole seconds, as Redis's timeout counts.
				t.Fatalf("CONFIG GET timeout: %q", got)
			}
		})
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOutputLimitSmallReplies: the limit holds for many small replies too, not only
// for bulks (which the writer checks one by one).
func TestOutputLimitSmallReplies(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops, MaxOutput: 1 << 20}, store.Config{})
			c, err := net.Dial("unix", e.unix)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// 1M INCRs: over 8 MB of integer replies, which the writer does not check
			// one by one.
			batch := bytes.Repeat([]byte("INCR k\r\n"), 10000)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range 100 {
					if _, err := c.Write(batch); err != nil {
						return
					}
				}
			}()
			eventually(t, "the client to be disconnected", func() bool {
				return info(t, e, "client_output_buffer_limit_disconnections") == "1"
			})
			if got := waitClosed(t, c); got >= 1000000*4 {
				t.Fatalf("all %d bytes of replies arrived", got)
			}
			<-done
		})
	}
}

// TestReplyRefusedBeforeWritten: a reply that the client memory budget cannot hold is
// refused as its buffer grows, before a byte of it is written: the client is
// disconnected as a client past its output limit is, and counted as evicted. (A GET
// learns the value's length by reading it, so its buffer is allocated first; a bulk of
// known length asks before allocating, see writer.fits.)
func TestReplyRefusedBeforeWritten(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			budget := server.NewBudget(1 << 20)
			e := startEnv(t, resp.Config{EventLoops: m.loops, Memory: budget}, store.Config{MaxMemory: 64 << 20, MaxValueSize: 8 << 20})
			big := bytes.Repeat([]byte("v"), 8<<20)
			if _, err := e.st.Set([]byte("big"), big, store.SetOptions{}); err != nil {
				t.Fatal(err)
			}
			c := dial(t, "tcp", e.tcp)
			c.send([]byte("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"))
			// Checked after the fact, the reply would have been built and written
			// before the client was disconnected.
			if n := waitClosed(t, c.c); n != 0 {
				t.Fatalf("got %d bytes of a reply the budget refused", n)
			}
			if got := info(t, e, "evicted_clients"); got != "1" {
				t.Fatalf("evicted_clients %s", got)
			}
			// The disconnected client gives back what it held.
			eventually(t, "the budget to be released", func() bool { return budget.Used() == 0 })
		})
	}
}

// TestBudgetCheckedBeforeAllocating: a request that announces a bulk the budget cannot
// hold is refused before its buffer is allocated, not after.
func TestBudgetCheckedBeforeAllocating(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			budget := server.NewBudget(1 << 20)
			e := startEnv(t, resp.Config{EventLoops: m.loops, Memory: budget, MaxBulk: 60 << 20}, store.Config{})
			c := dial(t, "tcp", e.tcp)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c.send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$62914560\r\n"))
			// An event loop grows the buffer when more of the bulk arrives.
			go func() {
				chunk := make([]byte, 64<<10)
				for range 100 {
					if _, err := c.c.Write(chunk); err != nil {
						return
					}
				}
			}()
			if n := waitClosed(t, c.c); n != 0 {
				t.Fatalf("got %d bytes", n)
			}
			runtime.ReadMemStats(&after)
			if d := after.TotalAlloc - before.TotalAlloc; d > 30<<20 {
				t.Fatalf("allocated %d bytes for a request the budget refused", d)
			}
			if got := info(t, e, "evicted_clients"); got != "1" {
				t.Fatalf("evicted_clients %s", got)
			}
		})
	}
}

// TestPipelinedLargeValues: GETs of large values in a pipeline, whose replies pile up
// in the reply buffer before the client reads them (the values are then read aside
// before the buffer grows, see bulkAside), come back whole and in order, mixed with
// small values and misses.
func TestPipelinedLargeValues(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops, MaxOutput: 32 << 20}, store.Config{MaxMemory: 16 << 20})
			c := dial(t, "tcp", e.tcp)
			vals := map[string]string{}
			for i, n := range []int{100 << 10, 5 << 10, 300 << 10, 10} {
				k := fmt.Sprintf("k%d", i)
				b := make([]byte, n)
				for j := range b {
					b[j] = 'a' + byte((i+j)%26)
				}
				vals[k] = string(b)
				if got := c.do("SET", k, vals[k]); got != "+OK\r\n" {
					t.Fatal(got)
				}
			}
			var keys []string
			for range 10 { // 12 MiB of replies: more than the sockets hold
				keys = append(keys, "k0", "k0", "k1", "k2", "missing", "k0", "k3", "k2", "k2", "k1", "k0", "k2")
			}
			var req []byte
			for _, k := range keys {
				req = append(req, encode("GET", k)...)
			}
			c.send(req)
			time.Sleep(100 * time.Millisecond) // unread meanwhile, replies pile up in the server
			for i, k := range keys {
				want := "$-1\r\n"
				if v, ok := vals[k]; ok {
					want = fmt.Sprintf("$%d\r\n%s\r\n", len(v), v)
				}
				if got := c.read(); got != want {
					t.Fatalf("reply %d (GET %s): %d bytes, want %d", i, k, len(got), len(want))
				}
			}
		})
	}
}
