package resp

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
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

	mu      sync.Mutex
	clients map[int64]*client
	closed  bool
	wg      sync.WaitGroup // goroutine-served connections and event loops

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
// Port, Memory and Logger from cfg.
func New(st *store.Store, cfg Config) *Server {
	if cfg.Validate() != nil {
		d := DefaultConfig()
		d.RequirePass, d.EventLoops, d.Logger, d.Port, d.L2 = cfg.RequirePass, cfg.EventLoops, cfg.Logger, cfg.Port, cfg.L2
		d.Memory = cfg.Memory
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
// are parsed first. The Server owns c from here on and closes it.
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
	if s.closed {
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
	s.mu.Unlock()
	s.wg.Done()
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
	defer func() {
		o.finish()
		<-done
	}()
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
		if t := s.cfg.IdleTimeout; t > 0 {
			_ = c.SetReadDeadline(time.Now().Add(t))
		}
		n, err := c.Read(cl.in[cl.wi:])
		if ne, ok := err.(net.Error); ok && ne.Timeout() && n == 0 {
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
	var kills []func()
	for _, cl := range s.clients {
		if cl.kill != nil {
			kills = append(kills, cl.kill)
		}
	}
	loops := s.loops
	s.mu.Unlock()
	for _, k := range kills {
		k()
	}
	for _, l := range loops {
		l.shutdown()
	}
	s.wg.Wait()
	return nil
}

// numLoops is how many event loops to run.
func (s *Server) numLoops() int {
	if s.cfg.EventLoops > 0 {
		return s.cfg.EventLoops
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}
