package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A prototype of the fast path, to measure what it would buy before building it: an
// HTTP/2 server that answers grpc.health.v1 Check on the goroutine (or thread) that
// read the request, with one read and one write per batch of frames, and nothing
// else. It does not do what a server must (flow control beyond the connection
// window, CONTINUATION, limits, errors): it exists to time the design's floor.

// protoConn is one connection's protocol state, fed bytes as they arrive.
type protoConn struct {
	in      []byte
	out     outBuf
	rd      sliceReader
	fr      *http2.Framer
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
	preface bool
	bodies  map[uint32][]byte
	unacked uint32
	answer  []byte // the encoded Check response, with its 5-byte gRPC prefix
}

type outBuf struct{ b []byte }

func (o *outBuf) Write(p []byte) (int, error) { o.b = append(o.b, p...); return len(p), nil }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func newProtoConn() *protoConn {
	c := &protoConn{bodies: map[uint32][]byte{}}
	c.fr = http2.NewFramer(&c.out, &c.rd)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	msg, _ := proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	c.answer = append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384},
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1024})
	return c
}

var errProto = errors.New("prototype: unexpected input")

// feed takes bytes read from the socket; what to write back accumulates in c.out.
func (c *protoConn) feed(p []byte) error {
	c.in = append(c.in, p...)
	if !c.preface {
		if len(c.in) < len(http2.ClientPreface) {
			return nil
		}
		if string(c.in[:len(http2.ClientPreface)]) != http2.ClientPreface {
			return errProto
		}
		c.in = c.in[len(http2.ClientPreface):]
		c.preface = true
	}
	for len(c.in) >= 9 {
		n := int(c.in[0])<<16 | int(c.in[1])<<8 | int(c.in[2])
		if len(c.in) < 9+n {
			break
		}
		c.rd.b = c.in[:9+n]
		f, err := c.fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("%w: %v", errProto, err)
		}
		c.in = c.in[9+n:]
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			c.bodies[f.StreamID] = nil
			if f.StreamEnded() {
				c.respond(f.StreamID)
			}
		case *http2.DataFrame:
			c.bodies[f.StreamID] = append(c.bodies[f.StreamID], f.Data()...)
			c.unacked += f.Length
			if f.StreamEnded() {
				c.respond(f.StreamID)
			}
		case *http2.RSTStreamFrame:
			delete(c.bodies, f.StreamID)
		case *http2.GoAwayFrame:
			return io.EOF
		}
	}
	if c.unacked > 32<<10 {
		c.fr.WriteWindowUpdate(0, c.unacked)
		c.unacked = 0
	}
	c.in = append(c.in[:0], c.in...)
	return nil
}

func (c *protoConn) respond(id uint32) {
	delete(c.bodies, id)
	c.hbuf.Reset()
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	c.fr.WriteData(id, false, c.answer)
	c.hbuf.Reset()
	c.enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "0"})
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true, EndStream: true})
}

// serveProtoGoroutines serves each connection from a goroutine of its own: a blocking
// read through Go's netpoller, the frames handled in place, one write.
func serveProtoGoroutines(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer nc.Close()
			c := newProtoConn()
			buf := make([]byte, 32<<10)
			for {
				if len(c.out.b) > 0 {
					if _, err := nc.Write(c.out.b); err != nil {
						return
					}
					c.out.b = c.out.b[:0]
				}
				n, err := nc.Read(buf)
				if err != nil {
					return
				}
				if c.feed(buf[:n]) != nil {
					return
				}
			}
		}()
	}
}

// serveProtoEpoll serves every connection from one thread that waits in epoll_wait
// and reads and writes with raw system calls, as cachee's RESP event loop does.
func serveProtoEpoll(ln net.Listener) error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	conns := map[int32]*protoConn{}
	go func() {
		runtime.LockOSThread()
		events := make([]unix.EpollEvent, 64)
		buf := make([]byte, 32<<10)
		for {
			n, err := unix.EpollWait(epfd, events, -1)
			if err != nil {
				continue
			}
			for _, ev := range events[:n] {
				mu.Lock()
				c := conns[ev.Fd]
				mu.Unlock()
				fd := int(ev.Fd)
				m, err := unix.Read(fd, buf)
				if m <= 0 && err != unix.EAGAIN {
					unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, fd, nil)
					unix.Close(fd)
					continue
				}
				if m > 0 && c.feed(buf[:m]) != nil {
					unix.Close(fd)
					continue
				}
				if len(c.out.b) > 0 {
					unix.Write(fd, c.out.b) // small answers: the socket buffer takes them whole
					c.out.b = c.out.b[:0]
				}
			}
		}
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		raw, err := nc.(*net.UnixConn).SyscallConn()
		if err != nil {
			return err
		}
		fd := -1
		raw.Control(func(f uintptr) { fd, _ = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) })
		nc.Close()
		c := newProtoConn()
		unix.Write(fd, c.out.b)
		c.out.b = c.out.b[:0]
		mu.Lock()
		conns[int32(fd)] = c
		mu.Unlock()
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return err
		}
	}
}
