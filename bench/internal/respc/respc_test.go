package respc

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"testing"
)

// TestReplies feeds canned replies through a pipe and checks what Read makes of them,
// and what Send wrote.
func TestReplies(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := &Conn{c: client, w: bufio.NewWriter(client), r: bufio.NewReader(client)}
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := server.Read(buf)
		got <- buf[:n]
		server.Write([]byte("+OK\r\n$-1\r\n$5\r\nhello\r\n:42\r\n-ERR nope\r\n*2\r\n$1\r\na\r\n:1\r\n*-1\r\n"))
	}()
	c.SendStrings("SET", "k", "v")
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if w := <-got; !bytes.Equal(w, []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")) {
		t.Fatalf("wrote %q", w)
	}
	check := func(kind byte, isNil bool, bulk string, n int64, wantErr bool) {
		t.Helper()
		r, err := c.Read()
		if (err != nil) != wantErr || (wantErr && !errors.Is(err, ErrServer)) {
			t.Fatalf("err %v", err)
		}
		if r.Kind != kind || r.Nil != isNil || string(r.Bulk) != bulk || r.Int != n {
			t.Fatalf("reply %+v, want %c nil=%v %q %d", r, kind, isNil, bulk, n)
		}
	}
	check('+', false, "OK", 0, false)
	check('$', true, "", 0, false)
	check('$', false, "hello", 0, false)
	check(':', false, "", 42, false)
	check('-', false, "ERR nope", 0, true)
	check('*', false, "", 2, false)
	check('*', true, "", 0, false)
}

func TestSplitLines(t *testing.T) {
	got := splitLines("# Memory\r\nused_memory:10\r\nx:1")
	if len(got) != 3 || got[1] != "used_memory:10" || got[2] != "x:1" {
		t.Errorf("%q", got)
	}
}
