package server

import (
	"context"
	"io"
	"net"
	"sync"
)

// ConnHandler serves the connections that are not gRPC: the RESP (Redis protocol)
// shim. The server calls ServeConn for each such connection and Shutdown once, when it
// drains.
type ConnHandler interface {
	// ServeConn takes c over. peeked holds the bytes the server already read from c
	// while telling the protocols apart, which the handler must treat as the start of
	// the stream. From the call on, c is the handler's: it closes c, whether it serves c
	// until c ends or hands it to other goroutines (an event loop) and returns at once.
	// The server never touches c again.
	ServeConn(c net.Conn, peeked []byte)
	// Shutdown drains: it refuses connections passed to ServeConn from then on, lets
	// those it serves finish what they sent and write the replies, and closes them. When
	// ctx ends first it closes what is left and returns ctx's error. Every connection it
	// was given is closed, and every ServeConn has returned, when Shutdown returns.
	Shutdown(ctx context.Context) error
}

// h2Preface opens every HTTP/2 connection, and so every gRPC one (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffResult is what the first bytes of a connection say.
type sniffResult int

const (
	sniffMore  sniffResult = iota // a strict prefix of the preface: read on
	sniffHTTP2                    // the whole preface
	sniffOther                    // departs from the preface: not HTTP/2
)

// classify tells from the first bytes of a connection whether it is HTTP/2.
func classify(b []byte) sniffResult {
	n := min(len(b), len(h2Preface))
	if string(b[:n]) != h2Preface[:n] {
		return sniffOther
	}
	if n == len(h2Preface) {
		return sniffHTTP2
	}
	return sniffMore
}

// sniff reads from r until the bytes either complete the HTTP/2 preface or depart
// from it, and never past the preface, so nothing beyond what identifies the
// protocol is consumed. buf must hold len(h2Preface) bytes. It returns the bytes read.
// A RESP client's first byte ('*', or a letter of an inline command) already departs,
// so a RESP client is never made to wait for more than it sent.
func sniff(r io.Reader, buf []byte) (n int, http2 bool, err error) {
	buf = buf[:len(h2Preface)]
	for {
		m, err := r.Read(buf[n:])
		n += m
		switch classify(buf[:n]) {
		case sniffHTTP2:
			return n, true, nil
		case sniffOther:
			return n, false, nil
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, false, err
		}
	}
}

// replayConn gives back the bytes sniff consumed before reading on from the socket.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connListener is the net.Listener that grpc.Server serves: it yields the connections
// that sniffing found to be HTTP/2, from every real listener.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// push hands c to Accept; false means the listener is closed and c is the caller's.
func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
