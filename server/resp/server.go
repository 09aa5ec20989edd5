package resp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// Server serves RESP connections over one store.
type Server struct {
	st      *store.Store
	l2      *l2.Tier // nil: no L2
	cfg     Config
	log     *slog.Logger
	maxBulk int
	start   time.Time
	runID   string

	mu       sync.Mutex
	clients  map[int64]*client
	closed   bool
	drained  chan struct{}  // made by Shutdown; closed once no client is left
	draining atomic.Bool    // Shutdown has begun: admit no one, close clients as they go quiet
	wg       sync.WaitGroup // goroutine-served connections and event loops

	loops    []*loop
	nextLoop atomic.Uint32

	nextID atomic.Int64
	watch  watchRegistry

	// Counters for INFO.
	connsTotal atomic.Int64
	rejected   atomic.Int64
	cmdsTotal  atomic.Int64
	netIn      atomic.Int64
	netOut     atomic.Int64

	// Clients disconnected by a limit (see limits.go), for INFO.
	queryLimitDrops, outputLimitDrops, evicted, idleDrops atomic.Int64
	stopSweep                                             chan struct{}
}

// New returns a Server over st. Check cfg with Validate first: given an invalid cfg,
// New does not fail but runs with DefaultConfig, keeping only RequirePass, EventLoops,
// Port, Memory, L2, Latency and Logger from cfg.
func New(st *store.Store, cfg Config) *Server {
	if cfg.Validate() != nil {
		d := DefaultConfig()
		d.RequirePass, d.EventLoops, d.Logger, d.Port, d.L2 = cfg.RequirePass, cfg.EventLoops, cfg.Logger, cfg.Port, cfg.L2
		d.Memory, d.Latency = cfg.Memory, cfg.Latency
		cfg = d
	}
	cfg = cfg.withDefaults()
	sc := st.Config()
	maxBulk := cfg.MaxBulk
	if maxBulk == 0 {
		maxBulk = max(sc.MaxValueSize, sc.MaxKeySize)
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		st:      st,
		l2:      cfg.L2,
		cfg:     cfg,
		log:     cfg.Logger,
		maxBulk: maxBulk,
		start:   time.Now(),
		runID:   hex.EncodeToString(id[:]),
		clients: make(map[int64]*client),
	}
	s.watch.keys = make(map[string][]*client)
	if cfg.IdleTimeout > 0 {
		s.stopSweep = make(chan struct{})
		s.wg.Add(1)
		go s.sweepIdle()
	}
	return s
}

// sweepIdle asks the event loops, now and then, to close the connections that have
// been idle too long. Connections served by goroutines time out on their own reads.
func (s *Server) sweepIdle() {
	defer s.wg.Done()
	t := time.NewTicker(sweepEvery(s.cfg.IdleTimeout))
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
		}
		s.mu.Lock()
		loops := s.loops
		s.mu.Unlock()
		for _, l := range loops {
			l.requestSweep()
		}
	}
}

// ServeConn serves one RESP connection. peeked holds bytes already read from c; they
// are parsed first. The Server owns c from here on and closes it, also after ServeConn
// has returned: an event loop takes c's socket over and ServeConn returns at once,
// while a connection served by a goroutine returns when it ends. Either way Shutdown
// and Close end it.
func (s *Server) ServeConn(c net.Conn, peeked []byte) {
	cl, ok := s.admit(c)
	if !ok {
		return
	}
	cl.feed(peeked)
	if s.cfg.EventLoops >= 0 && s.serveInLoop(cl, c) {
		return
	}
	s.serveBlocking(cl, c)
}

// admit registers a client for c, or refuses it (closed server, too many clients).
func (s *Server) admit(c net.Conn) (*client, bool) {
	s.connsTotal.Add(1)
	s.mu.Lock()
	if s.closed || s.draining.Load() {
		s.mu.Unlock()
		c.Close()
		return nil, false
	}
	if len(s.clients) >= s.cfg.MaxClients {
		s.mu.Unlock()
		s.rejected.Add(1)
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte("-" + errMaxClients + "\r\n"))
		c.Close()
		return nil, false
	}
	cl := newClient(s, c)
	if !cl.account() {
		s.mu.Unlock()
		cl.dropped(limitMemory)
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte("-" + errClientMemory + "\r\n"))
		c.Close()
		return nil, false
	}
	cl.kill = func() { c.Close() }
	// A deadline in the past wakes a goroutine blocked reading c (see readBlocking).
	cl.wake = func() { _ = c.SetReadDeadline(time.Now()) }
	s.clients[cl.id] = cl
	s.wg.Add(1)
	s.mu.Unlock()
	return cl, true
}

// release forgets a client whose connection has closed.
func (s *Server) release(cl *client) {
	cl.unaccount()
	s.watch.unwatchAll(cl)
	s.mu.Lock()
	delete(s.clients, cl.id)
	s.checkDrained()
	s.mu.Unlock()
	s.wg.Done()
}

// checkDrained closes drained once Shutdown has begun and no client is left. Caller
// holds mu.
func (s *Server) checkDrained() {
	if s.drained == nil || len(s.clients) > 0 {
		return
	}
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
}

// serveBlocking serves c from the calling goroutine until it closes. Replies go to a
// second goroutine that writes them, so that reading goes on while a client is slow to
// read its replies (a client may write a whole pipeline before reading, as go-redis
// does); past MaxOutput waiting, the client is disconnected.
func (s *Server) serveBlocking(cl *client, c net.Conn) {
	defer s.release(cl)
	defer c.Close()
	o := newOutbox(s.cfg.MaxOutput)
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.writeTo(c, &s.netOut)
	}()
	flush := func() {
		o.finish()
		<-done
	}
	defer flush()
	cl.w.max = s.cfg.MaxOutput
	for {
		more := cl.process()
		if len(cl.w.b) > 0 && !o.put(&cl.w.b) {
			if o.over {
				cl.dropped(limitOutput)
			}
			return
		}
		if op := cl.pending; op != nil {
			// This goroutine serves only this connection: it may wait for L2.
			done := make(chan struct{})
			op.start(func() { close(done) })
			<-done
			cl.pending = nil
			op.finish()
			continue
		}
		if cl.closing {
			return
		}
		if !cl.account() {
			cl.dropped(limitMemory)
			return
		}
		if more {
			continue
		}
		if !cl.makeRoom() {
			return
		}
		n, err := s.readBlocking(cl, c)
		if errors.Is(err, errQuiet) {
			flush()
			lingerClose(c)
			return
		}
		if isTimeout(err) && n == 0 {
			cl.dropped(limitIdle)
			return
		}
		if n > 0 {
			cl.wi += n
			s.netIn.Add(int64(n))
			cl.touch(time.Now().UnixNano())
		}
		if err != nil && n == 0 {
			return
		}
	}
}

// errQuiet is readBlocking's word that the server drains and the client has nothing
// in flight: no request half-received, none arrived unread.
var errQuiet = errors.New("resp: quiet while draining")

// readBlocking reads the client's next bytes into cl.in. While the server drains it
// reads without the idle timeout (Shutdown's context bounds the drain), waits only for
// the rest of a request already begun, and otherwise returns errQuiet unless input has
// already arrived.
func (s *Server) readBlocking(cl *client, c net.Conn) (int, error) {
	b := cl.in[cl.wi:]
	var deadline time.Time
	if t := s.cfg.IdleTimeout; t > 0 {
		deadline = time.Now().Add(t)
	}
	_ = c.SetReadDeadline(deadline)
	// Shutdown sets draining before it wakes this read (cl.wake), and the deadline was
	// set above before draining is checked here: so either this sees draining, or the
	// wake comes after the deadline above and ends the Read.
	if !s.draining.Load() {
		n, err := c.Read(b)
		if n > 0 || !isTimeout(err) || !s.draining.Load() {
			return n, err
		}
	}
	// The wake may also land after the deadline is cleared here: it sets a deadline
	// once, so one timeout is retried.
	for woken := false; ; woken = true {
		_ = c.SetReadDeadline(time.Time{})
		n, err := drainRead(cl, c, b)
		if n == 0 && isTimeout(err) && !woken {
			continue
		}
		return n, err
	}
}

// drainRead is readBlocking while the server drains, without deadlines.
func drainRead(cl *client, c net.Conn, b []byte) (int, error) {
	if cl.ri == cl.wi {
		n, err := peekConn(c)
		switch {
		case n == 0 && err == nil:
			return 0, io.EOF
		case isTimeout(err):
			return 0, err
		case n <= 0:
			return 0, errQuiet // nothing arrived, or c cannot tell: finish now
		}
	}
	return c.Read(b)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// While the server drains, a connection that has nothing in flight lingers before it
// closes: the server closes its sending side, so the client reads every reply and then
// the end of the stream, and reads and drops whatever the client still sends until the
// client closes too, or sends nothing for lingerQuiet. Closing a socket with unread
// input, or input arriving after the close, would make the kernel reset the
// connection, and the client could lose replies it had not read yet. Shutdown's
// context bounds the wait.
const (
	lingerQuiet = time.Second
	lingerCheck = 100 * time.Millisecond // how often an event loop looks for quiet ones
)

// lingerClose lingers on c (see lingerQuiet) for a goroutine-served connection.
func lingerClose(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	buf := make([]byte, 4096)
	till := time.Now().Add(lingerQuiet)
	for {
		_ = c.SetReadDeadline(till)
		n, err := c.Read(buf)
		if n > 0 {
			till = time.Now().Add(lingerQuiet)
		}
		// A timeout before till is Shutdown's wake (see readBlocking).
		if err != nil && (!isTimeout(err) || time.Now().After(till)) {
			return
		}
	}
}

// peekConn is peekInput for a net.Conn: it reports -1 and a nil error when c is not a
// socket, which cannot tell.
func peekConn(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, nil
	}
	var n int
	var perr error
	if err := rc.Read(func(fd uintptr) bool {
		n, perr = peekInput(int(fd))
		return true
	}); err != nil {
		return 0, err
	}
	if perr != nil {
		return -1, perr
	}
	return n, nil
}

// outbox passes replies from a connection's reader to its writer.
type outbox struct {
	mu    sync.Mutex
	cond  sync.Cond
	buf   []byte // waiting to be written
	spare []byte
	limit int
	done  bool  // the reader has finished: write what is left, then stop
	err   error // the writer failed
	over  bool  // put refused replies past the limit
}

func newOutbox(limit int) *outbox {
	o := &outbox{limit: limit}
	o.cond.L = &o.mu
	return o
}

// put hands the replies in *b to the writer and leaves *b empty (and perhaps another
// buffer). It reports false if the writer has failed, or if that would leave more
// than the limit waiting (then over is set, and nothing more is written).
func (o *outbox) put(b *[]byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return false
	}
	if len(o.buf)+len(*b) > o.limit {
		o.over = true
		o.buf = o.buf[:0]
		return false
	}
	if len(o.buf) == 0 {
		o.buf, *b = *b, o.buf[:0]
	} else {
		o.buf = append(o.buf, *b...)
		*b = (*b)[:0]
	}
	o.cond.Broadcast()
	return true
}

// finish tells the writer to write what is waiting and stop.
func (o *outbox) finish() {
	o.mu.Lock()
	o.done = true
	o.cond.Broadcast()
	o.mu.Unlock()
}

func (o *outbox) writeTo(c net.Conn, counter *atomic.Int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		for len(o.buf) == 0 && !o.done {
			o.cond.Wait()
		}
		if len(o.buf) == 0 {
			return
		}
		out := o.buf
		o.buf, o.spare = o.spare[:0], nil
		o.mu.Unlock()
		n, err := c.Write(out)
		counter.Add(int64(n))
		o.mu.Lock()
		if cap(out) <= keepBuf {
			o.spare = out[:0]
		}
		o.cond.Broadcast()
		if err != nil {
			o.err = err
			// Unblock the reader too: it may be waiting in Read.
			c.Close()
			return
		}
	}
}

// Shutdown drains the server, as net/http's Shutdown does: it admits no new clients,
// lets every connection finish the requests it has sent (those parked on L2 included)
// and write their replies, then closes it once it has nothing in flight (closing the
// sending side first, so that the client reads its replies and then the end of the
// stream). When ctx ends first it closes what is left, as Close does, and returns ctx's
// error. The Server is closed when Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	drained := s.drained
	if drained != nil {
		s.mu.Unlock() // draining already
	} else {
		drained = make(chan struct{})
		s.drained = drained
		s.draining.Store(true)
		s.checkDrained()
		s.signal(func(cl *client) func() { return cl.wake }, (*loop).drain)
	}
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	return err
}

// Close closes every client connection and waits until they are gone. Connections
// passed to ServeConn afterwards are closed at once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.stopSweep != nil {
		close(s.stopSweep)
	}
	s.signal(func(cl *client) func() { return cl.kill }, (*loop).shutdown)
	s.wg.Wait()
	return nil
}

// signal calls the hook that pick returns for each client that has one (those served
// by a goroutine: an event loop looks after its own) and onLoop for each event loop.
// Caller holds mu, which signal releases before calling anything.
func (s *Server) signal(pick func(*client) func(), onLoop func(*loop)) {
	var hooks []func()
	for _, cl := range s.clients {
		if h := pick(cl); h != nil {
			hooks = append(hooks, h)
		}
	}
	loops := s.loops
	s.mu.Unlock()
	for _, h := range hooks {
		h()
	}
	for _, l := range loops {
		onLoop(l)
	}
}

// numLoops is how many event loops to run.
func (s *Server) numLoops() int {
	if s.cfg.EventLoops > 0 {
		return s.cfg.EventLoops
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}
