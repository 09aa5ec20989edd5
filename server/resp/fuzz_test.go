package resp

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// fuzzLimits are small so that the fuzzer reaches them.
const (
	fuzzBulk = 512
	fuzzArgs = 16
)

// FuzzParser checks that arbitrary bytes never panic the parser, that it never keeps
// more than the limits allow, and that how the bytes are split into reads does not
// change what it parses.
func FuzzParser(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), uint8(1), true)
	f.Add([]byte("SET k \"a\\x41\" 'b'\r\n"), uint8(3), false)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, authed bool) {
		p := newParser(fuzzBulk, fuzzArgs)
		whole := parseAll(&p, data, 0, authed)
		if cap(p.spans) > fuzzArgs || cap(p.args) > fuzzArgs {
			t.Fatalf("parser kept %d spans, %d args; limit %d", cap(p.spans), cap(p.args), fuzzArgs)
		}
		for _, r := range whole.reqs {
			if len(r) > fuzzArgs {
				t.Fatalf("request of %d arguments", len(r))
			}
			for _, a := range r {
				if len(a) > max(fuzzBulk, MaxInline) {
					t.Fatalf("argument of %d bytes", len(a))
				}
			}
		}
		q := newParser(fuzzBulk, fuzzArgs)
		split := parseAll(&q, data, int(chunk%16)+1, authed)
		// Long lines are judged on what has arrived, so a split input may fail a line
		// earlier than the whole; anything else must be the same.
		if fmt.Sprint(split) != fmt.Sprint(whole) && !(whole.perr != "" && split.perr != "") {
			t.Fatalf("split %d: %+v\nwhole: %+v", chunk%16+1, split, whole)
		}
	})
}

// FuzzClient drives a client over a real store with arbitrary bytes: it must never
// panic, must keep its buffers within the limits, must answer with well-formed RESP,
// and must answer every request it read with exactly one reply (or close).
func FuzzClient(f *testing.F) {
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\nINCR k\r\n"), uint8(0))
	f.Add([]byte("MULTI\r\nSET a 1\r\nINCRBYFLOAT a 1.5\r\nEXEC\r\nKEYS *\r\nSCAN 0 MATCH a*\r\n"), uint8(2))
	f.Add([]byte("HELLO 3\r\nCONFIG GET *\r\nCOMMAND DOCS get\r\nCLIENT LIST\r\nINFO\r\n"), uint8(5))
	// An argument over the bulk limit, whose request is read and dropped to its end.
	f.Add([]byte("PING\r\n*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$600\r\n"+strings.Repeat("v", 600)+"\r\n$2\r\nNX\r\nPING\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		s := testServer(t, Config{MaxBulk: fuzzBulk, MaxArgs: fuzzArgs, MaxRequest: MaxInline + 4096})
		defer s.Close()
		cl := newClient(s, nil)
		out, _ := drive(cl, data, int(chunk)+1)
		if len(cl.in) > 2*(MaxInline+4096)+readChunk {
			t.Fatalf("read buffer of %d bytes", len(cl.in))
		}
		n, err := validRESP(out)
		if err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		// What the requests call for: one reply each; a protocol error is one more,
		// then the end; QUIT ends after its reply; an HTTP probe ends with none, and
		// drops the replies to requests that came in the same read.
		p := newParser(s.maxBulk, s.cfg.MaxArgs)
		parsed := parseAll(&p, data, int(chunk)+1, true)
		want, probe := 0, false
		for _, r := range parsed.reqs {
			if isSecurityProbe([]byte(r[0])) {
				probe = true
				break
			}
			want++
			if eqFold([]byte(r[0]), "quit") {
				break
			}
		}
		if !probe && len(parsed.reqs) == want && parsed.perr != "" {
			want++
		}
		if probe && n > want || !probe && n != want {
			t.Fatalf("%d replies to %d requests (protocol error %q): %q", n, want, parsed.perr, out)
		}
	})
}

// validRESP checks that b is a sequence of whole RESP2/RESP3 values and counts them.
func validRESP(b []byte) (int, error) {
	count := 0
	for len(b) > 0 {
		n, err := respValue(b, 0)
		if err != nil {
			return count, err
		}
		b = b[n:]
		count++
	}
	return count, nil
}

func respValue(b []byte, depth int) (int, error) {
	if depth > 8 {
		return 0, fmt.Errorf("nested too deep")
	}
	nl := bytes.Index(b, []byte("\r\n"))
	if nl < 1 {
		return 0, fmt.Errorf("no line")
	}
	body := string(b[1:nl])
	n := nl + 2
	switch b[0] {
	case '+', '-':
		if bytes.ContainsAny(b[1:nl], "\r\n") {
			return 0, fmt.Errorf("newline in simple string")
		}
		return n, nil
	case ':':
		if _, err := strconv.ParseInt(body, 10, 64); err != nil {
			return 0, err
		}
		return n, nil
	case '_':
		return n, nil
	case '$', '=':
		l, err := strconv.Atoi(body)
		if err != nil || l < -1 {
			return 0, fmt.Errorf("bad length %q", body)
		}
		if l == -1 {
			return n, nil
		}
		if len(b) < n+l+2 || string(b[n+l:n+l+2]) != "\r\n" {
			return 0, fmt.Errorf("short bulk")
		}
		return n + l + 2, nil
	case '*', '%', '~':
		l, err := strconv.Atoi(body)
		if err != nil || l < -1 {
			return 0, fmt.Errorf("bad count %q", body)
		}
		if b[0] == '%' {
			l *= 2
		}
		for range l {
			m, err := respValue(b[n:], depth+1)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	}
	return 0, fmt.Errorf("unknown type %q", b[0])
}
