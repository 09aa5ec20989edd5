package server

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// What gRPC holds is charged to the Budget by the bytes it holds, not by what a call
// could hold at worst, so that many small calls run at once and large ones are
// refused only when their bytes do not fit:
//
//   - every buffer grpc-go takes for a frame it reads, a message it reads whole or a
//     message it writes comes from bufferPool, which charges it until it comes back;
//   - a request message is read through readGate, which reserves the most a read
//     may bring in while its bytes arrive (its size is not known before), then keeps
//     it charged at its own size until its handler returns;
//   - the values an answer copies out of the store are reserved before it is built
//     (service.go), and refused with OVERLOADED when they do not fit;
//   - each connection is charged GRPCConnCost for grpc-go's own per-connection
//     buffers (limits.go).
//
// Before a request is read, HTTP/2 flow control lets the client send at most
// grpcStreamWindow bytes of it; those frames are charged as they arrive.

// grpcStreamWindow is the HTTP/2 window each stream starts with: what a client may
// send of a request before the server begins to read it. Setting it turns off
// grpc-go's bandwidth estimation, which would otherwise grow every stream's window to
// up to 16 MiB. grpc-go allows no less than 64 KiB.
const grpcStreamWindow = 64 << 10

// grpcConnWindow is the HTTP/2 window of a connection. grpc-go credits it back as
// frames arrive, not as they are read, so it bounds nothing that is held; a large one
// lets a large message arrive with fewer window updates.
const grpcConnWindow = 1 << 20

// Buffer classes of bufferPool: powers of two from just above grpc-go's pooling
// threshold (smaller buffers it allocates and drops itself) to 64 KiB, which holds
// the 16 KiB frames and small messages. Larger buffers are allocated to size and
// dropped when returned: a buffer kept for reuse is memory the budget no longer
// counts and the collector cannot free, and a few idle megabyte buffers are the whole
// margin of a small --max-memory.
const (
	minBufShift = 11 // 2 KiB
	maxBufShift = 16 // 64 KiB
)

// bufferPool is the gRPC server's mem.BufferPool. It charges each buffer it hands out
// to the Budget, at its capacity, until the buffer is returned; a buffer that grpc-go
// drops without returning it (frames still queued on a stream that is reset) is
// credited when the garbage collector finds it unreachable, so that the count never
// drifts from what is held.
type bufferPool struct {
	budget  *Budget
	classes [maxBufShift - minBufShift + 1]sync.Pool // of *[]byte at full capacity

	mu      sync.Mutex
	tickets map[uintptr]*bufTicket // by the address of a buffer's first byte
	dropped atomic.Int64           // buffers credited by the garbage collector
}

// bufTicket is what bufferPool knows of one buffer it allocated.
type bufTicket struct {
	size int64
	out  atomic.Bool // handed out and charged
}

func newBufferPool(b *Budget) *bufferPool {
	return &bufferPool{budget: b, tickets: map[uintptr]*bufTicket{}}
}

// bufClass is the class of a buffer of n bytes, or -1 when it is larger than the
// largest class.
func bufClass(n int) int {
	if n > 1<<maxBufShift {
		return -1
	}
	return max(bits.Len(uint(n-1)), minBufShift) - minBufShift
}

func bufKey(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b[:1]))) }

// Get returns a buffer of n bytes.
func (p *bufferPool) Get(n int) *[]byte {
	if mem.IsBelowBufferPoolingThreshold(n) {
		// grpc-go does not return buffers this small (mem.NewBuffer keeps them as
		// plain slices), so they are neither kept nor charged.
		b := make([]byte, n)
		return &b
	}
	c := bufClass(n)
	var bp *[]byte
	if c >= 0 {
		bp, _ = p.classes[c].Get().(*[]byte)
	}
	var t *bufTicket
	if bp != nil {
		p.mu.Lock()
		t = p.tickets[bufKey(*bp)]
		p.mu.Unlock()
	} else {
		size := n
		if c >= 0 {
			size = 1 << (c + minBufShift)
		}
		b := make([]byte, size)
		bp = &b
		t = p.track(b)
	}
	t.out.Store(true)
	p.budget.Charge(t.size)
	*bp = (*bp)[:n]
	return bp
}

// adopt takes b, a slice allocated elsewhere (b[0] is the start of its array), into
// the pool's keeping: it is charged from now until it is returned like a buffer of
// the pool's own.
func (p *bufferPool) adopt(b []byte) *[]byte {
	t := p.track(b)
	t.out.Store(true)
	p.budget.Charge(t.size)
	return &b
}

// track starts keeping the ticket of a newly allocated buffer.
func (p *bufferPool) track(b []byte) *bufTicket {
	t := &bufTicket{size: int64(cap(b))}
	key := bufKey(b)
	p.mu.Lock()
	p.tickets[key] = t
	p.mu.Unlock()
	runtime.AddCleanup(unsafe.SliceData(b), bufCollected, collected{p.budget, &p.mu, p.tickets, &p.dropped, key, t})
	return t
}

// Put takes back a buffer that Get handed out.
func (p *bufferPool) Put(bp *[]byte) {
	c := cap(*bp)
	if mem.IsBelowBufferPoolingThreshold(c) {
		return
	}
	p.mu.Lock()
	t := p.tickets[bufKey(*bp)]
	p.mu.Unlock()
	if t == nil || !t.out.Swap(false) {
		return // not one of ours, or returned twice: nothing to credit
	}
	p.budget.Release(t.size)
	if cl := bufClass(c); cl >= 0 && c == 1<<(cl+minBufShift) {
		*bp = (*bp)[:c]
		p.classes[cl].Put(bp)
	}
}

// collected is what the cleanup of one buffer needs; it must not reach the buffer.
type collected struct {
	budget  *Budget
	mu      *sync.Mutex
	tickets map[uintptr]*bufTicket
	dropped *atomic.Int64
	key     uintptr
	t       *bufTicket
}

// bufCollected runs when a buffer of bufferPool is unreachable: dropped by the pool
// (sync.Pool lets go of what it keeps at collections) or by grpc-go.
func bufCollected(c collected) {
	c.mu.Lock()
	if c.tickets[c.key] == c.t { // a new buffer may have the address by now
		delete(c.tickets, c.key)
	}
	c.mu.Unlock()
	if c.t.out.Swap(false) {
		c.budget.Release(c.t.size)
		c.dropped.Add(1)
	}
}

var errSizeChanged = errors.New("server: message changed while it was encoded")

func errNotProto(v any) error { return fmt.Errorf("server: %T is not a protobuf message", v) }

// codec is the server's protobuf codec. It is grpc-go's own but for where its
// buffers come from: encoded answers are taken from the bufferPool, so that they are
// charged until they are written (grpc-go's codec takes them from a pool of its own).
type codec struct{ pool *bufferPool }

func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	// Answers encoded by a data-path handler (datapath.go).
	switch v := v.(type) {
	case mem.Buffer:
		return mem.BufferSlice{v}, nil
	case mem.BufferSlice:
		return v, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, errNotProto(v)
	}
	size := proto.Size(m)
	// UseCachedSize: the message is not changed between Size and here.
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	bp := c.pool.Get(size)
	b, err := opts.MarshalAppend((*bp)[:0], m)
	if err != nil || len(b) != size {
		c.pool.Put(bp)
		if err == nil {
			err = errSizeChanged
		}
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(bp, c.pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawRequest); ok {
		// Decoded by a data-path handler, in place: it holds the buffer until it
		// returns.
		r.buf = data.MaterializeToBuffer(c.pool)
		r.b = r.buf.ReadOnlyData()
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return errNotProto(v)
	}
	buf := data.MaterializeToBuffer(c.pool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// maxReadWait is how long a request waits for the Budget to hold its read before the
// call is refused with OVERLOADED. Reads of small messages take microseconds and
// reads of large ones as long as their clients take to send them, so a wait this long
// means the budget is full of what others hold.
const maxReadWait = time.Second

// readCap is the message size at which grpc-go stops reading a request, for a
// message size limit of maxRecv. A request over maxRecv is refused by the server
// with an ErrorInfo that says so and names the flag to raise (see readGate.read),
// which it can give only once grpc-go has read the message: grpc-go refuses a
// message over its own limit before reading it, but with a bare RESOURCE_EXHAUSTED,
// written before any of the server's code sees the error. Reading up to twice the
// limit gives the server's answer to a request that is somewhat too large, the usual
// mistake, and keeps the bytes read for one bounded.
func readCap(maxRecv int) int { return 2 * maxRecv }

// readGate admits the reading of request messages against the Budget. gRPC gives a
// message's size only just ahead of the message, and grpc-go then lets the client send
// all of it, so a read reserves the most it may bring in (readCap) while its bytes
// arrive; once it is in, the message stays charged at its own size until the handler
// returns. A read that finds no room waits, not under any lock of grpc-go's, for
// memory to be released; a read goes ahead anyway when no other is in progress (the
// budget may be full of frames of calls that wait to be read, which only reads
// release).
type readGate struct {
	budget  *Budget
	maxRecv int64  // the message size limit
	reserve int64  // what a read reserves: readCap(maxRecv)
	raise   string // how to raise maxRecv, for the error of a message over it
	reading atomic.Int64
	refused func() // counts a read refused for want of memory
}

func newReadGate(b *Budget, maxRecv int, raise string, refused func()) *readGate {
	g := &readGate{budget: b, maxRecv: int64(maxRecv), reserve: int64(readCap(maxRecv)), raise: raise, refused: refused}
	return g
}

// read reads one request of a unary call into m with dec and reports the bytes it
// keeps charged, for the caller to release when it is done with m.
func (g *readGate) read(ctx context.Context, m any, dec func(any) error) (held int64, err error) {
	return g.readAs(ctx, m, dec, false)
}

// readAs is read; stream says whether the message is a stream's, which the handler
// reads when it wants the next one: the read may then wait for the client to send
// it, for as long as the client likes.
func (g *readGate) readAs(ctx context.Context, m any, dec func(any) error, stream bool) (held int64, err error) {
	if g.budget != nil {
		if err := g.enter(ctx, stream); err != nil {
			return 0, toStatus(err)
		}
	}
	if err = dec(m); err == nil {
		held, err = g.decoded(m) // before the reservation goes, so the count never dips below what is held
	}
	if g.budget != nil {
		if !stream {
			g.reading.Add(-1)
		}
		g.budget.Release(g.reserve)
	}
	return held, err
}

// decoded checks a request just decoded into m (or read raw) against the message
// size limit, and charges it to stay held until its handler returns; it reports the
// bytes held, for the caller to release then. The gRPC fast path calls it for the
// messages it decodes, and checkSize alone for the bytes the data path decodes in
// place, which its connection holds charged already.
func (g *readGate) decoded(m any) (held int64, err error) {
	var size int64
	switch m := m.(type) {
	case *rawRequest:
		size, held = int64(len(m.b)), m.held()
	case proto.Message:
		size = int64(proto.Size(m))
		held = size
	}
	if err := g.checkSize(size); err != nil {
		return 0, err
	}
	g.budget.Charge(held)
	return held, nil
}

// checkSize checks a request's size against the message size limit.
func (g *readGate) checkSize(size int64) error {
	if size > g.maxRecv {
		return toStatus(&messageTooLarge{size: size, limit: g.maxRecv, raise: g.raise})
	}
	return nil
}

// enter takes a read's reservation, waiting for memory to be released when the
// budget does not hold it now. The reads of unary calls count in reading, which says
// whether a read will end soon and release what it holds: when none is in progress,
// a unary read goes ahead whatever the budget holds, or nothing might ever be
// released. A stream's read may wait indefinitely for its message, so it neither
// counts nor goes ahead of the budget.
func (g *readGate) enter(ctx context.Context, stream bool) error {
	b := g.budget
	if b.tryAcquire(g.reserve) {
		if !stream {
			g.reading.Add(1)
		}
		return nil
	}
	b.waiters.Add(1)
	defer b.waiters.Add(-1)
	var timeout <-chan time.Time
	for {
		freed := b.waitFreed()
		if b.tryAcquire(g.reserve) {
			if !stream {
				g.reading.Add(1)
			}
			return nil
		}
		if !stream && g.reading.CompareAndSwap(0, 1) {
			b.Charge(g.reserve)
			return nil
		}
		if timeout == nil {
			t := time.NewTimer(maxReadWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			b.refused.Add(1)
			g.refused()
			return errOverloaded
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// unary wraps a unary method's handler so that its request is read through the gate
// and stays charged until the handler returns.
func (g *readGate) unary(h grpc.MethodHandler) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		var held int64
		resp, err := h(srv, ctx, func(m any) error {
			var err error
			held, err = g.read(ctx, m, dec)
			return err
		}, ic)
		g.budget.Release(held)
		return resp, err
	}
}

// stream is the stream interceptor that reads streams' messages through the gate;
// each stays charged until the next is read or the handler returns.
func (g *readGate) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	gs := &gatedStream{ServerStream: ss, gate: g}
	err := h(srv, gs)
	g.budget.Release(gs.held)
	return err
}

type gatedStream struct {
	grpc.ServerStream
	gate *readGate
	held int64
}

func (s *gatedStream) RecvMsg(m any) error {
	s.gate.budget.Release(s.held)
	var err error
	s.held, err = s.gate.readAs(s.Context(), m, s.ServerStream.RecvMsg, true)
	return err
}

// registrar registers services on the gRPC server: every unary method's request is
// read through the gate (a unary request is read before any interceptor runs, by the
// method's handler), and a data-path method gets the handler fast gives it, if any.
type registrar struct {
	*grpc.Server
	gate *readGate
	fast func(fullMethod string) grpc.MethodHandler
}

func (r registrar) RegisterService(sd *grpc.ServiceDesc, impl any) {
	d := *sd
	d.Methods = make([]grpc.MethodDesc, len(sd.Methods))
	for i, m := range sd.Methods {
		if h := r.fast("/" + sd.ServiceName + "/" + m.MethodName); h != nil {
			m.Handler = h
		} else {
			m.Handler = r.gate.unary(m.Handler)
		}
		d.Methods[i] = m
	}
	r.Server.RegisterService(&d, impl)
}
