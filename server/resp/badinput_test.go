package resp_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// alive checks that the server still serves a new client, after the input in.
func alive(t *testing.T, e *env, in string) {
	t.Helper()
	for _, n := range []struct{ network, addr string }{{"tcp", e.tcp}, {"unix", e.unix}} {
		c, err := net.DialTimeout(n.network, n.addr, 10*time.Second)
		if err != nil {
			t.Fatalf("after %q: %v", short(in), err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "*1\r\n$4\r\nPING\r\n")
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if got != "+PONG\r\n" {
			t.Fatalf("after %q: the server answered PING with %q (%v)", short(in), got, err)
		}
	}
}

// stream writes start and then junk without a line end until the server closes the
// connection (or 10 MiB have gone, which fails), and returns what it answered.
func stream(t *testing.T, network, addr, start string, junk []byte) string {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		answer <- string(b)
	}()
	if _, err := io.WriteString(c, start); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for sent < 10<<20 {
		n, err := c.Write(junk)
		sent += n
		if err != nil {
			break // closed by the server, as it should
		}
	}
	if sent >= 10<<20 {
		t.Fatalf("%q: the server took 10 MiB of junk without closing", short(start))
	}
	return <-answer
}

// TestUnterminatedLines: lines that never end, as in Redis's "Protocol desync
// regression test" (a NUL, "*" or "$" and then a stream of junk with no line end)
// and a 64 KiB + 1 inline request, are refused once past 64 KiB, with Redis's error,
// and the server serves on.
func TestUnterminatedLines(t *testing.T) {
	raddr := startRedis(t)
	junk := bytes.Repeat([]byte("payload"), 1024)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			for _, tc := range []struct {
				start string
				junk  []byte
				want  string
			}{
				{"\x00", junk, "-ERR Protocol error: too big inline request\r\n"},
				{"*\x00", junk, "-ERR Protocol error: too big mbulk count string\r\n"},
				{"$\x00", junk, "-ERR Protocol error: too big inline request\r\n"},
				{"*1\r\n$", []byte(strings.Repeat("1", 4096)), "-ERR Protocol error: too big bulk count string\r\n"},
			} {
				want := stream(t, "tcp", raddr, tc.start, tc.junk)
				got := stream(t, "tcp", e.tcp, tc.start, tc.junk)
				if got != want || got != tc.want {
					t.Errorf("%q then junk:\n got %q\nredis %q\n want %q", tc.start, got, want, tc.want)
				}
				alive(t, e, tc.start)
			}

			// 64 KiB + 1 of inline request, with no line end: one byte too many.
			long := strings.Repeat("x", 64<<10+1)
			want, wantClosed := exchangeNoMarker(t, "tcp", raddr, long)
			got, gotClosed := exchangeNoMarker(t, "tcp", e.tcp, long)
			if got != want || gotClosed != wantClosed || got != "-ERR Protocol error: too big inline request\r\n" || !gotClosed {
				t.Errorf("64 KiB + 1 inline:\n got %q closed=%v\nwant %q closed=%v", got, gotClosed, want, wantClosed)
			}
			alive(t, e, "64 KiB + 1 inline")
			// 64 KiB exactly, then its line end, is a request (an unknown command).
			got, gotClosed = exchangeNoMarker(t, "tcp", e.tcp, strings.Repeat("x", 64<<10)+"\n")
			if gotClosed || !strings.HasPrefix(got, "-ERR unknown command 'xxx") {
				t.Errorf("64 KiB inline: %q closed=%v", short(got), gotClosed)
			}
		})
	}
}

// exchangeNoMarker writes in and reads what comes back until the server closes the
// connection or sends nothing more for a second.
func exchangeNoMarker(t *testing.T, network, addr, in string) (string, bool) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tmp := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(tmp)
		buf.Write(tmp[:n])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return buf.String(), false
			}
			return buf.String(), true
		}
	}
}

// TestInlineNUL: an inline request with a NUL before its line end runs up to the NUL,
// as Redis splits it. (Redis 7.0 looks for the line end with strchr, which stops at
// the NUL, so it waits for more instead, until the line is 64 KiB long: a difference
// doc.go lists.)
func TestInlineNUL(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			for in, want := range map[string]string{
				"ab\x00cd\r\n":             "-ERR unknown command 'ab', with args beginning with: \r\n",
				"PING\x00junk\r\n":         "+PONG\r\n",
				"\x00\x00\x00\r\n\x00\r\n": "",
			} {
				got, closed := exchange(t, "tcp", e.tcp, in)
				if got != want || closed {
					t.Errorf("%q: %q closed=%v, want %q", in, got, closed, want)
				}
				alive(t, e, in)
			}
		})
	}
}
