//go:build linux

package resp

import (
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An event loop serves many connections from one goroutine, as Redis does: epoll says
// which sockets are readable, the loop reads each once, runs every complete request in
// what it read, and writes all their replies with one write. Against a goroutine per
// connection this saves the scheduler's work of parking and waking a goroutine for every
// request, which is most of the cost of a small request (see bench/resp for the
// numbers). Sockets are level-triggered. Replies the socket does not take at once wait
// in the connection's buffer while the loop goes on reading and running requests, as
// Redis does; past Config.MaxOutput the connection is closed (see Config.MaxOutput).

type loop struct {
	srv  *Server
	epfd int
	efd  int // eventfd: wakes the loop for new connections and shutdown

	mu      sync.Mutex
	conns   map[int32]*loopConn
	adds    []*loopConn
	sweep   bool        // look for idle connections (Config.IdleTimeout)
	resumed []*loopConn // parked connections whose L2 call has finished
	stop    bool        // shutdown asked
	stopped bool        // the loop has exited: add closes at once
	drains  bool        // drain asked

	draining  bool   // the loop's copy of drains: close connections as they go quiet
	lingering int    // connections lingering (see settle)
	sink      []byte // what lingering connections send, dropped

	now int64 // unix nanos, read once per wakeup (for CLIENT LIST's idle=)

	// Buffers of connections with nothing pending go back here, so that an idle
	// connection holds none: only the loop goroutine touches these.
	freeIn, freeOut [][]byte
}

// lend gives an idle connection buffers for the work ahead.
func (l *loop) lend(cl *client) {
	if cl.in == nil {
		if n := len(l.freeIn); n > 0 {
			cl.in, l.freeIn = l.freeIn[n-1], l.freeIn[:n-1]
		}
	}
	if cl.w.b == nil {
		if n := len(l.freeOut); n > 0 {
			cl.w.b, l.freeOut = l.freeOut[n-1], l.freeOut[:n-1]
		}
	}
}

// reclaim takes back the buffers of a connection that has nothing pending.
func (l *loop) reclaim(lc *loopConn) {
	cl := lc.cl
	if cl.ri == cl.wi && cl.in != nil {
		if len(cl.in) == readChunk && len(l.freeIn) < maxFree {
			l.freeIn = append(l.freeIn, cl.in)
		}
		cl.in, cl.ri, cl.wi = nil, 0, 0
	}
	if len(cl.w.b) == 0 && cl.w.b != nil {
		if cap(cl.w.b) <= keepBuf && len(l.freeOut) < maxFree {
			l.freeOut = append(l.freeOut, cl.w.b[:0])
		}
		cl.w.b = nil
		lc.out = 0
	}
}

// maxFree bounds the buffers a loop keeps for reuse. They are not charged to
// Config.Memory, so they are few: a loop serves one connection at a time and lends
// buffers only while that connection has something pending.
const maxFree = 32

type loopConn struct {
	cl     *client
	fd     int
	out    int    // bytes of cl.w.b already written
	events uint32 // what epoll watches for
	parked bool   // waiting for an L2 call (cl.pending); see park
	closed bool
	// lingering: the server drains and has closed its sending side; what the client
	// still sends is read and dropped until it closes or goes quiet (see settle).
	lingering  bool
	lingerTill int64 // unix nanos: closed if nothing arrives before
}

func newLoop(s *Server) (*loop, error) {
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
	return &loop{srv: s, epfd: epfd, efd: efd, conns: make(map[int32]*loopConn)}, nil
}

// startLoops starts the event loops on first use. Caller holds s.mu.
func (s *Server) startLoops() {
	if s.loops != nil || s.closed {
		return
	}
	n := s.numLoops()
	for range n {
		l, err := newLoop(s)
		if err != nil {
			s.log.Warn("resp: event loop unavailable; serving connections from goroutines", "err", err)
			for _, l := range s.loops {
				l.shutdown()
			}
			s.loops = []*loop{}
			return
		}
		s.loops = append(s.loops, l)
		s.wg.Add(1)
		go l.run()
	}
}

// serveInLoop takes c's socket over into an event loop. It reports false, leaving c
// alone, when c is not a socket the loop can serve.
func (s *Server) serveInLoop(cl *client, c net.Conn) bool {
	var raw rawConn
	switch c := c.(type) {
	case *net.TCPConn:
		r, err := c.SyscallConn()
		if err != nil {
			return false
		}
		raw = r
	case *net.UnixConn:
		r, err := c.SyscallConn()
		if err != nil {
			return false
		}
		raw = r
	default:
		return false
	}
	s.mu.Lock()
	s.startLoops()
	loops := s.loops
	s.mu.Unlock()
	if len(loops) == 0 {
		return false
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(f uintptr) {
		fd, dupErr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || dupErr != nil {
		return false
	}
	// The duplicate shares the socket (and its O_NONBLOCK); closing c only takes the
	// original descriptor out of Go's poller.
	c.Close()
	l := loops[int(s.nextLoop.Add(1))%len(loops)]
	cl.mu.Lock() // CLIENT LIST on another connection reads it (the client is listed already)
	cl.fd = fd
	cl.mu.Unlock()
	s.mu.Lock()
	cl.kill, cl.wake = nil, nil // the loop closes and drains its connections itself
	s.mu.Unlock()
	l.add(&loopConn{cl: cl, fd: fd})
	return true
}

type rawConn interface {
	Control(func(fd uintptr)) error
}

func (l *loop) add(lc *loopConn) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		unix.Close(lc.fd)
		l.srv.release(lc.cl)
		return
	}
	l.adds = append(l.adds, lc)
	l.mu.Unlock()
	l.wake()
}

func (l *loop) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(l.efd, one[:])
}

func (l *loop) shutdown() {
	l.mu.Lock()
	l.stop = true
	l.mu.Unlock()
	l.wake()
}

// drain asks the loop to close each of its connections once it goes quiet (settle).
func (l *loop) drain() {
	l.mu.Lock()
	l.drains = true
	l.mu.Unlock()
	l.wake()
}

func (l *loop) run() {
	defer l.srv.wg.Done()
	// The loop keeps its thread, as Redis's main thread is its own: measured with
	// bench/resp on 2 CPUs, it lowered the server's CPU per unpipelined request by
	// a few percent (fewer thread switches around the blocking epoll_wait).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]unix.EpollEvent, 256)
	ready := make([]*loopConn, 0, 256)
	for {
		timeout := -1
		if l.lingering > 0 {
			timeout = int(lingerCheck / time.Millisecond)
		}
		n, err := l.wait(events, timeout)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			l.srv.log.Error("resp: epoll_wait failed; closing the loop's connections", "err", err)
			l.exit()
			return
		}
		l.now = time.Now().UnixNano()
		ready = ready[:0]
		woken := false
		l.mu.Lock()
		for i := range n {
			fd := events[i].Fd
			if int(fd) == l.efd {
				woken = true
				ready = append(ready, nil)
				continue
			}
			ready = append(ready, l.conns[fd])
		}
		l.mu.Unlock()
		for i, lc := range ready {
			if lc != nil {
				l.serve(lc, events[i].Events)
			}
		}
		if l.lingering > 0 {
			l.closeQuiet()
		}
		if woken {
			var buf [8]byte
			_, _ = unix.Read(l.efd, buf[:])
			l.mu.Lock()
			adds, resumed, stop, sweep := l.adds, l.resumed, l.stop, l.sweep
			l.adds, l.resumed, l.sweep = nil, nil, false
			var quiet []*loopConn
			if l.drains && !l.draining {
				l.draining = true
				for _, lc := range l.conns {
					quiet = append(quiet, lc)
				}
			}
			l.mu.Unlock()
			for _, lc := range quiet {
				l.settle(lc)
			}
			for _, lc := range adds {
				l.register(lc)
			}
			for _, lc := range resumed {
				l.unpark(lc)
			}
			if sweep {
				l.closeIdle()
			}
			if stop {
				l.exit()
				return
			}
		}
	}
}

// register starts watching a new connection and runs what it already holds.
func (l *loop) register(lc *loopConn) {
	lc.events = unix.EPOLLIN | unix.EPOLLRDHUP
	ev := unix.EpollEvent{Events: lc.events, Fd: int32(lc.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, lc.fd, &ev); err != nil {
		unix.Close(lc.fd)
		l.srv.release(lc.cl)
		return
	}
	l.mu.Lock()
	l.conns[int32(lc.fd)] = lc
	l.mu.Unlock()
	if lc.cl.wi > lc.cl.ri {
		l.run1(lc)
	} else {
		l.reclaim(lc)
		l.settle(lc)
	}
}

// exit closes every connection of the loop and the loop itself.
func (l *loop) exit() {
	l.mu.Lock()
	l.stopped = true
	conns := l.conns
	l.conns = map[int32]*loopConn{}
	adds := l.adds
	l.adds = nil
	l.mu.Unlock()
	for _, lc := range conns {
		lc.closed = true
		unix.Close(lc.fd)
		l.srv.release(lc.cl)
	}
	for _, lc := range adds {
		unix.Close(lc.fd)
		l.srv.release(lc.cl)
	}
	unix.Close(l.epfd)
	unix.Close(l.efd)
}

func (l *loop) close(lc *loopConn) {
	if lc.lingering {
		lc.lingering = false
		l.lingering--
	}
	lc.closed = true
	l.mu.Lock()
	delete(l.conns, int32(lc.fd))
	l.mu.Unlock()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, lc.fd, nil)
	unix.Close(lc.fd)
	l.srv.release(lc.cl)
}

// serve handles one readiness event: write what waits, read once, run what was read.
func (l *loop) serve(lc *loopConn, events uint32) {
	if lc.lingering {
		l.discard(lc)
		return
	}
	cl := lc.cl
	if lc.out < len(cl.w.b) && !l.flush(lc) {
		return
	}
	if lc.parked {
		// Waiting for L2: nothing is read or run until the answer comes (see park),
		// but replies already made keep draining, and a dead socket is closed now.
		if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.close(lc)
			return
		}
		l.watch(lc, l.parkedEvents(lc))
		return
	}
	l.lend(cl)
	if events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 && !lc.full(l.srv) && !cl.closing {
		if !cl.makeRoom() {
			l.close(lc)
			return
		}
		n, err := rawRead(lc.fd, cl.in[cl.wi:])
		if n <= 0 {
			if err != unix.EAGAIN && err != unix.EINTR {
				l.close(lc)
				return
			}
		} else {
			cl.wi += n
			l.srv.netIn.Add(int64(n))
			cl.touch(l.now)
		}
	}
	l.run1(lc)
}

// full reports whether more replies wait than the client may leave unread.
func (lc *loopConn) full(s *Server) bool { return len(lc.cl.w.b)-lc.out > s.cfg.MaxOutput }

// run1 runs the connection's complete requests and writes their replies, then sets
// what the loop waits for on the socket.
func (l *loop) run1(lc *loopConn) {
	cl := lc.cl
	for {
		cl.w.max = l.srv.cfg.MaxOutput + lc.out
		more := cl.process()
		if !l.flush(lc) {
			return
		}
		if lc.full(l.srv) {
			// More replies wait than the client may leave unread: it is not reading
			// them (a pipeline sent without reading, a stalled consumer).
			cl.dropped(limitOutput)
			l.close(lc)
			return
		}
		if cl.pending != nil {
			l.park(lc)
			return
		}
		if !more {
			break
		}
	}
	pending := lc.out < len(cl.w.b)
	if cl.closing && !pending {
		l.close(lc)
		return
	}
	want := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	switch {
	case pending && cl.closing:
		want = unix.EPOLLOUT
	case pending:
		want |= unix.EPOLLOUT
	}
	if !l.watch(lc, want) {
		return
	}
	l.reclaim(lc)
	if !cl.account() {
		cl.dropped(limitMemory)
		l.close(lc)
		return
	}
	l.settle(lc)
}

// While the server drains (Server.Shutdown), a connection is served as usual until it
// goes quiet: no request half-received or arrived unread, none parked on L2, every
// reply written. Then the loop closes the sending side, so the client reads all its
// replies and then the end of the stream, and lingers: it reads and drops what the
// client still sends until the client closes, or sends nothing for lingerQuiet. Closing
// with unread input, or input arriving after the close, would make the kernel reset the
// connection, and the client could lose replies it had not read yet. Shutdown's
// context bounds the whole drain.

// settle closes lc's sending side if the server drains and lc is quiet.
func (l *loop) settle(lc *loopConn) {
	cl := lc.cl
	if !l.draining || lc.closed || lc.lingering || lc.parked || cl.closing ||
		lc.out < len(cl.w.b) || cl.ri < cl.wi {
		return
	}
	n, err := peekInput(lc.fd)
	for err == unix.EINTR {
		n, err = peekInput(lc.fd)
	}
	switch {
	case n > 0:
		return // epoll reports it readable: serve reads and runs it
	case err != unix.EAGAIN:
		l.close(lc) // the client closed, or the socket failed: nothing to wait for
		return
	}
	if unix.Shutdown(lc.fd, unix.SHUT_WR) != nil {
		l.close(lc)
		return
	}
	lc.lingering = true
	lc.lingerTill = time.Now().Add(lingerQuiet).UnixNano()
	l.lingering++
	l.watch(lc, unix.EPOLLIN|unix.EPOLLRDHUP)
}

// closeQuiet closes the lingering connections that have sent nothing for lingerQuiet.
func (l *loop) closeQuiet() {
	l.mu.Lock()
	var quiet []*loopConn
	for _, lc := range l.conns {
		if lc.lingering && l.now > lc.lingerTill {
			quiet = append(quiet, lc)
		}
	}
	l.mu.Unlock()
	for _, lc := range quiet {
		l.close(lc)
	}
}

// discard reads and drops what a lingering connection sends, and closes it at the end
// of the stream.
func (l *loop) discard(lc *loopConn) {
	if l.sink == nil {
		l.sink = make([]byte, readChunk)
	}
	for range 16 { // then let the other connections have a turn
		n, err := rawRead(lc.fd, l.sink)
		if n > 0 {
			lc.lingerTill = l.now + int64(lingerQuiet)
			continue
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			l.close(lc)
		}
		return
	}
}

// watch sets what epoll reports for lc; false means lc failed and was closed.
func (l *loop) watch(lc *loopConn, want uint32) bool {
	if want != lc.events {
		lc.events = want
		ev := unix.EpollEvent{Events: want, Fd: int32(lc.fd)}
		if unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, lc.fd, &ev) != nil {
			l.close(lc)
			return false
		}
	}
	return true
}

// A command that needs L2 (a read-through of a miss, a write-through) must not block
// the loop, which serves every other connection too: the command sets cl.pending and
// returns, and the loop parks the connection. Its L2 call runs on another goroutine;
// when it finishes it queues the connection on the loop and wakes it, and the loop
// writes the reply and goes on with the requests that arrived meanwhile, in order.
// While parked, the connection is not read (so requests after the parked one wait
// their turn, as Redis makes them wait behind a blocked command) and epoll reports only
// what is needed to drain earlier replies and notice a dead socket.

// park stops serving lc until its pending L2 call finishes, and starts that call.
func (l *loop) park(lc *loopConn) {
	lc.parked = true
	if !l.watch(lc, l.parkedEvents(lc)) {
		return
	}
	// Start first: the call copies its arguments out of the read buffer, which
	// reclaim may then lend to another connection.
	lc.cl.pending.start(func() { l.resume(lc) })
	l.reclaim(lc)
	if !lc.cl.account() {
		lc.cl.dropped(limitMemory)
		l.close(lc)
	}
}

// closeIdle closes the connections that have sent nothing for Config.IdleTimeout.
func (l *loop) closeIdle() {
	l.mu.Lock()
	var idle []*loopConn
	for _, lc := range l.conns {
		if !lc.parked && lc.cl.idleFor(l.now) { // waiting on L2 is not idleness (Redis exempts blocked clients)
			idle = append(idle, lc)
		}
	}
	l.mu.Unlock()
	for _, lc := range idle {
		lc.cl.dropped(limitIdle)
		l.close(lc)
	}
}

// requestSweep asks the loop to close its idle connections.
func (l *loop) requestSweep() {
	l.mu.Lock()
	l.sweep = true
	l.mu.Unlock()
	l.wake()
}

// parkedEvents is what a parked connection waits for: room to write replies made
// before it parked, if any; otherwise nothing (errors and hangups are always reported).
func (l *loop) parkedEvents(lc *loopConn) uint32 {
	if lc.out < len(lc.cl.w.b) {
		return unix.EPOLLOUT
	}
	return 0
}

// resume queues a parked connection whose L2 call finished; any goroutine may call it.
func (l *loop) resume(lc *loopConn) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.resumed = append(l.resumed, lc)
	l.mu.Unlock()
	l.wake()
}

// unpark writes the reply of lc's finished L2 call and serves what waited behind it.
func (l *loop) unpark(lc *loopConn) {
	if lc.closed {
		return
	}
	cl := lc.cl
	op := cl.pending
	cl.pending = nil
	lc.parked = false
	l.lend(cl)
	op.finish()
	l.run1(lc)
}

// flush writes what it can of the pending replies without blocking. It reports false
// if the connection failed and was closed.
func (l *loop) flush(lc *loopConn) bool {
	cl := lc.cl
	for lc.out < len(cl.w.b) {
		n, err := rawWrite(lc.fd, cl.w.b[lc.out:])
		if n > 0 {
			lc.out += n
			l.srv.netOut.Add(int64(n))
			cl.touch(l.now) // a client reading its replies is not idle
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			// Keep the rest; drop what was written once it is most of the buffer.
			if lc.out > len(cl.w.b)/2 {
				cl.w.b = cl.w.b[:copy(cl.w.b, cl.w.b[lc.out:])]
				lc.out = 0
			}
			return true
		}
		l.close(lc)
		return false
	}
	cl.w.b = cl.w.b[:0]
	lc.out = 0
	if cap(cl.w.b) > keepBuf {
		cl.w.b = nil
	}
	return true
}

// The loop's sockets are non-blocking, so reading and writing them never blocks the
// thread: they are made as raw system calls, without telling the scheduler (which
// costs more than a small read). Waiting for events does block, so it first polls
// without a timeout and only then makes the blocking call the scheduler knows of.

func rawRead(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// peekInput reports whether input waits on the socket fd, without reading it or
// waiting: more than 0 when some does, 0 at the end of the stream, and EAGAIN when
// nothing has arrived.
func peekInput(fd int) (int, error) {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func (l *loop) wait(events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e == 0 && n > 0 {
		return int(n), nil
	}
	return unix.EpollWait(l.epfd, events, msec)
}
