// Package respc is a minimal pipelining RESP2 client for the benchmarks: it writes
// commands into a buffer and reads their replies in order, without allocating per
// command, so that filling a server with a million keys or replaying a trace of millions
// of accesses measures the server rather than a general-purpose client.
package respc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Conn is one connection. It is not safe for concurrent use.
type Conn struct {
	c       net.Conn
	w       *bufio.Writer
	r       *bufio.Reader
	pending int // commands written whose replies are not read yet
	num     []byte
}

// Dial connects to network ("tcp" or "unix") and address.
func Dial(network, addr string) (*Conn, error) {
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, w: bufio.NewWriterSize(c, 64<<10), r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Send buffers one command; Flush sends the buffer.
func (c *Conn) Send(args ...[]byte) error {
	c.header('*', len(args))
	for _, a := range args {
		c.header('$', len(a))
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
	c.pending++
	return nil
}

// SendStrings is Send for string arguments.
func (c *Conn) SendStrings(args ...string) error {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return c.Send(b...)
}

func (c *Conn) header(kind byte, n int) {
	c.w.WriteByte(kind)
	c.num = strconv.AppendInt(c.num[:0], int64(n), 10)
	c.w.Write(c.num)
	c.w.WriteString("\r\n")
}

// Flush writes the buffered commands.
func (c *Conn) Flush() error { return c.w.Flush() }

// Reply is one reply. Bulk is only valid until the next read.
type Reply struct {
	Kind byte   // '+', '-', ':', '$' or '*'
	Nil  bool   // a null bulk string or array
	Bulk []byte // the bulk string, or the text of a simple string or error
	Int  int64  // the integer, or the length of an array
}

// ErrServer is wrapped by the error Read returns for an error reply.
var ErrServer = errors.New("server error")

// Read reads the next reply. An error reply is returned as a Reply and as an error
// wrapping ErrServer. Arrays are read with their elements discarded (the benchmarks
// send no command that answers with one it needs).
func (c *Conn) Read() (Reply, error) {
	if c.pending > 0 {
		c.pending--
	}
	return c.read()
}

func (c *Conn) read() (Reply, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return Reply{}, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return Reply{}, fmt.Errorf("respc: bad reply line %q", line)
	}
	r := Reply{Kind: line[0]}
	body := line[1 : len(line)-2]
	switch r.Kind {
	case '+':
		r.Bulk = body
	case '-':
		r.Bulk = body
		return r, fmt.Errorf("%w: %s", ErrServer, body)
	case ':':
		r.Int, err = strconv.ParseInt(string(body), 10, 64)
	case '$':
		n, perr := strconv.Atoi(string(body))
		if perr != nil {
			return r, fmt.Errorf("respc: bad bulk length %q", body)
		}
		if n < 0 {
			r.Nil = true
			return r, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return r, err
		}
		r.Bulk = buf[:n]
	case '*':
		n, perr := strconv.Atoi(string(body))
		if perr != nil {
			return r, fmt.Errorf("respc: bad array length %q", body)
		}
		if n < 0 {
			r.Nil = true
			return r, nil
		}
		r.Int = int64(n)
		for range n {
			if _, err := c.read(); err != nil && !errors.Is(err, ErrServer) {
				return r, err
			}
		}
	default:
		return r, fmt.Errorf("respc: unknown reply type %q", line)
	}
	return r, err
}

// Do sends one command and reads its reply, after any replies still pending.
func (c *Conn) Do(args ...string) (Reply, error) {
	if err := c.SendStrings(args...); err != nil {
		return Reply{}, err
	}
	if err := c.Flush(); err != nil {
		return Reply{}, err
	}
	for c.pending > 1 {
		if _, err := c.Read(); err != nil && !errors.Is(err, ErrServer) {
			return Reply{}, err
		}
	}
	return c.Read()
}

// Info returns the fields of INFO section as a map.
func (c *Conn) Info(section string) (map[string]string, error) {
	r, err := c.Do("INFO", section)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range splitLines(string(r.Bulk)) {
		for i := 0; i < len(line); i++ {
			if line[i] == ':' {
				out[line[:i]] = line[i+1:]
				break
			}
		}
	}
	return out, nil
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			line := s[start:i]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			out = append(out, line)
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// Fill stores n keys named by key(i) with value, pipelining batch commands at a time,
// and checks every reply.
func (c *Conn) Fill(n, batch int, key func(dst []byte, i int) []byte, value []byte) error {
	set := []byte("SET")
	var k []byte
	for i := 0; i < n; {
		end := min(n, i+batch)
		for j := i; j < end; j++ {
			k = key(k[:0], j)
			c.Send(set, k, value)
		}
		if err := c.Flush(); err != nil {
			return err
		}
		for j := i; j < end; j++ {
			r, err := c.Read()
			if err != nil {
				return fmt.Errorf("SET #%d: %w", j, err)
			}
			if r.Kind != '+' {
				return fmt.Errorf("SET #%d: reply %q", j, r.Kind)
			}
		}
		i = end
	}
	return nil
}
