package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		http2   bool
		n       int // bytes consumed
		wantErr error
	}{
		{"grpc", h2Preface + "\x00\x00\x12\x04", true, len(h2Preface), nil},
		{"resp array", "*1\r\n$4\r\nPING\r\n", false, 1, nil},
		{"resp inline", "PING\r\n", false, 2, nil},
		{"inline sharing the preface's start", "PRI\r\n", false, 4, nil},
		{"http/1", "GET / HTTP/1.1\r\n", false, 1, nil},
		{"closed at once", "", false, 0, io.ErrUnexpectedEOF},
		{"closed inside the preface", h2Preface[:10], false, 10, io.ErrUnexpectedEOF},
	} {
		for _, r := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}} {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				src := strings.NewReader(tc.in)
				var buf [len(h2Preface)]byte
				n, http2, err := sniff(r.wrap(src), buf[:])
				if http2 != tc.http2 || !errors.Is(err, tc.wantErr) {
					t.Fatalf("http2 %v err %v; want %v %v", http2, err, tc.http2, tc.wantErr)
				}
				// Byte by byte, sniff stops exactly where the protocol became clear.
				if r.name == "byte by byte" && n != tc.n {
					t.Fatalf("consumed %d bytes, want %d", n, tc.n)
				}
				// Nothing is lost: what sniff read plus what is left is the input.
				rest, _ := io.ReadAll(src)
				if got := string(buf[:n]) + string(rest); got != tc.in {
					t.Fatalf("bytes lost: %q", got)
				}
			})
		}
	}
}

func TestReplayConnGivesBackPeekedBytes(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		b.Write([]byte("rest"))
		b.Close()
	}()
	c := &replayConn{Conn: a, pending: []byte("PRI")}
	got, err := io.ReadAll(iotest.OneByteReader(c))
	if err != nil || string(got) != "PRIrest" {
		t.Fatalf("%q %v", got, err)
	}
}

// FuzzSniff checks, for any input split at any point, that sniff never reads past the
// preface and that its verdict agrees with the bytes.
func FuzzSniff(f *testing.F) {
	f.Add([]byte(h2Preface), 3)
	f.Add([]byte("*3\r\n$3\r\nSET\r\n"), 1)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSX"), 7)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		if split < 0 {
			split = -split
		}
		r := io.MultiReader(bytes.NewReader(in[:min(split, len(in))]), bytes.NewReader(in[min(split, len(in)):]))
		var buf [len(h2Preface)]byte
		n, http2, err := sniff(r, buf[:])
		if n > len(h2Preface) || n > len(in) || !bytes.Equal(buf[:n], in[:n]) {
			t.Fatalf("read %d bytes %q of %q", n, buf[:n], in)
		}
		isPrefix := bytes.HasPrefix([]byte(h2Preface), in[:n])
		switch {
		case http2:
			if string(buf[:n]) != h2Preface || err != nil {
				t.Fatalf("http2 on %q (%v)", buf[:n], err)
			}
		case err != nil:
			if !isPrefix || len(in) >= len(h2Preface) && bytes.HasPrefix(in, []byte(h2Preface)) {
				t.Fatalf("error %v on %q", err, in)
			}
		default:
			if isPrefix {
				t.Fatalf("not http2 on a prefix of the preface %q", buf[:n])
			}
		}
	})
}
