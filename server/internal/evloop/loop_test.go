//go:build linux

package evloop_test

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/cachee/cachee/server/internal/evloop"
)

type echo struct {
	l   *evloop.Loop
	got chan string
}

// Event answers what it reads with the same bytes, and reports them.
func (e *echo) Event(fd int, events uint32) {
	buf := make([]byte, 64)
	n, err := evloop.Read(fd, buf)
	if n <= 0 {
		if err != evloop.EAGAIN {
			e.l.Remove(fd)
			evloop.Close(fd)
			e.got <- "closed"
		}
		return
	}
	evloop.Write(fd, buf[:n])
	e.got <- string(buf[:n])
}

// TestLoop: a socket handed to the loop is served from it; posted work runs on it in
// order; Stop ends Run; Post after the end is refused.
func TestLoop(t *testing.T) {
	l, err := evloop.New()
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- l.Run() }()
	loopEnd, goEnd, err := evloop.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(goEnd), "pair")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{l: l, got: make(chan string, 10)}
	var order []int
	l.Post(func() {
		if err := l.Add(loopEnd, evloop.In, e); err != nil {
			t.Error(err)
		}
	})
	for i := range 3 {
		l.Post(func() { order = append(order, i) })
	}
	c.Write([]byte("ping"))
	if got := <-e.got; got != "ping" {
		t.Fatalf("the loop read %q", got)
	}
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	c.Close()
	if got := <-e.got; got != "closed" {
		t.Fatalf("after the peer closed: %q", got)
	}
	done := make(chan struct{})
	l.Post(func() { close(done) })
	<-done
	if len(order) != 3 || order[0] != 0 || order[2] != 2 {
		t.Fatalf("posted work ran as %v", order)
	}
	l.Stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	<-l.Done()
	if l.Post(func() {}) {
		t.Fatal("Post after the loop stopped was accepted")
	}
}
