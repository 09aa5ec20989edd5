package cachee

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sockPair is a sockConn and the net.Conn at the other end of its socket.
func sockPair(t *testing.T) (*sockConn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	evt, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[1]), "peer")
	peer, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := newSockConn(fds[0], evt, "pair")
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

// within runs f, and fails unless it returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %v", what, d)
	}
}

func TestSockConnReadsAndWrites(t *testing.T) {
	c, peer := sockPair(t)
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	if n, err := c.Read(b); err != nil || string(b[:n]) != "ping" {
		t.Fatalf("Read: %q %v", b[:n], err)
	}
	// More than the socket buffer holds: Write waits for room as the peer reads.
	big := bytes.Repeat([]byte("0123456789abcdef"), 512<<10) // 8 MiB
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		got <- b
	}()
	if n, err := c.Write(big); err != nil || n != len(big) {
		t.Fatalf("Write: %d %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not what was written", len(b))
	}
	// A read and a write of a call allocate nothing.
	msg := []byte("call")
	if a := testing.AllocsPerRun(100, func() {
		peer.Write(msg)
		c.Read(b)
		c.Write(msg)
		peer.Read(b)
	}); a != 0 {
		t.Errorf("%.1f allocations a round trip", a)
	}
}

func TestSockConnReadDeadline(t *testing.T) {
	c, _ := sockPair(t)
	b := make([]byte, 8)
	c.SetReadDeadline(aLongTimeAgo)
	_, err := c.Read(b)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a read past its deadline: %v", err)
	}
	// A deadline in the future ends a read that waits.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	// A deadline set while a read waits without one ends it: this is how h2conn
	// interrupts its reader.
	c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(b)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait in ppoll
	c.SetReadDeadline(aLongTimeAgo)
	within(t, 5*time.Second, "a read after its deadline was moved to the past", func() { err = <-errc })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("interrupted read: %v", err)
	}
	// A later deadline does not end a read early.
	c.SetReadDeadline(time.Now().Add(time.Hour))
	go func() {
		_, err := c.Read(b)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(2 * time.Hour))
	select {
	case err := <-errc:
		t.Fatalf("a read ended when its deadline moved later: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.SetReadDeadline(aLongTimeAgo)
	within(t, 5*time.Second, "the read", func() { <-errc })
}

func TestSockConnCloseEndsWaits(t *testing.T) {
	c, peer := sockPair(t)
	errs := make(chan error, 2)
	go func() {
		_, err := c.Read(make([]byte, 8))
		errs <- err
	}()
	go func() {
		// The peer reads nothing: this write fills the buffer and waits.
		_, err := c.Write(make([]byte, 64<<20))
		errs <- err
	}()
	time.Sleep(50 * time.Millisecond)
	within(t, 5*time.Second, "Close", func() { c.Close() })
	for range 2 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("a wait Close ended: %v, want net.ErrClosed", err)
		}
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a read after Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a second Close: %v", err)
	}
	peer.Close()
}

func TestSockConnPeerGone(t *testing.T) {
	c, peer := sockPair(t)
	peer.Close()
	if _, err := c.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("a read after the peer closed: %v, want EOF", err)
	}
	// An error, not a SIGPIPE.
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("a write after the peer closed succeeded")
	}
}

func TestDialSock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	if _, err := dialSock(context.Background(), "unix", path); err == nil || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("dialing a socket that does not exist: %v", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := dialSock(context.Background(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*sockConn); !ok {
		t.Fatalf("a Unix socket gave a %T", c)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.Write([]byte("hi"))
	b := make([]byte, 2)
	if _, err := io.ReadFull(s, b); err != nil || string(b) != "hi" {
		t.Fatalf("%q %v", b, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dialSock(ctx, "unix", path); !errors.Is(err, context.Canceled) {
		t.Fatalf("dialing with a cancelled context: %v", err)
	}
}
