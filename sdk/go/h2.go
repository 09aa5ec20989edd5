package cachee

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// h2conn is the Client's own transport for its per-key calls (Get, Set, Delete): one
// HTTP/2 connection to the sidecar that speaks gRPC's unary calls and nothing else.
// grpc-go's client spends about 85 allocations and tens of microseconds of CPU on a
// unary call, several times what the sidecar spends answering a Get; this one writes
// a call's frames straight into a buffer shared by the calls in flight (one write
// serves all that are ready), and reads on the calling goroutines.
//
// Reading: one caller at a time holds the read side (c.reader). It reads what the
// server sent into one buffer, a read at a time, takes every whole frame in it, and
// hands each answer to the caller it belongs to. When its own call ends it passes the
// read side to a caller still waiting, or leaves it free for the next caller to take.
// A caller alone on the connection so writes its request and reads its answer itself,
// as a RESP client does: on a machine where waking another thread costs as much as a
// system call, hand-offs between goroutines were most of a call's time. The reader
// also ends the calls whose deadline passes, its own and those of the callers waiting
// for it, which so need no timers of their own. A helper
// goroutine reads when no caller can: while a request waits for a window update, and
// once the connection has been quiet for a while (so that a GOAWAY, a PING or the
// connection's end is seen between calls).
//
// What it reads comes from another process and is checked as grpc-go checks it:
// frames by golang.org/x/net/http2's Framer, header blocks by its HPACK decoder, and
// message lengths against the limit before they are read. FuzzH2Responses feeds it
// arbitrary server bytes.
type h2conn struct {
	nc        net.Conn
	recvLimit int // the largest answer taken

	// The reader's (whoever holds c.reader): what was read and not yet taken, the
	// header block being decoded, and its stream.
	rb     frameBuf
	fr     *http2.Framer
	dec    *hpack.Decoder
	hdrID  uint32
	hdrEnd bool // the block's HEADERS ended the stream
	hdr    h2headers

	mu       sync.Mutex
	cond     sync.Cond // on mu: windows, streams or the connection changed
	wbuf     []byte    // frames to write
	spare    []byte
	hpack    *hpackTable // what the request header blocks added to the server's table
	flushing bool
	err      error // why the connection can no longer be used; set once
	goaway   bool  // the server said it takes no new calls
	nextID   uint32
	calls    map[uint32]*h2call
	active   uint32 // calls in flight
	maxCalls uint32 // the server's MAX_CONCURRENT_STREAMS
	sendWin  int64  // connection-level send window
	initWin  int64  // the server's initial stream window
	maxFrame int    // the largest DATA frame the server takes
	unacked  int64  // connection-level bytes read and not yet given back to the server

	reader   *h2call   // who reads: a call's goroutine, c.helper, or nobody
	helper   *h2call   // stands for the helper goroutine in c.reader
	rdl      time.Time // the read deadline set on nc
	started  uint64    // calls started, for the helper to tell a quiet connection
	sendWait int       // callers waiting for a send window
	firstDL  time.Time // no call in flight has an earlier deadline (zero: none has one)
	woken    int       // callers handed their answers that have not called again

	needRead chan struct{} // wakes the helper to read
	kick     chan struct{} // wakes the writer goroutine to write what the reader queued
	failed   chan struct{} // closed when c.err is set
	done     chan struct{} // closed when nobody reads any more, after c.err is set
	gone     chan struct{} // closed when the connection stops taking calls
	stopped  bool          // gone is closed
}

// Receive windows the Client gives the sidecar: large, so that answers flow without
// waiting for window updates; the reader takes every frame as it comes.
const (
	h2StreamWindow = 1 << 20
	h2ConnWindow   = 16 << 20
)

// h2MaxFrame is the largest frame the Client takes: HTTP/2's default, which it does
// not raise in its SETTINGS.
const h2MaxFrame = 16384

// h2QuietRead is how long the connection has no new call and nobody reading before
// the helper reads, to see what the server sends between calls.
const h2QuietRead = 250 * time.Millisecond

// h2call is one call in flight. The reader fills it, and wakes its caller through
// done when the call is over or the read side is passed to it.
type h2call struct {
	id       uint32
	sendWin  int64
	done     chan struct{} // 1-buffered: a wake-up; the state is under h2conn.mu
	deadline time.Time     // when the reader ends the call, if it has not ended (zero: never)
	over     bool          // the call has its outcome (under h2conn.mu)
	waiting  bool          // its caller waits for another to read its answer (under h2conn.mu)

	// Set by the reader, under h2conn.mu, before done.
	err       error  // the call failed below gRPC (connection, stream reset)
	h2headers        // what the server's header blocks said
	msg       []byte // the answer's message
	prefix    [5]byte
	prefixLen int
	msgLen    int   // -1 until the prefix is read
	unacked   int64 // stream-level bytes read and not yet given back
}

// h2headers are the fields of the server's header blocks that the Client reads.
type h2headers struct {
	httpStatus  int
	grpcStatus  int // -1: none received
	grpcMessage string
	details     []byte // grpc-status-details-bin, decoded
}

// merge takes the fields a block set.
func (h *h2headers) merge(o *h2headers) {
	if o.httpStatus != 0 {
		h.httpStatus = o.httpStatus
	}
	if o.grpcStatus >= 0 {
		h.grpcStatus, h.grpcMessage, h.details = o.grpcStatus, o.grpcMessage, o.details
	}
}

var h2calls = sync.Pool{New: func() any {
	return &h2call{done: make(chan struct{}, 1)}
}}

func (c *h2call) reset() {
	select {
	case <-c.done: // a wake-up the last caller did not need
	default:
	}
	*c = h2call{done: c.done, msg: c.msg[:0], h2headers: h2headers{grpcStatus: -1}, msgLen: -1}
}

// wake wakes the call's caller, unless a wake-up is pending already.
func (c *h2call) wake() {
	select {
	case c.done <- struct{}{}:
	default:
	}
}

// errH2Closed is the error of calls on a connection the Client closed.
var errH2Closed = errors.New("cachee: connection closed")

// h2Target splits a target the Client resolved (unix:///path or host:port) into a
// network and address, with the :authority grpc-go would send; ok is false for a
// target only grpc-go's resolvers understand.
func h2Target(target string) (network, addr, authority string, ok bool) {
	if p, found := strings.CutPrefix(target, "unix://"); found {
		return "unix", p, "localhost", p != ""
	}
	if strings.Contains(target, "://") || strings.HasPrefix(target, "unix:") {
		return "", "", "", false
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return "", "", "", false
	}
	return "tcp", target, target, true
}

// dialH2 connects to the sidecar and starts the connection's reader.
func dialH2(ctx context.Context, network, addr string, recvLimit int) (*h2conn, error) {
	nc, err := dialSock(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return newH2Conn(nc, recvLimit)
}

func newH2Conn(nc net.Conn, recvLimit int) (*h2conn, error) {
	c := &h2conn{
		nc:        nc,
		recvLimit: recvLimit,
		nextID:    1,
		calls:     map[uint32]*h2call{},
		hpack:     newHpackTable(),
		maxCalls:  math.MaxUint32, // until the server's SETTINGS say
		sendWin:   65535,
		initWin:   65535,
		maxFrame:  16384,
		helper:    &h2call{},
		needRead:  make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
		failed:    make(chan struct{}),
		done:      make(chan struct{}),
		gone:      make(chan struct{}),
	}
	c.cond.L = &c.mu
	c.rb.b = make([]byte, 2*h2MaxFrame)
	c.fr = http2.NewFramer(nil, &c.rb)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(h2MaxFrame)
	c.dec = hpack.NewDecoder(4096, c.onField)
	c.dec.SetMaxStringLength(64 << 10)
	// The client preface, its settings, and the connection window it gives.
	b := append([]byte(nil), http2.ClientPreface...)
	b = appendFrameHeader(b, 12, http2.FrameSettings, 0, 0)
	b = appendSetting(b, http2.SettingEnablePush, 0)
	b = appendSetting(b, http2.SettingInitialWindowSize, h2StreamWindow)
	b = appendWindowUpdate(b, 0, h2ConnWindow-65535)
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return nil, err
	}
	go c.helpLoop()
	go c.writeLoop()
	return c, nil
}

// usable reports whether new calls may start on c.
func (c *h2conn) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil && !c.goaway
}

// close ends the connection; calls in flight fail.
func (c *h2conn) close() {
	c.fail(errH2Closed)
	<-c.done
}

// fail marks the connection broken and fails every call in flight.
func (c *h2conn) fail(err error) {
	c.mu.Lock()
	c.failLocked(err)
	c.mu.Unlock()
}

func (c *h2conn) failLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	c.stopTaking()
	c.nc.Close() // a caller reading returns from its read
	close(c.failed)
	for id, call := range c.calls {
		delete(c.calls, id)
		c.end(call, err)
	}
	c.cond.Broadcast()
}

// stopTaking says the connection takes no new calls; c.mu is held.
func (c *h2conn) stopTaking() {
	if !c.stopped {
		c.stopped = true
		close(c.gone)
	}
}

// errWentAway ends a connection the server left once its last call has ended.
var errWentAway = errors.New("the sidecar went away")

// end gives a call its outcome; c.mu is held and the call is out of the map. A
// connection the server is leaving is closed once its last call has ended.
func (c *h2conn) end(call *h2call, err error) {
	call.err = err
	call.over = true
	if call.waiting {
		c.woken++
	}
	c.active--
	c.cond.Broadcast()
	call.wake()
	if c.goaway && len(c.calls) == 0 {
		c.failLocked(errWentAway)
	}
}

// h2Method is a method's path and what every call of it sends with it; the
// connection's hpackTable encodes them.
type h2Method struct {
	path, authority string
	token           string // the bearer token, "" for none
}

func newH2Method(path, authority, token string) *h2Method {
	return &h2Method{path: path, authority: authority, token: token}
}

// call makes one unary call: a request of reqLen bytes, which encode appends to the
// buffer it is given, and the answer's message in the returned call, which the
// caller returns with putCall once it has read it. deadline, when not zero, is sent
// as grpc-timeout and ends the wait.
func (c *h2conn) call(ctx context.Context, deadline time.Time, m *h2Method, reqLen int, encode func([]byte) []byte) (*h2call, error) {
	call := h2calls.Get().(*h2call)
	call.reset()
	c.mu.Lock()
	for c.err == nil && !c.goaway && c.active >= c.maxCalls {
		c.cond.Wait()
	}
	if c.err != nil || c.goaway || c.nextID > math.MaxInt32 {
		c.mu.Unlock()
		putCall(call)
		return nil, grpcstatus.Error(codes.Unavailable, "cachee: connection to the sidecar is closing")
	}
	call.id = c.nextID
	c.nextID += 2
	c.started++
	if call.deadline = deadline; !deadline.IsZero() && (c.firstDL.IsZero() || deadline.Before(c.firstDL)) {
		c.firstDL = deadline
		if c.reader != nil && (c.rdl.IsZero() || deadline.Before(c.rdl)) {
			c.setReadDeadlineLocked(deadline) // the reader ends this call in time
		}
	}
	call.sendWin = c.initWin
	c.calls[call.id] = call
	c.active++

	// HEADERS, in one frame: the block is small (the token is at most a few KiB).
	hs := len(c.wbuf)
	c.wbuf = appendFrameHeader(c.wbuf, 0, http2.FrameHeaders, http2.FlagHeadersEndHeaders, call.id)
	timeout := time.Duration(-1)
	if !deadline.IsZero() {
		timeout = max(time.Until(deadline), 0)
	}
	c.wbuf = c.hpack.appendHeaders(c.wbuf, m, timeout)
	putUint24(c.wbuf[hs:], len(c.wbuf)-hs-9)

	n := 5 + reqLen
	if int64(n) <= min(call.sendWin, c.sendWin) && n <= c.maxFrame {
		c.wbuf = appendFrameHeader(c.wbuf, n, http2.FrameData, http2.FlagDataEndStream, call.id)
		c.wbuf = append(c.wbuf, 0, byte(reqLen>>24), byte(reqLen>>16), byte(reqLen>>8), byte(reqLen))
		c.wbuf = encode(c.wbuf)
		call.sendWin -= int64(n)
		c.sendWin -= int64(n)
		if c.woken > 0 {
			c.woken--
		}
		if c.woken > 0 && !c.flushing {
			// Other callers the reader handed their answers with this one's may
			// be about to call again: let them add their frames, so that one
			// write takes them all.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		c.flushLocked()
	} else {
		msg := encode(binary.BigEndian.AppendUint32([]byte{0}, uint32(reqLen)))
		c.sendLocked(call, msg)
	}
	c.mu.Unlock()
	return call, c.wait(ctx, deadline, call)
}

// sendLocked sends a request larger than a frame, or than the windows allow now.
func (c *h2conn) sendLocked(call *h2call, msg []byte) {
	for len(msg) > 0 && c.err == nil && c.calls[call.id] == call {
		k := int(min(int64(len(msg)), call.sendWin, c.sendWin, int64(c.maxFrame)))
		if k <= 0 {
			if len(c.wbuf) > 0 && !c.flushing {
				// flushLocked lets go of mu while it writes: a window update may
				// come meanwhile, so look again before waiting for one.
				c.flushLocked()
				continue
			}
			// A window update comes only if someone reads.
			if c.reader == nil {
				c.wakeHelper()
			}
			c.sendWait++
			c.cond.Wait()
			c.sendWait--
			continue
		}
		var flags http2.Flags
		if k == len(msg) {
			flags = http2.FlagDataEndStream
		}
		c.wbuf = appendFrameHeader(c.wbuf, k, http2.FrameData, flags, call.id)
		c.wbuf = append(c.wbuf, msg[:k]...)
		msg = msg[k:]
		call.sendWin -= int64(k)
		c.sendWin -= int64(k)
	}
	c.flushLocked()
}

// flushLocked writes what is buffered, unless another caller is writing, in which
// case that one writes it too: one write serves every call that is ready.
func (c *h2conn) flushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	for len(c.wbuf) > 0 && c.err == nil {
		b := c.wbuf
		c.wbuf = c.spare[:0]
		c.mu.Unlock()
		_, err := c.nc.Write(b)
		c.mu.Lock()
		c.spare = b[:0]
		if err != nil {
			c.flushing = false
			c.mu.Unlock()
			c.fail(err)
			c.mu.Lock()
			return
		}
	}
	c.wbuf = c.wbuf[:0]
	c.flushing = false
}

// kickLocked has what is buffered written by the writer goroutine, unless a caller
// is writing (and so writes it too). The reader never writes while it holds the read
// side: a write can block until the server reads, and a server (grpc-go's) stops
// reading while it has frames it cannot write to a client that is not reading.
func (c *h2conn) kickLocked() {
	if !c.flushing && len(c.wbuf) > 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// writeLoop writes what the reader queues, until the reader stops.
func (c *h2conn) writeLoop() {
	for {
		select {
		case <-c.kick:
			c.mu.Lock()
			c.flushLocked()
			c.mu.Unlock()
		case <-c.done:
			return
		}
	}
}

// wait waits for the call to end, or for ctx or the deadline to end it: reading
// itself when nobody else reads, else until the reader hands it the answer or the
// read side.
func (c *h2conn) wait(ctx context.Context, deadline time.Time, call *h2call) error {
	c.mu.Lock()
	for !call.over {
		if c.reader == nil {
			c.reader = call
		}
		if c.reader == call {
			c.mu.Unlock()
			c.readFor(ctx, deadline, call)
			c.mu.Lock()
			continue
		}
		if c.reader == c.helper {
			// The helper reads only for want of a caller: end its read, and it
			// hands this caller the read side.
			c.setReadDeadlineLocked(aLongTimeAgo)
		}
		// The reader ends the call when its deadline passes (expireLocked): a
		// caller waiting for another to read needs no timer of its own.
		call.waiting = true
		c.mu.Unlock()
		var err error
		select {
		case <-call.done:
		case <-ctx.Done():
			err = grpcstatus.FromContextError(ctx.Err()).Err()
		}
		c.mu.Lock()
		call.waiting = false
		if err != nil && !call.over {
			c.abandonLocked(call, err)
			c.flushLocked()
		}
	}
	c.mu.Unlock()
	return nil
}

// abandonLocked ends a call its caller gave up on, and resets its stream; c.mu is
// held. The caller then writes the reset (flushLocked), holding the read side no
// longer.
func (c *h2conn) abandonLocked(call *h2call, err error) {
	delete(c.calls, call.id)
	c.wbuf = appendRSTStream(c.wbuf, call.id, http2.ErrCodeCancel)
	c.end(call, err)
	if c.reader == call {
		c.releaseLocked()
	}
}

// readFor reads, holding the read side, until call is over: answered, failed, or
// given up on once ctx or the deadline ends it. The connection's read deadline is the
// first deadline of the calls in flight, so that the reader also ends the calls of
// the callers waiting for it when theirs pass; ctx's cancellation moves it to the
// past. It gives the read side on before it returns.
func (c *h2conn) readFor(ctx context.Context, deadline time.Time, call *h2call) {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.interrupt(call) })
	}
	timedOut := false
	for {
		c.takeFrames()
		c.mu.Lock()
		if timedOut {
			c.expireLocked()
		}
		// interrupt may have moved the deadline before this caller's read began.
		if (timedOut || c.rdl.Equal(aLongTimeAgo)) && !call.over {
			if err := expired(ctx, deadline); err != nil {
				c.abandonLocked(call, err)
			}
		}
		if call.over {
			if c.reader == call {
				c.releaseLocked()
			}
			c.flushLocked() // a reset abandonLocked queued
			c.mu.Unlock()
			break
		}
		c.armLocked(c.firstDL, timedOut)
		c.mu.Unlock()
		timedOut = c.fill()
	}
	if stop != nil {
		stop()
	}
}

// expired is the error of a call whose ctx or deadline has ended, or nil.
func expired(ctx context.Context, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return grpcstatus.FromContextError(err).Err()
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return grpcstatus.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	return nil
}

// expireLocked ends the calls whose deadline has passed, the reader's own or those of
// callers waiting for it, and finds the next deadline; c.mu is held, by the reader.
func (c *h2conn) expireLocked() {
	if c.firstDL.IsZero() {
		return
	}
	now := time.Now()
	if now.Before(c.firstDL) {
		return
	}
	c.firstDL = time.Time{}
	for _, call := range c.calls {
		if call.deadline.IsZero() {
			continue
		}
		if !now.Before(call.deadline) {
			c.abandonLocked(call, grpcstatus.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error()))
		} else if c.firstDL.IsZero() || call.deadline.Before(c.firstDL) {
			c.firstDL = call.deadline
		}
	}
	c.kickLocked() // the resets, which the reader does not write itself
}

// aLongTimeAgo, as a read deadline, ends a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// interrupt ends the read call's caller is waiting in, if it still reads, so that it
// sees its ctx has ended.
func (c *h2conn) interrupt(call *h2call) {
	c.mu.Lock()
	if c.reader == call {
		c.setReadDeadlineLocked(aLongTimeAgo)
	}
	c.mu.Unlock()
}

// setReadDeadlineLocked sets the connection's read deadline, unless it is set so.
// c.mu is held: interrupt may set it from another goroutine.
func (c *h2conn) setReadDeadlineLocked(t time.Time) {
	if !t.Equal(c.rdl) {
		c.rdl = t
		c.nc.SetReadDeadline(t)
	}
}

// armLocked has the read deadline end a read by deadline: it keeps a deadline set
// before it (which at worst ends one read early: the read is then made again, with
// force), so that calls one after another with the same timeout do not each set one.
func (c *h2conn) armLocked(deadline time.Time, force bool) {
	if force || c.rdl.Equal(aLongTimeAgo) || !deadline.IsZero() && (c.rdl.IsZero() || c.rdl.After(deadline)) {
		c.setReadDeadlineLocked(deadline)
	}
}

// fill reads once from the connection, holding the read side, and reports whether
// the read timed out; any other error fails the connection.
func (c *h2conn) fill() (timedOut bool) {
	err := c.rb.fill(c.nc)
	if err == nil {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	c.fail(fmt.Errorf("reading from the sidecar: %w", err))
	return false
}

// takeFrames takes every whole frame read, holding the read side.
func (c *h2conn) takeFrames() {
	for c.rb.whole() {
		f, err := c.fr.ReadFrame()
		if err == nil {
			err = c.onFrame(f)
		} else {
			err = fmt.Errorf("reading from the sidecar: %w", err)
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// releaseLocked gives up the read side: to a caller waiting for its answer, which
// then reads; else to the helper, when a request waits for a window update; else to
// nobody, and the next caller to wait takes it. c.mu is held.
func (c *h2conn) releaseLocked() {
	c.reader = nil
	if c.err != nil {
		c.cond.Broadcast() // the helper waits for the reader to leave
		return
	}
	if !c.handOffLocked() && c.sendWait > 0 {
		c.wakeHelper()
	}
}

// handOffLocked gives the read side to a caller waiting for its answer, if one is,
// and wakes it. c.mu is held.
func (c *h2conn) handOffLocked() bool {
	for _, w := range c.calls {
		if w.waiting {
			w.waiting = false
			c.reader = w
			w.wake()
			return true
		}
	}
	return false
}

func (c *h2conn) wakeHelper() {
	select {
	case c.needRead <- struct{}{}:
	default:
	}
}

// helpLoop reads when no caller can: when a request waits for a window update, and
// when the connection has been quiet (no new call, nobody reading) for h2QuietRead.
// Once the connection has failed and its last reader has left, it closes c.done.
func (c *h2conn) helpLoop() {
	defer close(c.done)
	t := time.NewTimer(h2QuietRead)
	defer t.Stop()
	var seen uint64
	for {
		select {
		case <-c.needRead:
		case <-t.C:
			t.Reset(h2QuietRead)
			c.mu.Lock()
			quiet := c.started == seen && c.reader == nil
			seen = c.started
			c.mu.Unlock()
			if !quiet {
				continue
			}
		case <-c.failed:
			c.mu.Lock()
			for c.reader != nil {
				c.cond.Wait()
			}
			c.mu.Unlock()
			return
		}
		c.helpRead()
	}
}

// helpRead holds the read side, if nobody does, and reads until a caller can take
// it: a caller waits for its answer (it is handed the read side), or a call started
// and none waits for a window update (the read side is left free).
func (c *h2conn) helpRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader != nil || c.err != nil {
		return
	}
	c.reader = c.helper
	start := c.started
	timedOut := false
	for {
		c.mu.Unlock()
		c.takeFrames()
		c.mu.Lock()
		if timedOut {
			c.expireLocked() // a request that waits for a window may run out of time
		}
		if c.err != nil || c.handOffLocked() {
			break
		}
		if c.sendWait == 0 && c.started != start {
			c.reader = nil
			return
		}
		c.armLocked(c.firstDL, timedOut)
		c.mu.Unlock()
		timedOut = c.fill()
		c.mu.Lock()
	}
	if c.reader == c.helper {
		c.releaseLocked()
	}
}

// putCall returns a call for reuse.
func putCall(call *h2call) {
	if cap(call.msg) > 64<<10 {
		call.msg = nil // do not keep large answers' buffers
	}
	h2calls.Put(call)
}

// result is the call's outcome: its answer's message, or the error gRPC gave.
func (call *h2call) result() ([]byte, error) {
	if call.err != nil {
		if _, ok := grpcstatus.FromError(call.err); ok {
			return nil, call.err
		}
		return nil, grpcstatus.Error(codes.Unavailable, "cachee: "+call.err.Error())
	}
	if call.grpcStatus < 0 {
		if call.httpStatus != 0 && call.httpStatus != 200 {
			return nil, grpcstatus.Error(httpCode(call.httpStatus), "cachee: HTTP status "+strconv.Itoa(call.httpStatus))
		}
		return nil, grpcstatus.Error(codes.Internal, "cachee: the sidecar ended the call without a status")
	}
	if call.grpcStatus != 0 {
		st := &status.Status{Code: int32(call.grpcStatus), Message: call.grpcMessage}
		if len(call.details) > 0 {
			var d status.Status
			if proto.Unmarshal(call.details, &d) == nil && d.GetCode() == st.Code {
				st = &d
			}
		}
		return nil, grpcstatus.ErrorProto(st)
	}
	if call.msgLen < 0 {
		return nil, grpcstatus.Error(codes.Internal, "cachee: the sidecar answered without a message")
	}
	return call.msg, nil
}

// httpCode is gRPC's code for a call answered with an HTTP status other than 200.
func httpCode(s int) codes.Code {
	switch s {
	case 400:
		return codes.Internal
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.Unimplemented
	case 429, 502, 503, 504:
		return codes.Unavailable
	}
	return codes.Unknown
}

func (c *h2conn) onFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.HeadersFrame:
		c.hdrID, c.hdrEnd, c.hdr = f.StreamID, f.StreamEnded(), h2headers{grpcStatus: -1}
		return c.onHeaderBlock(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.ContinuationFrame:
		// The Framer has checked that it continues the last HEADERS.
		return c.onHeaderBlock(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.RSTStreamFrame:
		code := codes.Internal
		switch f.ErrCode {
		case http2.ErrCodeRefusedStream:
			code = codes.Unavailable // not processed: safe to try again
		case http2.ErrCodeCancel:
			code = codes.Canceled
		}
		c.endStream(f.StreamID, grpcstatus.Error(code, "cachee: the sidecar reset the call: "+f.ErrCode.String()))
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return c.onSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.mu.Lock()
			c.wbuf = appendFrameHeader(c.wbuf, 8, http2.FramePing, http2.FlagPingAck, 0)
			c.wbuf = append(c.wbuf, f.Data[:]...)
			c.kickLocked()
			c.mu.Unlock()
		}
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.goaway = true
		c.stopTaking()
		// Calls the server will not answer failed unprocessed: they may be tried again.
		for id, call := range c.calls {
			if id > f.LastStreamID {
				delete(c.calls, id)
				c.end(call, grpcstatus.Error(codes.Unavailable, "cachee: the sidecar is going away"))
			}
		}
		if len(c.calls) == 0 {
			c.mu.Unlock()
			return errors.New("the sidecar went away")
		}
		c.mu.Unlock()
	case *http2.WindowUpdateFrame:
		c.mu.Lock()
		if f.StreamID == 0 {
			c.sendWin += int64(f.Increment)
		} else if call := c.calls[f.StreamID]; call != nil {
			call.sendWin += int64(f.Increment)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	return nil
}

func (c *h2conn) onSettings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxCalls = s.Val
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.initWin
			c.initWin = int64(s.Val)
			for _, call := range c.calls {
				call.sendWin += delta
			}
		case http2.SettingMaxFrameSize:
			c.maxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			c.hpack.setMax(s.Val)
		}
		return nil
	})
	c.wbuf = appendFrameHeader(c.wbuf, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	c.cond.Broadcast()
	c.kickLocked()
	return err
}

// onHeaderBlock decodes a header block, whatever its stream (the decoder's table
// follows every block), and gives what it said to its call, if that still waits.
func (c *h2conn) onHeaderBlock(frag []byte, ended bool) error {
	if _, err := c.dec.Write(frag); err != nil {
		return fmt.Errorf("a header block from the sidecar: %w", err)
	}
	if !ended {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return fmt.Errorf("a header block from the sidecar: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	call := c.calls[c.hdrID]
	if call == nil {
		return nil
	}
	call.merge(&c.hdr)
	if c.hdrEnd {
		c.endLocked(call, nil)
	}
	return nil
}

// onField takes one header field of the block being decoded.
func (c *h2conn) onField(f hpack.HeaderField) {
	switch f.Name {
	case ":status":
		c.hdr.httpStatus, _ = strconv.Atoi(f.Value)
	case "grpc-status":
		if n, err := strconv.Atoi(f.Value); err == nil && n >= 0 {
			c.hdr.grpcStatus = n
		} else {
			c.hdr.grpcStatus = int(codes.Unknown)
		}
	case "grpc-message":
		c.hdr.grpcMessage = decodeGRPCMessage(f.Value)
	case "grpc-status-details-bin":
		v := strings.TrimRight(f.Value, "=")
		c.hdr.details, _ = base64.RawStdEncoding.DecodeString(v)
	}
}

// decodeGRPCMessage undoes the percent-encoding of grpc-message.
func decodeGRPCMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// onData takes a DATA frame: the answer's message, after its 5-byte prefix.
func (c *h2conn) onData(f *http2.DataFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The whole frame counts against the connection's window, whatever its stream.
	if c.unacked += int64(f.Length); c.unacked >= h2ConnWindow/4 {
		c.wbuf = appendWindowUpdate(c.wbuf, 0, uint32(c.unacked))
		c.unacked = 0
		c.kickLocked()
	}
	call := c.calls[f.StreamID]
	if call == nil {
		return nil // a call that gave up
	}
	if err := c.take(call, f.Data()); err != nil {
		delete(c.calls, call.id)
		c.wbuf = appendRSTStream(c.wbuf, call.id, http2.ErrCodeCancel)
		c.end(call, err)
		c.kickLocked()
		return nil
	}
	if f.StreamEnded() {
		c.endLocked(call, nil) // without trailers: result reports the missing status
		return nil
	}
	if call.unacked += int64(f.Length); call.unacked >= h2StreamWindow/2 {
		c.wbuf = appendWindowUpdate(c.wbuf, call.id, uint32(call.unacked))
		call.unacked = 0
		c.kickLocked()
	}
	return nil
}

// take adds DATA bytes to the call's answer. An answer is one message: its 5-byte
// prefix (a flag that must say uncompressed, and the length), then the message.
func (c *h2conn) take(call *h2call, b []byte) error {
	for len(b) > 0 {
		if call.msgLen < 0 {
			k := copy(call.prefix[call.prefixLen:], b)
			call.prefixLen += k
			b = b[k:]
			if call.prefixLen < 5 {
				return nil
			}
			if call.prefix[0] != 0 {
				return grpcstatus.Error(codes.Internal, "cachee: the sidecar sent a compressed answer, which the Client did not ask for")
			}
			n := binary.BigEndian.Uint32(call.prefix[1:])
			if int64(n) > int64(c.recvLimit) {
				return grpcstatus.Errorf(codes.ResourceExhausted, "cachee: the answer is %d bytes, over the Client's limit of %d", n, c.recvLimit)
			}
			call.msgLen = int(n)
			if cap(call.msg) < call.msgLen {
				call.msg = make([]byte, 0, call.msgLen)
			}
			continue
		}
		if len(call.msg)+len(b) > call.msgLen {
			return grpcstatus.Error(codes.Internal, "cachee: the sidecar sent more than one message in a unary answer")
		}
		call.msg = append(call.msg, b...)
		b = nil
	}
	return nil
}

// endStream ends a call whose stream the server reset.
func (c *h2conn) endStream(id uint32, err error) {
	c.mu.Lock()
	if call := c.calls[id]; call != nil {
		c.endLocked(call, err)
	}
	c.mu.Unlock()
}

// endLocked ends a call whose stream the server ended; c.mu is held.
func (c *h2conn) endLocked(call *h2call, err error) {
	delete(c.calls, call.id)
	if err == nil && call.msgLen >= 0 && len(call.msg) < call.msgLen {
		err = grpcstatus.Error(codes.Internal, "cachee: the sidecar ended the call in the middle of its answer")
	}
	c.end(call, err)
}

// Frame and header encoding (the header blocks' fields: hpacktab.go).

func appendFrameHeader(b []byte, length int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}

func putUint24(b []byte, n int) { b[0], b[1], b[2] = byte(n>>16), byte(n>>8), byte(n) }

func appendSetting(b []byte, id http2.SettingID, v uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(b, uint16(id)), v)
}

func appendWindowUpdate(b []byte, id, incr uint32) []byte {
	return binary.BigEndian.AppendUint32(appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, id), incr)
}

func appendRSTStream(b []byte, id uint32, code http2.ErrCode) []byte {
	return binary.BigEndian.AppendUint32(appendFrameHeader(b, 4, http2.FrameRSTStream, 0, id), uint32(code))
}

// appendHpackInt appends v as an HPACK integer with an n-bit prefix, the prefix's
// byte holding first's other bits.
func appendHpackInt(b []byte, first byte, n uint, v int) []byte {
	max := 1<<n - 1
	if v < max {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(max))
	for v -= max; v >= 128; v >>= 7 {
		b = append(b, byte(v&0x7f|0x80))
	}
	return append(b, byte(v))
}

// The first bits of the HPACK literals the Client writes: without indexing, never
// indexed (for a secret, which intermediaries must not index either), and added to
// the table (hpacktab.go).
const (
	hpackLiteral      = 0x00
	hpackNeverIndexed = 0x10
	hpackIncremental  = 0x40
)

// appendLiteral appends a header field as a literal of the kind given: its name as
// the table's entry nameIndex, or, when that is 0, as the string name.
func appendLiteral(b []byte, kind byte, nameIndex int, name, value string) []byte {
	b = appendLiteralName(b, kind, nameIndex, name)
	b = appendHpackInt(b, 0, 7, len(value))
	return append(b, value...)
}

// appendLiteralName appends the start of a literal field: its kind, and its name as
// an index (an integer of 6 bits' prefix for a literal added to the table, 4 for the
// others: RFC 7541, 6.2) or, for index 0, as a string.
func appendLiteralName(b []byte, kind byte, nameIndex int, name string) []byte {
	prefix := uint(4)
	if kind == hpackIncremental {
		prefix = 6
	}
	b = appendHpackInt(b, kind, prefix, nameIndex)
	if nameIndex == 0 {
		b = appendHpackInt(b, 0, 7, len(name))
		b = append(b, name...)
	}
	return b
}

// appendTimeout appends a grpc-timeout field of d: a literal of the kind given, whose
// name is the table's entry nameIndex, or a string when that is 0.
func appendTimeout(b []byte, kind byte, nameIndex int, d time.Duration) []byte {
	b = appendLiteralName(b, kind, nameIndex, "grpc-timeout")
	var digits [16]byte
	v := appendTimeoutValue(digits[:0], d)
	b = append(b, byte(len(v)))
	return append(b, v...)
}

// timeoutValue is grpc-timeout's value for d.
func timeoutValue(d time.Duration) string { return string(appendTimeoutValue(nil, d)) }

// appendTimeoutValue appends grpc-timeout's value for d: at most eight digits and a
// unit, rounded up.
func appendTimeoutValue(b []byte, d time.Duration) []byte {
	d = max(d, time.Microsecond)
	var v int64
	var unit byte
	switch {
	case d < 1e8*time.Microsecond:
		v, unit = int64((d+time.Microsecond-1)/time.Microsecond), 'u'
	case d < 1e8*time.Millisecond:
		v, unit = int64((d+time.Millisecond-1)/time.Millisecond), 'm'
	default:
		v, unit = min(int64((d+time.Second-1)/time.Second), 99999999), 'S'
	}
	return append(strconv.AppendInt(b, v, 10), unit)
}

// frameBuf holds what was read from the connection and not yet taken. It is read a
// read at a time, as much as the connection has, and the Framer reads whole frames
// out of it: a read the deadline ends leaves no frame half taken.
type frameBuf struct {
	b    []byte
	r, w int // b[r:w] is unread
}

// Read gives the Framer bytes of a whole frame (whole says one is there).
func (f *frameBuf) Read(p []byte) (int, error) {
	if f.r == f.w {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, f.b[f.r:f.w])
	f.r += n
	return n, nil
}

// whole reports whether a whole frame is buffered, or the header of one larger than
// the Client takes (which the Framer refuses).
func (f *frameBuf) whole() bool {
	n := f.w - f.r
	if n < 9 {
		return false
	}
	l := int(f.b[f.r])<<16 | int(f.b[f.r+1])<<8 | int(f.b[f.r+2])
	return l > h2MaxFrame || n >= 9+l
}

// fill reads once into the buffer, after making room for the rest of the frame
// under way.
func (f *frameBuf) fill(nc net.Conn) error {
	if f.r == f.w {
		f.r, f.w = 0, 0
	} else if len(f.b)-f.r < 9+h2MaxFrame || len(f.b)-f.w < 4096 {
		f.w = copy(f.b, f.b[f.r:f.w])
		f.r = 0
	}
	n, err := nc.Read(f.b[f.w:])
	f.w += n
	return err
}
