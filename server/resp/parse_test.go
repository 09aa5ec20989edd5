package resp

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cachee/cachee/store"
)

type parsed struct {
	reqs    [][]string
	perr    string
	pending int // bytes left unparsed
}

// parseAll parses b fed in chunks of the given size (0: all at once), as the server
// does: appending to one buffer and consuming whole requests from its front.
func parseAll(p *parser, b []byte, chunk int, authed bool) parsed {
	var out parsed
	var buf []byte
	if chunk <= 0 {
		chunk = len(b) + 1
	}
	for len(b) > 0 {
		n := min(chunk, len(b))
		buf = append(buf, b[:n]...)
		b = b[n:]
		for {
			used, st, perr := p.parse(buf, authed)
			if st == parseError {
				out.perr = perr
				return out
			}
			if st == parseMore {
				break
			}
			if len(p.args) > 0 {
				r := make([]string, len(p.args))
				for i, a := range p.args {
					r[i] = string(a)
				}
				out.reqs = append(out.reqs, r)
			}
			buf = buf[used:]
		}
	}
	out.pending = len(buf)
	return out
}

func TestParser(t *testing.T) {
	cases := []struct {
		in      string
		reqs    [][]string
		perr    string
		pending int
	}{
		{in: "*1\r\n$4\r\nPING\r\n", reqs: [][]string{{"PING"}}},
		{in: "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", reqs: [][]string{{"GET", ""}}},
		{in: "*2\r\n$3\r\nGET\r\n$1\r\n", pending: 17},
		{in: "*0\r\n*-1\r\nPING\r\n", reqs: [][]string{{"PING"}}},
		{in: "*1\r\n$4\r\nPI\r\n\r\n", reqs: [][]string{{"PI\r\n"}}},
		{in: "*1\r\n$2\r\nabXY", reqs: [][]string{{"ab"}}}, // Redis skips the two bytes unchecked
		{in: "*x\r\n", perr: "invalid multibulk length"},
		{in: "*65\r\n", perr: "invalid multibulk length"}, // maxArgs 64 here
		{in: "*1\r\n$1025\r\n", perr: "invalid bulk length 1025: over the limit of 1024 bytes (--max-value-size)"},
		{in: "*1\r\n$-1\r\n", perr: "invalid bulk length"},
		{in: "*1\r\n$9223372036854775807\r\n", perr: "invalid bulk length"},
		{in: "*9223372036854775807\r\n", perr: "invalid multibulk length"},
		{in: "*1\r\n+PING\r\n", perr: "expected '$', got '+'"},
		{in: "*1\r\n\n\r\n", perr: "expected '$', got ' '"},
		{in: "  a  'b c'  \"d\\x41\\n\"\r\n", reqs: [][]string{{"a", "b c", "dA\n"}}},
		{in: "set k \"a\"b\r\n", perr: "unbalanced quotes in request"},
		{in: "set k \"ab\r\n", perr: "unbalanced quotes in request"},
		{in: "a\"b c\"d e\r\n", perr: "unbalanced quotes in request"},
		{in: "a\"b c\" e\r\n", reqs: [][]string{{"ab c", "e"}}},
		{in: "x\r\ny\n", reqs: [][]string{{"x"}, {"y"}}},
		{in: "\r\n\r\n", reqs: nil},
		{in: "abc", pending: 3},
		{in: strings.Repeat("a", MaxInline+1), perr: "too big inline request"},
		{in: strings.Repeat("a", MaxInline+1) + "\n", perr: "too big inline request"},
		{in: "*1" + strings.Repeat("1", MaxInline) + "\r\n", perr: "too big mbulk count string"},
		{in: "*1\r\n$" + strings.Repeat("1", MaxInline) + "\r\n", perr: "too big bulk count string"},
	}
	for _, tc := range cases {
		for _, chunk := range []int{0, 1, 2, 3, 7} {
			p := newParser(1024, 64)
			got := parseAll(&p, []byte(tc.in), chunk, true)
			want := parsed{reqs: tc.reqs, perr: tc.perr, pending: tc.pending}
			if tc.perr != "" {
				want.pending = 0
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%q chunk %d: got %+v want %+v", short(tc.in), chunk, got, want)
			}
		}
	}
}

func TestParserUnauthenticated(t *testing.T) {
	for _, tc := range []struct{ in, perr string }{
		{"*11\r\n", "unauthenticated multibulk length"},
		{"*1\r\n$16385\r\n", "unauthenticated bulk length"},
		{"*10\r\n", ""},
		{"*1\r\n$16384\r\n", ""},
	} {
		p := newParser(1<<20, 1<<20)
		got := parseAll(&p, []byte(tc.in), 0, false)
		if got.perr != tc.perr {
			t.Errorf("%q: got %q want %q", tc.in, got.perr, tc.perr)
		}
	}
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// testServer is a Server over a small store, for driving clients without sockets.
func testServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	st, err := store.Open(store.Config{MaxMemory: MinStoreMemory})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(st, cfg)
}

// MinStoreMemory is the smallest store the tests open.
const MinStoreMemory = store.MinMemory

// drive feeds data to a client in chunks as a connection would and returns its replies
// and whether it closed (or was dropped).
func drive(cl *client, data []byte, chunk int) ([]byte, bool) {
	var out []byte
	if chunk <= 0 {
		chunk = len(data) + 1
	}
	for len(data) > 0 && !cl.closing {
		if !cl.makeRoom() {
			return out, true
		}
		n := copy(cl.in[cl.wi:], data[:min(chunk, len(data))])
		cl.wi += n
		data = data[n:]
		for {
			more := cl.process()
			out = append(out, cl.w.b...)
			cl.w.b = cl.w.b[:0]
			if !more {
				break
			}
		}
	}
	return out, cl.closing
}

func TestProcessDoesNotAllocate(t *testing.T) {
	s := testServer(t, Config{})
	cl := newClient(s, nil)
	var req []byte
	for i := range 16 {
		k := fmt.Sprintf("key:%d", i)
		req = append(req, fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n", len(k), k, strings.Repeat("v", 100))...)
		req = append(req, fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)...)
	}
	// INCR, EXISTS and the like hand a closure to the store's Update, which escapes to
	// the heap: they are left out.
	req = append(req, "*1\r\n$4\r\nPING\r\n*3\r\n$4\r\nMGET\r\n$5\r\nkey:1\r\n$1\r\nx\r\n*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n"...)
	run := func() {
		cl.makeRoom()
		cl.wi += copy(cl.in[cl.wi:], req)
		cl.process()
		if cl.ri != cl.wi || cl.closing {
			t.Fatal("request not consumed")
		}
		cl.w.b = cl.w.b[:0]
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("%v allocations per pipeline of %d requests; want 0", allocs, 35)
	}
}

// Replies must not depend on how the bytes were split into reads.
func TestProcessChunking(t *testing.T) {
	in := []byte("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$3\r\nxyz\r\nGET a\r\n*2\r\n$6\r\nappend\r\n$1\r\na\r\n" +
		"MULTI\r\nINCR n\r\nINCR n\r\nEXEC\r\nECHO \"q\\x41\"\r\n*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n*1\r\n$x\r\nPING\r\n")
	var first []byte
	for _, chunk := range []int{0, 1, 2, 5, 13} {
		s := testServer(t, Config{})
		out, closed := drive(newClient(s, nil), in, chunk)
		if !closed {
			t.Errorf("chunk %d: not closed after a protocol error", chunk)
		}
		if first == nil {
			first = out
			if !bytes.HasSuffix(out, []byte("-ERR Protocol error: invalid bulk length\r\n")) {
				t.Errorf("unexpected replies %q", out)
			}
		} else if !bytes.Equal(out, first) {
			t.Errorf("chunk %d: %q, all at once: %q", chunk, out, first)
		}
	}
}

// A request past MaxRequest drops the connection, without reading the whole of it.
func TestRequestLimit(t *testing.T) {
	s := testServer(t, Config{MaxRequest: 1 << 17, MaxBulk: 1 << 16})
	cl := newClient(s, nil)
	var in []byte
	in = append(in, "*10\r\n$3\r\nset\r\n"...)
	for range 9 {
		in = append(in, fmt.Sprintf("$%d\r\n%s\r\n", 1<<16, strings.Repeat("x", 1<<16))...)
	}
	out, closed := drive(cl, in, 4096)
	if !closed || len(out) != 0 {
		t.Fatalf("closed=%v out=%q", closed, out)
	}
	if len(cl.in) > 1<<18 {
		t.Errorf("read buffer grew to %d", len(cl.in))
	}
}

func mbulk(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// Pipelined SETs are stored together (flushSets); replies, errors and WATCH must be as
// if each ran alone.
func TestBatchedSets(t *testing.T) {
	st, err := store.Open(store.Config{MaxMemory: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(st, Config{MaxBulk: 2 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	watcher, writer := newClient(s, nil), newClient(s, nil)
	out, _ := drive(watcher, []byte("WATCH b\r\n"), 0)
	if string(out) != "+OK\r\n" {
		t.Fatalf("watch: %q", out)
	}
	var in []byte
	for _, r := range [][]string{{"SET", "a", "1"}, {"set", "", "x"}, {"SET", "b", "2"},
		{"SET", strings.Repeat("k", 70000), "v"}, {"SET", "c", strings.Repeat("v", 2<<20)[:1<<20+1]},
		{"GET", "a"}, {"SET", "c", "3"}, {"SET", "a", "4", "NX"}, {"SET", "d", "5"}, {"MGET", "a", "b", "c", "d"}} {
		in = append(in, mbulk(r...)...)
	}
	out, closed := drive(writer, in, 0)
	want := "+OK\r\n-" + errEmptyKey + "\r\n+OK\r\n-" + errKeyTooBig + "\r\n-" + errTooBig + "\r\n" +
		"$1\r\n1\r\n+OK\r\n$-1\r\n+OK\r\n*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n5\r\n"
	if closed || string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	out, _ = drive(watcher, []byte("MULTI\r\nGET b\r\nEXEC\r\n"), 0)
	if string(out) != "+OK\r\n+QUEUED\r\n*-1\r\n" {
		t.Fatalf("EXEC after a batched SET of a watched key: %q", out)
	}
}

// TestOversizedArgumentDropped: an argument over the bulk limit is refused with an
// error that names the limit and its flag, then the rest of its request is read and
// dropped, so that a client still writing it is not reset; the connection closes at
// the request's end, and nothing after it runs. However the bytes arrive.
func TestOversizedArgumentDropped(t *testing.T) {
	const limit = 1024
	big := strings.Repeat("v", 3000)
	refused := fmt.Sprintf("-ERR Protocol error: invalid bulk length %d: over the limit of %d bytes (--max-value-size)\r\n", len(big), limit)
	for _, tc := range []struct {
		name    string
		request string // closes the connection at its last byte, not before
		after   string // not run
		pass    string // RequirePass: the client has not authenticated
		want    string
	}{
		{name: "last argument", request: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000\r\n" + big + "\r\n", after: "PING\r\n", want: refused},
		{name: "arguments after it", request: "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000\r\n" + big + "\r\n$2\r\nEX\r\n$2\r\n10\r\n",
			after: "*1\r\n$4\r\nPING\r\n", want: refused},
		{name: "oversized arguments after it", request: "*3\r\n$4\r\nMSET\r\n$3000\r\n" + big + "\r\n$3000\r\n" + big + "\r\n", after: "PING\r\n", want: refused},
		{name: "a pipeline before it runs", request: "PING\r\n*2\r\n$3\r\nGET\r\n$3000\r\n" + big + "\r\n", want: "+PONG\r\n" + refused},
		// What follows the refused argument is not an argument: nothing more can be read
		// in step with the client, so the connection closes there.
		{name: "garbage after it", request: "*3\r\n$3\r\nSET\r\n$3000\r\n" + big + "\r\n+", after: "PING\r\n", want: refused},
		{name: "beyond any value", request: "*2\r\n$3\r\nGET\r\n$536870913\r\n", after: "PING\r\n", want: "-ERR Protocol error: invalid bulk length\r\n"},
		{name: "unauthenticated", pass: "pw", request: "*2\r\n$3\r\nGET\r\n$3000\r\n", after: big, want: "-ERR Protocol error: invalid bulk length\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1, 7, 1000} {
				cl := newClient(testServer(t, Config{MaxBulk: limit, RequirePass: tc.pass}), nil)
				req := []byte(tc.request)
				out, closed := drive(cl, req[:len(req)-1], chunk)
				if closed {
					t.Fatalf("chunk %d: closed before the request's last byte, replies %q", chunk, out)
				}
				more, closed := drive(cl, append(req[len(req)-1:], tc.after...), chunk)
				if out = append(out, more...); !closed || string(out) != tc.want {
					t.Fatalf("chunk %d: replies %q, closed %v; want %q and closed", chunk, out, closed, tc.want)
				}
			}
		})
	}
}
