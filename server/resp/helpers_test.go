package resp_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// env is a Server behind its own listeners, as package server would run it.
type env struct {
	srv  *resp.Server
	st   *store.Store
	tcp  string // host:port
	unix string // socket path
}

type mode struct {
	name  string
	loops int // resp.Config.EventLoops
}

// modes are the two ways a Server serves connections; every conformance test runs in
// both.
var modes = []mode{{"loop", 1}, {"goroutine", -1}}

func startEnv(t testing.TB, cfg resp.Config, scfg store.Config) *env {
	t.Helper()
	if scfg.MaxMemory == 0 {
		scfg.MaxMemory = 16 << 20
	}
	st, err := store.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := resp.New(st, cfg)
	e := &env{srv: srv, st: st}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.tcp = tl.Addr().String()
	e.unix = filepath.Join(t.TempDir(), "c.sock")
	ul, err := net.Listen("unix", e.unix)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{tl, ul} {
		go acceptLoop(l, srv)
	}
	t.Cleanup(func() {
		tl.Close()
		ul.Close()
		srv.Close()
		st.Close()
	})
	return e
}

// acceptLoop hands connections to srv the way package server does: after reading the
// first bytes to detect the protocol, which it passes on as peeked.
func acceptLoop(l net.Listener, srv *resp.Server) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			buf := make([]byte, 3)
			n, err := c.Read(buf)
			if err != nil && n == 0 {
				c.Close()
				return
			}
			srv.ServeConn(c, buf[:n])
		}()
	}
}

// raw is a minimal RESP client that returns replies as the bytes the server sent.
type raw struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, network, addr string) *raw {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: bufio.NewReader(c)}
}

func encode(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func (r *raw) send(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// do sends one command and returns its reply.
func (r *raw) do(args ...string) string {
	r.t.Helper()
	r.send(encode(args...))
	return r.read()
}

func (r *raw) read() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := readReply(r.r)
	if err != nil {
		r.t.Fatalf("read reply: %v", err)
	}
	return s
}

// closed reports whether the server closed the connection (after any replies).
func (r *raw) closed() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.r.ReadByte()
	return errors.Is(err, io.EOF) || isReset(err)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// readReply reads one whole RESP2/RESP3 value and returns its bytes.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return line, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return line, fmt.Errorf("bad line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return line, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return line, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return line, err
		}
		return line + string(buf), nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return line, err
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		out := line
		for range n {
			s, err := readReply(r)
			out += s
			if err != nil {
				return out, err
			}
		}
		return out, nil
	}
	return line, fmt.Errorf("unknown type %q", line)
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 1<<16) }

func unixDialer(path string) func(string, *net.Dialer, *tls.Config) (net.Conn, error) {
	return func(_ string, d *net.Dialer, _ *tls.Config) (net.Conn, error) { return d.Dial("unix", path) }
}

// missing skips a test whose outside tool is not installed, or fails it when
// CACHEE_REQUIRE_TOOLS is set (CI sets it, so that a missing install step cannot pass
// as a skip).
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CACHEE_REQUIRE_TOOLS") != "" {
		t.Fatal(why + " (CACHEE_REQUIRE_TOOLS is set)")
	}
	t.Skip(why)
}
