//go:build linux

// Package evloop is an event loop over epoll: one goroutine, on a thread of its own,
// waits for the sockets it was given and runs their handlers, which read and write
// them with non-blocking system calls. A request served this way costs one read and
// one write on the thread that waited, where a goroutine per connection also costs
// the scheduler's work of parking and waking a goroutine per request, and grpc-go
// three goroutines per call. The RESP shim (server/resp) and the gRPC fast path each
// run their connections on loops of it.
package evloop

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Events epoll reports, as Handler.Event receives them and Add and Watch take them.
const (
	In    = unix.EPOLLIN
	Out   = unix.EPOLLOUT
	Err   = unix.EPOLLERR
	Hup   = unix.EPOLLHUP
	RdHup = unix.EPOLLRDHUP
)

// Handler is what the loop runs for a socket.
type Handler interface {
	// Event runs on the loop's goroutine when epoll reports events for fd.
	Event(fd int, events uint32)
}

// ErrStopped is returned for work given to a loop that has stopped.
var ErrStopped = errors.New("evloop: stopped")

// Loop is one event loop.
type Loop struct {
	epfd int
	efd  int // eventfd: wakes the loop for posted work

	handlers map[int32]Handler // by fd; the loop's goroutine only

	mu      sync.Mutex
	posted  []func()
	stop    bool
	stopped bool
	done    chan struct{}
}

// New returns a loop; Run runs it.
func New() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	return &Loop{epfd: epfd, efd: efd, handlers: make(map[int32]Handler), done: make(chan struct{})}, nil
}

// Post runs fn on the loop's goroutine, soon, in the order posted; any goroutine may
// call it. It reports false, and fn never runs, once the loop has stopped.
func (l *Loop) Post(fn func()) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.posted = append(l.posted, fn)
	first := len(l.posted) == 1
	l.mu.Unlock()
	if first {
		l.wake()
	}
	return true
}

// Stop makes Run return once the work posted before it has run; any goroutine may
// call it. Sockets still registered are left to their owners to close.
func (l *Loop) Stop() {
	l.mu.Lock()
	l.stop = true
	l.mu.Unlock()
	l.wake()
}

// Done is closed when Run has returned.
func (l *Loop) Done() <-chan struct{} { return l.done }

func (l *Loop) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(l.efd, one[:])
}

// Add starts watching fd for events on behalf of h. The loop's goroutine only.
func (l *Loop) Add(fd int, events uint32, h Handler) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	l.handlers[int32(fd)] = h
	return nil
}

// Watch changes the events watched for fd. The loop's goroutine only.
func (l *Loop) Watch(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// Remove stops watching fd; it does not close it. The loop's goroutine only.
func (l *Loop) Remove(fd int) {
	if _, ok := l.handlers[int32(fd)]; !ok {
		return
	}
	delete(l.handlers, int32(fd))
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Run runs the loop until Stop, or until epoll fails; it returns that error.
func (l *Loop) Run() error {
	defer close(l.done)
	// The loop keeps its thread, as Redis's main thread is its own: measured with
	// bench/resp on 2 CPUs, it lowered the server's CPU per unpipelined request by a
	// few percent (fewer thread switches around the blocking epoll_wait).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.close()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := l.wait(events)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		woken := false
		for _, ev := range events[:n] {
			if int(ev.Fd) == l.efd {
				woken = true
				continue
			}
			// A handler earlier in this batch may have removed this fd (and its
			// number been reused): the map says who, if anyone, owns it now.
			if h := l.handlers[ev.Fd]; h != nil {
				h.Event(int(ev.Fd), ev.Events)
			}
		}
		if woken {
			var buf [8]byte
			_, _ = unix.Read(l.efd, buf[:])
			l.mu.Lock()
			posted, stop := l.posted, l.stop
			l.posted = nil
			l.mu.Unlock()
			for _, fn := range posted {
				fn()
			}
			if stop {
				return nil
			}
		}
	}
}

func (l *Loop) close() {
	l.mu.Lock()
	l.stopped = true
	l.posted = nil
	l.mu.Unlock()
	unix.Close(l.epfd)
	unix.Close(l.efd)
}

// wait waits for events. It first polls without a timeout, with a raw system call the
// scheduler does not hear of (cheaper when events are ready, as under load), and only
// then makes the blocking call the scheduler knows of.
func (l *Loop) wait(events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e == 0 && n > 0 {
		return int(n), nil
	}
	return unix.EpollWait(l.epfd, events, -1)
}

// Read reads from a non-blocking socket with a raw system call: it never blocks, so
// telling the scheduler (which costs more than a small read) is not needed.
func Read(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// Write writes to a non-blocking socket with a raw system call.
func Write(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }

// ShutdownWrite ends what is written to a socket: the peer reads the end of the stream
// after what was written before.
func ShutdownWrite(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) }

// EAGAIN and EINTR are the errors Read and Write return that are not failures.
var (
	EAGAIN error = unix.EAGAIN
	EINTR  error = unix.EINTR
)

// Take takes a socket over from Go's netpoller for a loop: it returns a duplicate of
// c's descriptor (which shares its O_NONBLOCK) and closes c, which only takes the
// original descriptor out of the poller. It reports false, leaving c alone, when c is
// not a TCP or Unix socket.
func Take(c net.Conn) (int, bool) {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return -1, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(f uintptr) {
		fd, dupErr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || dupErr != nil {
		return -1, false
	}
	c.Close()
	return fd, true
}

// Socketpair returns two connected Unix stream sockets, the first non-blocking for a
// loop, the second for Go's netpoller (wrap it with net.FileConn).
func Socketpair() (loopEnd, goEnd int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return -1, -1, err
	}
	return fds[0], fds[1], nil
}
