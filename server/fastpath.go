package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/h2fast"
	"github.com/cachee/cachee/server/internal/evloop"
)

// The gRPC fast path (Config.FastPath) serves gRPC connections on event loops: each
// connection's HTTP/2 is spoken by an h2fast.Conn on a loop, which answers
// cachee.v1.CacheService's unary calls there, with one read and one write for all the
// calls of a read, and relays every other stream (health, reflection, Prewarm, unknown
// methods, and requests the fast path does not take as they are) to the grpc-go
// server over an in-process connection (a socketpair) of its own.
//
// A fast call runs what grpc-go would run for it: a data-path method's handler
// (datapath.go), which decodes the request where it lies and encodes the answer
// itself, or the generated handler through the chain of interceptors (auth, metrics,
// logging, recovery, validation). Its context carries what grpc-go's would: the
// incoming metadata, the deadline of grpc-timeout, the peer, and a
// ServerTransportStream for grpc.SetHeader and SetTrailer. Its answer
// is encoded as grpc-go encodes one, so a client cannot tell the two apart. A call
// that may wait for L2 (with an L2 tier, Get, BatchGet, Set, BatchSet and Delete) runs
// on a goroutine of its own while its stream waits; the connection's other calls go on.

// fastPath serves the connections routed to it.
type fastPath struct {
	s       *Server
	data    *dataPath
	cfg     h2fast.Config
	methods []fastMethod
	routes  map[string]int
	gate    *readGate
	served  prometheus.Counter

	mu       sync.Mutex
	loops    []*fastLoop
	conns    map[*fastConn]struct{}
	closing  bool
	draining bool
	next     atomic.Uint32
	wg       sync.WaitGroup // connections, until closed
	sweeper  chan struct{}  // closed to stop the idle sweep
}

// fastMethod is one method the fast path answers.
type fastMethod struct {
	full     string               // "/cachee.v1.CacheService/Get"
	newReq   func() proto.Message // a new request message
	call     grpc.UnaryHandler    // the interceptors and the service method, chained
	data     dataCall             // the data-path handler, when data.serve is set
	mayBlock bool                 // runs on a goroutine of its own: it may wait for L2
}

// fastLoop is an event loop and what its connections share.
type fastLoop struct {
	loop   *evloop.Loop
	buf    []byte      // read buffer, the loop's goroutine only
	paused []*fastConn // connections not reading while the client budget is tight (see holdReads)
}

const fastReadBuf = 64 << 10

// newFastPath sets the fast path up for s's service. unary is the interceptor chain,
// whose metrics interceptor fm stands in for; data serves the data-path methods, if
// not nil. Requests of more than maxRead bytes go to grpc-go.
func newFastPath(s *Server, unary unaryChain, data *dataPath, fm *fastMetrics, gate *readGate, maxRead int) *fastPath {
	f := &fastPath{
		s:      s,
		data:   data,
		gate:   gate,
		routes: map[string]int{},
		conns:  map[*fastConn]struct{}{},
		cfg: h2fast.Config{
			MaxConcurrentStreams: s.cfg.MaxConcurrentStreams,
			MaxRecvMsgSize:       maxRead,
			ConnWindow:           grpcConnWindow,
			MinPingInterval:      keepaliveMinTime,
			PingWithoutStream:    true,
		},
	}
	if s.cfg.Budget != nil {
		f.cfg.Memory = s.cfg.Budget
	}
	f.served = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cachee_grpc_fast_calls_total",
		Help: "gRPC calls answered on the fast path's event loops (--grpc-fast-path).",
	})
	relayed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cachee_grpc_relayed_streams_total",
		Help: "gRPC streams the fast path relayed to grpc-go: other services and methods, and requests it does not take as they are.",
	})
	f.cfg.Relayed = relayed.Inc
	s.registry.MustRegister(f.served, relayed)
	sd := &cacheev1.CacheService_ServiceDesc
	for i, md := range sd.Methods {
		full := "/" + sd.ServiceName + "/" + md.MethodName
		info := &grpc.UnaryServerInfo{Server: s.svc, FullMethod: full}
		req, final := generated(md, s.svc)
		ics := slices.Concat(unary.beforeMetrics, []grpc.UnaryServerInterceptor{fm.interceptor(fm.methods[md.MethodName])}, unary.afterMetrics)
		dc, _ := data.method(full, true)
		f.routes[full] = i
		f.methods = append(f.methods, fastMethod{
			full:     full,
			newReq:   func() proto.Message { return req.ProtoReflect().Type().New().Interface() },
			call:     chainAt(ics, 0, info, final),
			data:     dc,
			mayBlock: s.cfg.Tier != nil && usesTier(md.MethodName),
		})
	}
	return f
}

// generated returns what the generated handler of a unary method is made of: its
// request type (an example message) and the function that calls the service's method
// with a decoded request. It learns them by running the handler once with an
// interceptor that keeps them: the fast path then decodes requests itself and calls
// the chain it built once per method, where the generated handler would build the
// same closures again on every call.
func generated(md grpc.MethodDesc, srv any) (proto.Message, grpc.UnaryHandler) {
	var req proto.Message
	var final grpc.UnaryHandler
	md.Handler(srv, context.Background(),
		func(v any) error { req = v.(proto.Message); return nil },
		func(_ context.Context, _ any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			final = h
			return nil, nil
		})
	return req, final
}

// unaryMethods lists a service's unary methods.
func unaryMethods(sd *grpc.ServiceDesc) []string {
	names := make([]string, len(sd.Methods))
	for i, m := range sd.Methods {
		names[i] = m.MethodName
	}
	return names
}

// closedChan is a channel that is closed.
var closedChan = func() <-chan struct{} { c := make(chan struct{}); close(c); return c }()

// usesTier reports the methods that go through the Tier, which may wait for L2.
func usesTier(method string) bool {
	switch method {
	case "Get", "BatchGet", "Set", "BatchSet", "Delete":
		return true
	}
	return false
}

// serve takes a connection whose preface was read (peeked) over, or reports false to
// leave it to grpc-go (not a socket a loop can serve, or no loop). ac is its
// admission, closed with it.
func (f *fastPath) serve(c net.Conn, ac net.Conn, peeked []byte) bool {
	fl := f.loop()
	if fl == nil {
		return false
	}
	remote, local := c.RemoteAddr(), c.LocalAddr()
	fd, ok := evloop.Take(c)
	if !ok {
		return false
	}
	fc := &fastConn{f: f, fl: fl, fd: fd, admitted: ac, backs: map[int]*fastBackend{}, lastBusy: time.Now()}
	fc.base = peer.NewContext(context.Background(), &peer.Peer{Addr: remote, LocalAddr: local})
	fc.remote = remote
	fc.c = h2fast.NewConn(f.cfg, fc)
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		evloop.Close(fd)
		ac.Close()
		return true
	}
	f.conns[fc] = struct{}{}
	f.wg.Add(1)
	draining := f.draining
	f.mu.Unlock()
	pre := append([]byte(nil), peeked...)
	if !fl.loop.Post(func() { fc.start(pre, draining) }) {
		fc.release()
	}
	return true
}

// loop picks the loop for a new connection, starting the loops on first use.
func (f *fastPath) loop() *fastLoop {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loops == nil && !f.closing {
		for range max(1, runtime.GOMAXPROCS(0)/2) {
			l, err := evloop.New()
			if err != nil {
				f.s.log.Warn("gRPC fast path unavailable: serving gRPC from grpc-go alone", "err", err)
				f.loops = []*fastLoop{}
				break
			}
			fl := &fastLoop{loop: l, buf: make([]byte, fastReadBuf)}
			f.loops = append(f.loops, fl)
			go func() {
				if err := l.Run(); err != nil {
					f.s.log.Error("gRPC fast path: event loop failed", "err", err)
				}
			}()
		}
		if it := f.s.cfg.IdleTimeout; it > 0 && len(f.loops) > 0 {
			f.sweeper = make(chan struct{})
			go f.sweepIdle(it, f.sweeper)
		}
	}
	if len(f.loops) == 0 {
		return nil
	}
	return f.loops[int(f.next.Add(1))%len(f.loops)]
}

// sweepIdle asks connections that have had no call for the idle timeout to go away,
// as grpc-go's MaxConnectionIdle does.
func (f *fastPath) sweepIdle(timeout time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		f.each(func(fc *fastConn) {
			if !fc.closed && !fc.c.Busy() && time.Since(fc.lastBusy) >= timeout {
				fc.c.Shutdown()
				fc.sync()
			}
		})
	}
}

// each runs fn on every connection, on its loop.
func (f *fastPath) each(fn func(*fastConn)) {
	f.mu.Lock()
	conns := make([]*fastConn, 0, len(f.conns))
	for fc := range f.conns {
		conns = append(conns, fc)
	}
	f.mu.Unlock()
	for _, fc := range conns {
		fc.fl.loop.Post(func() { fn(fc) })
	}
}

// drain starts a graceful shutdown of every connection (GOAWAY, then the calls in
// flight finish) and returns a channel closed when all are gone.
func (f *fastPath) drain() <-chan struct{} {
	f.mu.Lock()
	f.draining = true
	f.mu.Unlock()
	f.each(func(fc *fastConn) {
		if !fc.closed {
			fc.c.Shutdown()
			fc.sync()
		}
	})
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	return done
}

// close closes every connection now, then stops the loops.
func (f *fastPath) close() {
	f.mu.Lock()
	f.closing = true
	loops := f.loops
	if f.sweeper != nil {
		close(f.sweeper)
		f.sweeper = nil
	}
	f.mu.Unlock()
	f.each(func(fc *fastConn) { fc.close() })
	f.wg.Wait()
	for _, fl := range loops {
		fl.loop.Stop()
		<-fl.loop.Done()
	}
}

// fastConn is one client connection on a loop. Everything but the goroutines of
// calls that may block (which Post their answers back) runs on its loop's goroutine.
type fastConn struct {
	f         *fastPath
	fl        *fastLoop
	fd        int
	events    uint32
	c         *h2fast.Conn
	backs     map[int]*fastBackend
	admitted  net.Conn // its admission: closing it releases the connection's charge
	base      context.Context
	remote    net.Addr
	lastBusy  time.Time
	timerAt   time.Time      // when the armed deadline timer fires; zero when none is
	lingering bool           // done: the write side is shut, input is read and dropped until the client closes
	deadline  noWaitDeadline // the context of a data-path call answered on the loop, with a deadline
	attached  bool           // a backend was attached (the connection's charge covers the first)
	closed    bool

	// Reading held back while the client budget is tight (see holdReads).
	paused    bool
	heldSince time.Time // when it began to hold back, while the budget has been tight since
}

// fastBackend is a connection of fastConn to the grpc-go server.
type fastBackend struct {
	b      *h2fast.Backend
	fd     int
	events uint32
}

func (fc *fastConn) start(peeked []byte, draining bool) {
	if err := fc.fl.loop.Add(fc.fd, evloop.In|evloop.RdHup, fc); err != nil {
		fc.closed = true
		evloop.Close(fc.fd)
		fc.release()
		return
	}
	fc.events = evloop.In | evloop.RdHup
	fc.c.Feed(peeked)
	if draining {
		fc.c.Shutdown()
	}
	fc.sync()
}

// Event handles epoll's events for the connection's socket or one of its backends'.
func (fc *fastConn) Event(fd int, events uint32) {
	if fc.closed {
		return
	}
	if fd != fc.fd {
		fc.backendEvent(fd, events)
		fc.sync()
		return
	}
	if events&(evloop.Err|evloop.Hup) != 0 {
		fc.close()
		return
	}
	if fc.lingering {
		fc.discard()
		return
	}
	if events&(evloop.In|evloop.RdHup) != 0 && fc.c.WantsRead() && !fc.paused {
		if fc.holdReads() {
			fc.pause()
			fc.sync()
			return
		}
		n, err := evloop.Read(fd, fc.fl.buf)
		switch {
		case n > 0:
			fc.c.Feed(fc.fl.buf[:n])
		case n == 0 || err != evloop.EAGAIN && err != evloop.EINTR:
			fc.close()
			return
		}
	}
	fc.sync()
}

func (fc *fastConn) backendEvent(fd int, events uint32) {
	fb := fc.backs[fd]
	if fb == nil {
		return
	}
	if events&(evloop.In|evloop.RdHup|evloop.Hup|evloop.Err) != 0 {
		n, err := evloop.Read(fd, fc.fl.buf)
		switch {
		case n > 0:
			fb.b.Feed(fc.fl.buf[:n])
		case n == 0 || err != evloop.EAGAIN && err != evloop.EINTR:
			fb.b.Closed()
			fc.dropBackend(fb)
		}
	}
}

// sync writes what is due to the client and the backends, opens the backends the
// connection asked for, and sets what epoll watches; it closes the connection once
// it is done.
func (fc *fastConn) sync() {
	if fc.closed {
		return
	}
	for progress := true; progress && !fc.closed; {
		progress = false
		for _, b := range fc.c.Unattached() {
			fc.attach(b)
			progress = true
		}
		for out := fc.c.Output(); len(out) > 0; out = fc.c.Output() {
			n, err := evloop.Write(fc.fd, out)
			if n <= 0 {
				if err != evloop.EAGAIN && err != evloop.EINTR {
					fc.close()
					return
				}
				break
			}
			fc.c.Wrote(n)
			progress = true
		}
		for _, fb := range fc.backs {
			for out := fb.b.Output(); len(out) > 0; out = fb.b.Output() {
				n, err := evloop.Write(fb.fd, out)
				if n <= 0 {
					if err != evloop.EAGAIN && err != evloop.EINTR {
						fb.b.Closed()
						fc.dropBackend(fb)
					}
					break
				}
				fb.b.Wrote(n)
				progress = true
			}
		}
	}
	if fc.c.Busy() {
		fc.lastBusy = time.Now()
	}
	fc.armDeadline()
	if fc.c.Done() && len(fc.c.Output()) == 0 {
		fc.linger()
		return
	}
	// Not reading, it watches neither for input nor for the client's end of it, which
	// epoll would report over and over; errors and hangups it reports regardless.
	var want uint32
	if fc.c.WantsRead() && !fc.paused {
		want |= evloop.In | evloop.RdHup
	}
	if len(fc.c.Output()) > 0 {
		want |= evloop.Out
	}
	if want != fc.events {
		fc.events = want
		if fc.fl.loop.Watch(fc.fd, want) != nil {
			fc.close()
			return
		}
	}
	for _, fb := range fc.backs {
		if fb.b.Done() {
			fc.dropBackend(fb)
			continue
		}
		want := uint32(evloop.In | evloop.RdHup)
		if len(fb.b.Output()) > 0 {
			want |= evloop.Out
		}
		if want != fb.events {
			fb.events = want
			fc.fl.loop.Watch(fb.fd, want)
		}
	}
}

// holdReads reports whether the connection should leave its input unread for now:
// while the client memory budget is tight (see Budget.tight), for at most maxReadWait
// at a time. grpc-go's reads wait at the read gate then, which holds its clients back;
// the fast path would otherwise go on taking calls that are refused only once their
// answers are built (a Get copies its value out of the store before the Budget can
// refuse it), and that garbage, hundreds of MiB a second under TestMemoryBound's load,
// is what keeps the heap above the limit. Past maxReadWait the connection reads again,
// and the Budget refuses what does not fit, as the gate does.
func (fc *fastConn) holdReads() bool {
	if !fc.f.gate.budget.tight() {
		fc.heldSince = time.Time{}
		return false
	}
	now := time.Now()
	if fc.heldSince.IsZero() {
		fc.heldSince = now
	}
	return now.Sub(fc.heldSince) < maxReadWait
}

// pause stops reading the connection until its loop's next look at the budget
// (resume) finds that it may read again.
func (fc *fastConn) pause() {
	fc.paused = true
	fl := fc.fl
	fl.paused = append(fl.paused, fc)
	if len(fl.paused) == 1 {
		fl.lookAgain()
	}
}

// lookAgain has resume run on the loop after guardEvery, the memory guard's period.
func (fl *fastLoop) lookAgain() {
	time.AfterFunc(guardEvery, func() { fl.loop.Post(fl.resume) })
}

// resume lets the paused connections that may read again do so; the others wait for
// the next look.
func (fl *fastLoop) resume() {
	waiting := fl.paused[:0]
	for _, fc := range fl.paused {
		switch {
		case fc.closed:
		case fc.holdReads():
			waiting = append(waiting, fc)
		default:
			fc.paused = false
			fc.sync()
		}
	}
	clear(fl.paused[len(waiting):])
	fl.paused = waiting
	if len(waiting) > 0 {
		fl.lookAgain()
	}
}

// armDeadline arms a timer for the earliest deadline of a request that has not
// arrived whole, which the Conn then relays (see h2fast.Conn.Expire).
func (fc *fastConn) armDeadline() {
	at, ok := fc.c.NextDeadline()
	if !ok || !fc.timerAt.IsZero() && !at.Before(fc.timerAt) {
		return
	}
	fc.timerAt = at
	loop := fc.fl.loop
	time.AfterFunc(time.Until(at), func() {
		loop.Post(func() {
			if fc.closed {
				return
			}
			fc.timerAt = time.Time{}
			fc.c.Expire(time.Now())
			fc.sync()
		})
	})
}

// attach connects a backend the connection opened to the grpc-go server, over a
// socketpair whose other end grpc-go serves as if a client had connected. The
// connection's own charge, GRPCConnCost, is what a grpc-go connection holds: it
// covers the first backend (the fast path's own state is small beside it); any
// further one, opened after grpc-go sent the first away, is charged as a connection
// of its own.
func (fc *fastConn) attach(b *h2fast.Backend) {
	budget := fc.f.s.cfg.Budget
	cost := int64(GRPCConnCost)
	if !fc.attached {
		fc.attached, cost = true, 0
	}
	if !budget.TryAcquire(cost) {
		fc.f.s.reject("client_memory", nil)
		b.Closed()
		return
	}
	loopEnd, goEnd, err := evloop.Socketpair()
	if err != nil {
		budget.Release(cost)
		b.Closed()
		return
	}
	file := os.NewFile(uintptr(goEnd), "grpc-relay")
	nc, err := net.FileConn(file)
	file.Close()
	if err != nil || fc.fl.loop.Add(loopEnd, evloop.In|evloop.RdHup, fc) != nil {
		if nc != nil {
			nc.Close()
		}
		evloop.Close(loopEnd)
		budget.Release(cost)
		b.Closed()
		return
	}
	fc.backs[loopEnd] = &fastBackend{b: b, fd: loopEnd, events: evloop.In | evloop.RdHup}
	relay := &relayConn{admittedConn: admittedConn{Conn: nc, release: func() { budget.Release(cost) }}, remote: fc.remote}
	ln := fc.f.s.grpcLn
	// grpc-go's accept loop takes it: not on the event loop, which must not wait.
	go func() {
		if !ln.push(relay) {
			relay.Close() // the server is stopping: the backend sees the end
		}
	}()
}

// relayConn is a relay's end that grpc-go serves: it reports the client's address,
// so that what grpc-go logs of a relayed call names the client.
type relayConn struct {
	admittedConn
	remote net.Addr
}

func (c *relayConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.admittedConn.RemoteAddr()
}

func (fc *fastConn) dropBackend(fb *fastBackend) {
	if _, ok := fc.backs[fb.fd]; !ok {
		return
	}
	delete(fc.backs, fb.fd)
	fc.fl.loop.Remove(fb.fd)
	evloop.Close(fb.fd)
}

// lingerTime bounds how long a connection that is done waits for the client to close.
const lingerTime = 2 * time.Second

// linger ends a connection that is done without losing what was last written to it
// (a GOAWAY, as a rule): closing a socket with unread input makes the kernel reset the
// connection, and a reset can discard what the client had not read yet. So the write
// side is shut (the client reads the end after the GOAWAY) and input is read and
// dropped until the client closes, for lingerTime at most.
func (fc *fastConn) linger() {
	if fc.lingering || fc.closed {
		return
	}
	fc.lingering = true
	for _, fb := range fc.backs {
		fb.b.Closed()
		fc.dropBackend(fb)
	}
	if evloop.ShutdownWrite(fc.fd) != nil || fc.fl.loop.Watch(fc.fd, evloop.In|evloop.RdHup) != nil {
		fc.close()
		return
	}
	loop := fc.fl.loop
	time.AfterFunc(lingerTime, func() { loop.Post(fc.close) })
	fc.discard()
}

// discard reads and drops what a lingering connection receives, and closes it at its end.
func (fc *fastConn) discard() {
	for {
		n, err := evloop.Read(fc.fd, fc.fl.buf)
		if n > 0 {
			continue
		}
		if n == 0 || err != evloop.EAGAIN && err != evloop.EINTR {
			fc.close()
		}
		return
	}
}

// close closes the connection and its backends and cancels its calls.
func (fc *fastConn) close() {
	if fc.closed {
		return
	}
	fc.closed = true
	fc.fl.loop.Remove(fc.fd)
	evloop.Close(fc.fd)
	fc.c.Close()
	for _, fb := range fc.backs {
		fb.b.Closed()
		fc.dropBackend(fb)
	}
	fc.release()
}

// release gives back the connection's admission and forgets it.
func (fc *fastConn) release() {
	fc.admitted.Close()
	fc.f.mu.Lock()
	delete(fc.f.conns, fc)
	fc.f.mu.Unlock()
	fc.f.wg.Done()
}

// Route implements h2fast.Handler: CacheService's unary methods.
func (fc *fastConn) Route(path string) (int, bool) {
	m, ok := fc.f.routes[path]
	return m, ok
}

// Serve implements h2fast.Handler. The request is decoded here, on the loop, so that
// its bytes need not outlive the call to Serve.
func (fc *fastConn) Serve(_ *h2fast.Conn, call *h2fast.Call) bool {
	m := &fc.f.methods[call.Method]
	// The data path reads nothing of a call's metadata but its bearer token, and
	// sets no header or trailer: its calls are checked as grpc-go would check their
	// metadata, without building it, nor a context that carries it.
	data := m.data.serve != nil
	var md metadata.MD
	var hl headerList
	ok := false
	if data {
		hl, ok = checkHeaderList(call.Header)
	} else {
		md, ok = incomingMetadata(call.Header)
	}
	if !ok {
		call.Relay() // grpc-go answers what it makes of such metadata
		return true
	}
	fc.f.served.Inc()
	// The data path decodes the request where it lies (raw); other methods get it
	// decoded (req). Either is checked as a read through the gate ends.
	raw := call.Message
	var req proto.Message
	var held int64
	var err error
	if data {
		err = fc.f.gate.checkSize(int64(len(raw)))
	} else {
		req = m.newReq()
		if err := proto.Unmarshal(raw, req); err != nil {
			// As grpc-go fails, before any interceptor.
			setStatus(call, status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err))
			return true
		}
		held, err = fc.f.gate.decoded(req)
	}
	if err != nil {
		setStatus(call, err)
		return true
	}
	if data && m.mayBlock {
		// The call goes on after Serve returns, when the bytes are the connection's
		// again: it takes a copy, charged as they were.
		raw, held = bytes.Clone(raw), int64(len(raw))
		fc.f.gate.budget.Charge(held)
	}
	ctx := fc.base
	if !data {
		ctx = metadata.NewIncomingContext(ctx, md)
	}
	var cancel context.CancelFunc
	switch {
	case call.HasTimeout && !m.mayBlock && data:
		// The data path keeps no reference to its context once it returns, which
		// it does before the next call is read: the connection's context serves.
		fc.deadline = noWaitDeadline{Context: ctx, at: time.Now().Add(call.Timeout)}
		ctx = &fc.deadline
	case call.HasTimeout && !m.mayBlock:
		ctx = &noWaitDeadline{Context: ctx, at: time.Now().Add(call.Timeout)}
	case call.HasTimeout:
		ctx, cancel = context.WithTimeout(ctx, call.Timeout)
	case m.mayBlock:
		ctx, cancel = context.WithCancel(ctx)
	}
	var ts *fastTransportStream
	authorized := true
	if data {
		authorized = fc.f.data.auth.allowedBearer(m.full, hl.authorization, hl.authorizations)
	} else {
		ts = &fastTransportStream{method: m.full}
		ctx = grpc.NewContextWithServerTransportStream(ctx, ts)
	}
	if !m.mayBlock {
		fc.f.run(ctx, m, req, raw, held, call, ts, authorized)
		if cancel != nil {
			cancel()
		}
		return true
	}
	call.Value = cancel
	call.Reply = nil // the call's own: the connection's scratch is for calls answered at once
	loop := fc.fl.loop
	go func() {
		fc.f.run(ctx, m, req, raw, held, call, ts, authorized)
		cancel()
		loop.Post(func() {
			fc.c.Finish(call)
			fc.sync()
		})
	}()
	return false
}

// noWaitDeadline is the context of a call with a deadline that is answered on the
// loop without waiting for anything: it reports the deadline (Deadline, Err), as
// context.WithTimeout's would, without the timer and the cancellation machinery that
// only a call that waits needs (its Done is its parent's, which never closes).
type noWaitDeadline struct {
	context.Context
	at time.Time
}

func (c *noWaitDeadline) Deadline() (time.Time, bool) { return c.at, true }

func (c *noWaitDeadline) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.at) {
		return context.DeadlineExceeded
	}
	return nil
}

// Cancel implements h2fast.Handler: the client reset a call that runs on its own.
func (fc *fastConn) Cancel(call *h2fast.Call) {
	if cancel, ok := call.Value.(context.CancelFunc); ok {
		cancel()
	}
}

// Overloaded implements h2fast.Handler.
func (fc *fastConn) Overloaded(call *h2fast.Call) {
	fc.f.s.rejected.WithLabelValues("client_memory").Inc()
	setStatus(call, toStatus(errOverloaded))
}

// run runs one call: the data path's handler on the request's bytes raw (authorized
// is its bearer token's verdict), or the interceptors and the service method on req,
// with the request held charged to the Budget until they return, as grpc-go's reads
// are. ts, nil for the data path, has the headers and trailers the handler set.
func (f *fastPath) run(ctx context.Context, m *fastMethod, req proto.Message, raw []byte, held int64, call *h2fast.Call, ts *fastTransportStream, authorized bool) {
	var resp any
	var err error
	if m.data.serve != nil {
		resp, err = f.data.call(ctx, m.data, raw, authorized)
	} else {
		resp, err = m.call(ctx, req)
	}
	f.gate.budget.Release(held)
	if err == nil {
		err = encodeReply(call, resp)
	}
	if err != nil {
		st, ok := status.FromError(err)
		if !ok {
			st = status.FromContextError(err)
		}
		setStatus(call, st.Err())
	}
	call.Headers, call.Trailers = call.Headers[:0], call.Trailers[:0]
	if ts != nil {
		call.Headers = appendMetadata(call.Headers, ts.header)
		call.Trailers = appendMetadata(call.Trailers, ts.trailer)
	}
}

// encodeReply puts a handler's answer into call.Reply: a message is marshaled, and an
// answer the data path encoded already (datapath.go) is copied and its buffers freed.
func encodeReply(call *h2fast.Call, resp any) error {
	switch r := resp.(type) {
	case fastAnswer:
		call.Reply, call.ReplyMsg = r[h2fast.PrefixLen:], r
	case mem.Buffer:
		b := r.ReadOnlyData()
		reply(call, len(b), func(dst []byte) ([]byte, error) { return append(dst, b...), nil })
		r.Free()
	case mem.BufferSlice:
		reply(call, r.Len(), func(dst []byte) ([]byte, error) {
			for _, b := range r {
				dst = append(dst, b.ReadOnlyData()...)
			}
			return dst, nil
		})
		r.Free()
	case proto.Message:
		err := reply(call, proto.Size(r), func(dst []byte) ([]byte, error) {
			return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(dst, r)
		})
		if err != nil {
			return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
		}
	default:
		return status.Errorf(codes.Internal, "grpc: cannot encode an answer of type %T", resp)
	}
	return nil
}

// reply appends an answer of size bytes to the connection's scratch buffer, or, when
// it is larger, to a buffer of its own with room for its prefix, which the connection
// then sends as it is.
func reply(call *h2fast.Call, size int, appendTo func([]byte) ([]byte, error)) error {
	if size <= cap(call.Reply) {
		b, err := appendTo(call.Reply[:0])
		call.Reply = b
		return err
	}
	buf, err := appendTo(make([]byte, h2fast.PrefixLen, h2fast.PrefixLen+size))
	call.Reply, call.ReplyMsg = buf[h2fast.PrefixLen:], buf
	return err
}

// setStatus puts a status error into a call's answer, with its details as grpc-go
// sends them.
func setStatus(call *h2fast.Call, err error) {
	st := status.Convert(err)
	call.Code, call.StatusMessage = uint32(st.Code()), st.Message()
	if p := st.Proto(); len(p.GetDetails()) > 0 {
		call.Details, _ = proto.Marshal(p)
	}
}

// headerList is what the data path needs of a call's header list: its
// "authorization" values, how many and the first.
type headerList struct {
	authorization  string
	authorizations int
}

// checkHeaderList checks a header list as incomingMetadata does, with the same
// verdict, without building the metadata; it gives the "authorization" values.
func checkHeaderList(fields []hpack.HeaderField) (headerList, bool) {
	var hl headerList
	authorities, hosts := 0, 0
	for _, hf := range fields {
		switch name := hf.Name; name {
		case ":authority":
			authorities++
		case "host":
			hosts++
		case "authorization":
			if hl.authorizations == 0 {
				hl.authorization = hf.Value
			}
			hl.authorizations++
		default:
			// As incomingMetadata: every binary field that is not a pseudo-header.
			if name != "" && name[0] != ':' && strings.HasSuffix(name, "-bin") {
				if _, err := decodeBinary(hf.Value); err != nil {
					return hl, false
				}
			}
		}
	}
	if authorities > 1 || hosts > 1 || authorities+hosts == 0 {
		return hl, false
	}
	return hl, true
}

// incomingMetadata builds a call's metadata from its header list as grpc-go does:
// the fields that are not reserved by the protocol (but :authority and user-agent),
// binary values decoded, Host folded into :authority. It reports false for a header
// list grpc-go refuses (a bad binary value, several or no authorities), which the
// fast path then relays for grpc-go to answer.
func incomingMetadata(fields []hpack.HeaderField) (metadata.MD, bool) {
	md := make(metadata.MD, len(fields))
	// One array for the values: a key with one value (the rule) takes a slice of it.
	vals := make([]string, 0, len(fields))
	add := func(k, v string) {
		if have, ok := md[k]; ok {
			md[k] = append(have[:len(have):len(have)], v)
			return
		}
		vals = append(vals, v)
		md[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for _, hf := range fields {
		name := hf.Name
		switch name {
		case "content-type", "grpc-accept-encoding", ":authority", "user-agent":
		case "te", "grpc-encoding", "grpc-timeout", "grpc-message", "grpc-status", "grpc-message-type", "connection":
			continue
		default:
			if name[0] == ':' {
				continue
			}
			if strings.HasSuffix(name, "-bin") {
				v, err := decodeBinary(hf.Value)
				if err != nil {
					return nil, false
				}
				add(name, string(v))
				continue
			}
		}
		add(name, hf.Value)
	}
	if len(md[":authority"]) > 1 || len(md["host"]) > 1 {
		return nil, false
	}
	if len(md[":authority"]) == 0 {
		if host, ok := md["host"]; ok {
			md[":authority"] = host
		}
	}
	delete(md, "host")
	if len(md[":authority"]) == 0 {
		return nil, false
	}
	return md, true
}

func decodeBinary(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		// Padded or not: grpc-go accepts both.
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// appendMetadata appends md as header fields, binary values base64-encoded.
func appendMetadata(dst []hpack.HeaderField, md metadata.MD) []hpack.HeaderField {
	for k, vs := range md {
		if isReservedField(k) {
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = h2fast.EncodeBinary([]byte(v))
			}
			dst = append(dst, hpack.HeaderField{Name: k, Value: v})
		}
	}
	return dst
}

// isReservedField reports the fields a handler's metadata may not set, as grpc-go
// leaves them out of an answer.
func isReservedField(k string) bool {
	if k == "" || k[0] == ':' {
		return true
	}
	switch k {
	case "content-type", "user-agent", "grpc-message-type", "grpc-encoding", "grpc-message", "grpc-status", "grpc-timeout", "grpc-status-details-bin", "te":
		return true
	}
	return false
}

// fastTransportStream is what grpc.SetHeader, grpc.SendHeader and grpc.SetTrailer
// reach in a fast call: the metadata goes out with the answer.
type fastTransportStream struct {
	method          string
	header, trailer metadata.MD
}

func (s *fastTransportStream) Method() string { return s.method }

func (s *fastTransportStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *fastTransportStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *fastTransportStream) SetTrailer(md metadata.MD) error {
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// chainAt chains interceptors ics[i:] around h, outermost first, as
// grpc.ChainUnaryInterceptor does; the fast path builds each method's chain once.
func chainAt(ics []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(ics) {
		return h
	}
	return func(ctx context.Context, req any) (any, error) {
		return ics[i](ctx, req, info, chainAt(ics, i+1, info, h))
	}
}
