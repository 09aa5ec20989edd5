package cachee

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux the Client's HTTP/2 connection to a Unix socket is a sockConn: a socket
// of its own that waits for its answers in ppoll, instead of a net.Conn, whose socket
// Go's netpoller watches.
//
// Measured on the bench VMs (docs/performance.md, "Where a Get's time goes on these VMs"),
// the netpoller costs a call one in flight two things. It registers every socket for
// writability too, so each request the sidecar reads wakes the client's poller thread
// for nothing (the kernel signals "room to write" to every waiter), and that wake-up
// is paid inside the sidecar's read. And the answer reaches the caller through that
// thread, which hands it on: from a goroutine locked to its thread, three thread
// wake-ups a call. A caller blocked in ppoll on POLLIN alone is woken once, by the
// answer, on its own thread. What Go's runtime does for any blocking system call
// applies: the caller's P is handed to another thread if other goroutines need it.
//
// sockConn serves h2conn, which has at most one Read and one Write at a time; its
// mutexes hold that anyway. Reads honour a deadline; writes have none, as h2conn
// sets none.
type sockConn struct {
	fd  int // non-blocking, close-on-exec
	evt int // eventfd that wakes a Read waiting in ppoll for a deadline moved earlier

	rmu, wmu sync.Mutex
	drained  bool // under rmu: the last read found the socket empty, or emptied it
	// closing, once set, fails every Read and Write; ops holds Close until those
	// in progress have left fd.
	closing atomic.Bool
	ops     sync.RWMutex

	rdl atomic.Int64 // read deadline, Unix ns; 0: none
	// waitDL is the deadline a Read waiting in ppoll computed its timeout from
	// (math.MaxInt64 for none), 0 when no Read waits: SetReadDeadline wakes a waiting
	// Read only when it moves the deadline earlier.
	waitDL atomic.Int64

	laddr, raddr net.Addr
}

// dialSock connects to a Unix socket, or, for any other network, dials a net.Conn.
func dialSock(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "unix" {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: &net.UnixAddr{Name: addr, Net: network}, Err: os.NewSyscallError("connect", err)}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, opErr(err)
	}
	// A Unix socket connects at once or fails (EAGAIN when the listener's backlog is
	// full), as net.Dial's does.
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: addr})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, opErr(err)
	}
	evt, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, opErr(err)
	}
	return newSockConn(fd, evt, addr), nil
}

func newSockConn(fd, evt int, addr string) *sockConn {
	return &sockConn{fd: fd, evt: evt, laddr: &net.UnixAddr{Net: "unix"}, raddr: &net.UnixAddr{Name: addr, Net: "unix"}}
}

// Read reads what the socket has, waiting for some until the read deadline.
func (c *sockConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.ops.RLock()
	defer c.ops.RUnlock()
	for {
		if c.closing.Load() {
			return 0, c.opError("read", net.ErrClosed)
		}
		dl := c.rdl.Load()
		if dl != 0 && time.Now().UnixNano() >= dl {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		if c.drained {
			// The last read took all there was: an answer comes later, so wait
			// before reading rather than make a read that finds nothing.
			c.drained = false
			if err := c.waitReadable(dl); err != nil {
				return 0, c.opError("read", err)
			}
			continue
		}
		n, err := unix.Read(c.fd, p)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			if c.closing.Load() { // Close shut the socket down
				return 0, c.opError("read", net.ErrClosed)
			}
			return 0, io.EOF
		case err == nil:
			c.drained = n < len(p)
			return n, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.drained = true
		default:
			return 0, c.opError("read", os.NewSyscallError("read", err))
		}
	}
}

// waitReadable waits in ppoll until the socket has something to read (or is shut
// down, by Close), the deadline dl (Unix ns, 0: none) passes, or SetReadDeadline
// wakes it. A nil error says to look again.
func (c *sockConn) waitReadable(dl int64) error {
	w := dl
	if w == 0 {
		w = math.MaxInt64
	}
	c.waitDL.Store(w)
	defer c.waitDL.Store(0)
	// A deadline set between the Load that gave dl and the Store above did not see
	// this Read waiting: look again instead of waiting.
	if c.rdl.Load() != dl || c.closing.Load() {
		return nil
	}
	var ts *unix.Timespec
	if dl != 0 {
		d := time.Duration(dl - time.Now().UnixNano())
		if d <= 0 {
			return nil // the caller reports the deadline
		}
		t := unix.NsecToTimespec(int64(d))
		ts = &t
	}
	fds := [2]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}, {Fd: int32(c.evt), Events: unix.POLLIN}}
	_, err := unix.Ppoll(fds[:], ts, nil)
	if err != nil && err != unix.EINTR {
		return os.NewSyscallError("ppoll", err)
	}
	if fds[1].Revents != 0 {
		var b [8]byte
		unix.Read(c.evt, b[:]) // back to 0: a later wake-up is a new one
	}
	return nil
}

// Write writes all of p, waiting in ppoll while the socket's buffer is full.
func (c *sockConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ops.RLock()
	defer c.ops.RUnlock()
	var done int
	for done < len(p) {
		if c.closing.Load() {
			return done, c.opError("write", net.ErrClosed)
		}
		// MSG_NOSIGNAL: a sidecar gone away is an error here, not a SIGPIPE.
		n, err := unix.SendmsgN(c.fd, p[done:], nil, nil, unix.MSG_NOSIGNAL)
		done += max(n, 0)
		switch err {
		case nil, unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			return done, c.opError("write", os.NewSyscallError("sendmsg", err))
		}
		// Only the socket: Close wakes this wait by shutting it down, and the eventfd,
		// which only a Read drains, would end every wait at once while it is set.
		fds := [1]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
		if _, err := unix.Ppoll(fds[:], nil, nil); err != nil && err != unix.EINTR {
			return done, c.opError("write", os.NewSyscallError("ppoll", err))
		}
	}
	return done, nil
}

// SetReadDeadline sets the deadline of Reads, the one waiting included.
func (c *sockConn) SetReadDeadline(t time.Time) error {
	var dl int64
	if !t.IsZero() {
		dl = max(t.UnixNano(), 1)
	}
	c.rdl.Store(dl)
	if w := c.waitDL.Load(); w != 0 && dl != 0 && dl < w {
		c.wake()
	}
	return nil
}

// wake ends a Read's ppoll in progress, or its next one.
func (c *sockConn) wake() {
	one := [8]byte{1}
	unix.Write(c.evt, one[:])
}

// Close ends the Read and Write in progress, if any, and closes the socket once
// they have returned.
func (c *sockConn) Close() error {
	if c.closing.Swap(true) {
		return c.opError("close", net.ErrClosed)
	}
	// shutdown wakes a Write waiting for room and a Read waiting for data, and a
	// wait that has not begun yet returns at once (a shut socket stays readable and
	// writable to poll). Neither fd is closed while an op may still use it, so that
	// neither number can be taken by another file first.
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	c.ops.Lock()
	defer c.ops.Unlock()
	unix.Close(c.evt)
	if err := unix.Close(c.fd); err != nil {
		return c.opError("close", os.NewSyscallError("close", err))
	}
	return nil
}

func (c *sockConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unix", Source: c.laddr, Addr: c.raddr, Err: err}
}

func (c *sockConn) LocalAddr() net.Addr  { return c.laddr }
func (c *sockConn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read deadline: writes have none (see sockConn).
func (c *sockConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

var errNoWriteDeadline = errors.New("cachee: the sidecar connection has no write deadline")

// SetWriteDeadline is not supported: h2conn sets no write deadline.
func (c *sockConn) SetWriteDeadline(time.Time) error {
	return c.opError("set", errNoWriteDeadline)
}
