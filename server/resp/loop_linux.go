//go:build linux

package resp

import (
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cachee/cachee/server/internal/evloop"
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
	srv *Server
	ev  *evloop.Loop // epoll, the loop's thread, and work posted to it from elsewhere

	// The rest is the loop goroutine's alone.
	conns     map[int32]*loopConn
	draining  bool   // the server drains: close connections as they go quiet
	lingering int    // connections lingering (see settle)
	checking  bool   // a look for quiet lingering connections is due (see lingerCheck)
	sink      []byte // what lingering connections send, dropped

	now int64 // unix nanos, read once per event (for CLIENT LIST's idle=)

	// Buffers of connections with nothing pending go back here, so that an idle
	// connection holds none.
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
	l      *loop
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

// Event is what the loop runs when epoll reports events for lc's socket.
func (lc *loopConn) Event(_ int, events uint32) {
	lc.l.now = time.Now().UnixNano()
	lc.l.serve(lc, events)
}

func newLoop(s *Server) (*loop, error) {
	ev, err := evloop.New()
	if err != nil {
		return nil, err
	}
	return &loop{srv: s, ev: ev, conns: make(map[int32]*loopConn)}, nil
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
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
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
	fd, ok := evloop.Take(c)
	if !ok {
		return false
	}
	l := loops[int(s.nextLoop.Add(1))%len(loops)]
	cl.mu.Lock() // CLIENT LIST on another connection reads it (the client is listed already)
	cl.fd = fd
	cl.mu.Unlock()
	s.mu.Lock()
	cl.kill, cl.wake = nil, nil // the loop closes and drains its connections itself
	s.mu.Unlock()
	l.add(&loopConn{l: l, cl: cl, fd: fd})
	return true
}

// add hands a new connection to the loop; any goroutine may call it.
func (l *loop) add(lc *loopConn) {
	if !l.ev.Post(func() { l.register(lc) }) {
		unix.Close(lc.fd) // the loop has stopped
		l.srv.release(lc.cl)
	}
}

// shutdown closes the loop's connections and stops it.
func (l *loop) shutdown() {
	l.ev.Post(l.exit)
	l.ev.Stop()
}

// drain asks the loop to close each of its connections once it goes quiet (settle).
func (l *loop) drain() {
	l.ev.Post(func() {
		if l.draining {
			return
		}
		l.draining = true
		l.now = time.Now().UnixNano()
		for _, lc := range l.conns {
			l.settle(lc)
		}
	})
}

// run runs the loop until shutdown, or until epoll fails, which closes its
// connections.
func (l *loop) run() {
	defer l.srv.wg.Done()
	if err := l.ev.Run(); err != nil {
		l.srv.log.Error("resp: epoll_wait failed; closing the loop's connections", "err", err)
		l.exit()
	}
}

// register starts watching a new connection and runs what it already holds.
func (l *loop) register(lc *loopConn) {
	l.now = time.Now().UnixNano()
	lc.events = evloop.In | evloop.RdHup
	if err := l.ev.Add(lc.fd, lc.events, lc); err != nil {
		unix.Close(lc.fd)
		l.srv.release(lc.cl)
		return
	}
	l.conns[int32(lc.fd)] = lc
	if lc.cl.wi > lc.cl.ri {
		l.run1(lc)
	} else {
		l.reclaim(lc)
		l.settle(lc)
	}
}

// exit closes every connection of the loop.
func (l *loop) exit() {
	for _, lc := range l.conns {
		lc.closed = true
		l.ev.Remove(lc.fd)
		unix.Close(lc.fd)
		l.srv.release(lc.cl)
	}
	l.conns = map[int32]*loopConn{}
}

func (l *loop) close(lc *loopConn) {
	if lc.lingering {
		lc.lingering = false
		l.lingering--
	}
	lc.closed = true
	delete(l.conns, int32(lc.fd))
	l.ev.Remove(lc.fd)
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
		if events&(evloop.Err|evloop.Hup) != 0 {
			l.close(lc)
			return
		}
		l.watch(lc, l.parkedEvents(lc))
		return
	}
	l.lend(cl)
	if events&(evloop.In|evloop.Hup|evloop.Err|evloop.RdHup) != 0 && !lc.full(l.srv) && !cl.closing {
		if !cl.makeRoom() {
			l.close(lc)
			return
		}
		n, err := evloop.Read(lc.fd, cl.in[cl.wi:])
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
	want := uint32(evloop.In | evloop.RdHup)
	switch {
	case pending && cl.closing:
		want = evloop.Out
	case pending:
		want |= evloop.Out
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
	if evloop.ShutdownWrite(lc.fd) != nil {
		l.close(lc)
		return
	}
	lc.lingering = true
	lc.lingerTill = time.Now().Add(lingerQuiet).UnixNano()
	l.lingering++
	l.watch(lc, evloop.In|evloop.RdHup)
	l.checkQuiet()
}

// checkQuiet has the loop look for quiet lingering connections lingerCheck from now,
// and again after that while some linger.
func (l *loop) checkQuiet() {
	if l.checking || l.lingering == 0 {
		return
	}
	l.checking = true
	time.AfterFunc(lingerCheck, func() {
		l.ev.Post(func() {
			l.checking = false
			l.now = time.Now().UnixNano()
			l.closeQuiet()
			l.checkQuiet()
		})
	})
}

// closeQuiet closes the lingering connections that have sent nothing for lingerQuiet.
func (l *loop) closeQuiet() {
	for _, lc := range l.conns {
		if lc.lingering && l.now > lc.lingerTill {
			l.close(lc) // deleting from the map being ranged over is allowed
		}
	}
}

// discard reads and drops what a lingering connection sends, and closes it at the end
// of the stream.
func (l *loop) discard(lc *loopConn) {
	if l.sink == nil {
		l.sink = make([]byte, readChunk)
	}
	for range 16 { // then let the other connections have a turn
		n, err := evloop.Read(lc.fd, l.sink)
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
		if l.ev.Watch(lc.fd, want) != nil {
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
	l.now = time.Now().UnixNano()
	for _, lc := range l.conns {
		if !lc.parked && lc.cl.idleFor(l.now) { // waiting on L2 is not idleness (Redis exempts blocked clients)
			lc.cl.dropped(limitIdle)
			l.close(lc)
		}
	}
}

// requestSweep asks the loop to close its idle connections.
func (l *loop) requestSweep() { l.ev.Post(l.closeIdle) }

// parkedEvents is what a parked connection waits for: room to write replies made
// before it parked, if any; otherwise nothing (errors and hangups are always reported).
func (l *loop) parkedEvents(lc *loopConn) uint32 {
	if lc.out < len(lc.cl.w.b) {
		return evloop.Out
	}
	return 0
}

// resume has the loop take up a parked connection whose L2 call finished; any
// goroutine may call it.
func (l *loop) resume(lc *loopConn) {
	l.ev.Post(func() {
		l.now = time.Now().UnixNano()
		l.unpark(lc)
	})
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
		n, err := evloop.Write(lc.fd, cl.w.b[lc.out:])
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
