package h2fast

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	initialWindow = 65535         // every window's size until SETTINGS or WINDOW_UPDATE say otherwise
	maxWindow     = 1<<31 - 1     // the largest a window may grow (RFC 9113 §6.9.1)
	maxFrameRead  = 16384         // the largest frame we accept: the default, which we do not raise
	prefixLen     = 5             // a gRPC message's prefix: compressed flag and length
	maxPingStrike = 2             // grpc-go's maxPingStrikes
	noStreamPing  = 2 * time.Hour // grpc-go's defaultPingTimeout: pings without a stream, when not permitted
)

// ErrClosed is what Feed returns once the connection is over.
var ErrClosed = errors.New("h2fast: connection closed")

// Conn is the server side of one HTTP/2 connection. Its methods are called from one
// goroutine at a time (an event loop's), except where a method says otherwise.
type Conn struct {
	cfg Config
	h   Handler

	in      []byte // received bytes not yet processed: at most one incomplete frame, unless stalled
	out     []byte // bytes to write to the client, from outPos
	outPos  int
	rd      frameReader
	fr      *http2.Framer
	enc     *hpack.Encoder
	dec     *hpack.Decoder
	hb      headerBlock // the request header block being read (headers.go)
	hbuf    bytes.Buffer
	hf      []hpack.HeaderField // scratch for building header lists
	scratch []byte              // scratch for answer messages: a prefix's room, then the message

	preface, settings bool // the client preface, and the client's first SETTINGS, were read
	streams           map[uint32]*stream
	spare             *stream      // a fast stream over and done with, for the next to reuse (closeStream)
	lastID            uint32       // the highest stream id the client opened
	recent            [32]closedID // streams closed lately, to tell closed from never opened
	recentPos         int
	active            int // streams open in the client's view
	timed             int // fast streams with a deadline, not yet complete
	zombies           int // calls the client reset whose handler has not finished
	running           int // calls given to the Handler and not finished (zombies included)

	sendWindow   int64 // what the client lets us send on the connection
	peerInitial  int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int   // the client's SETTINGS_MAX_FRAME_SIZE
	recvWindow   int64 // what the client may still send on the connection
	recvUnacked  int64 // bytes received and consumed, not yet returned with WINDOW_UPDATE
	blocked      []*stream

	pingStrikes int
	lastPing    time.Time
	sentSince   bool // HEADERS or DATA sent since the last ping: the next one is not a strike

	goAway   int // 0: none; 1: the first GOAWAY of a graceful shutdown is out; 2: the last one
	goAwayID uint32
	stalled  bool // input is waiting for the handler quota or for output to drain
	busy     bool // processing input: resume must not start over
	closed   bool
	err      error

	held     int64 // bytes charged to cfg.Memory by the streams
	outHeld  int64 // bytes charged to cfg.Memory for out's capacity past outFree
	backends []*Backend
}

var shutdownPing = [8]byte{'c', 'a', 'c', 'h', 'e', 'e', 'g', 'a'}

// frameReader lets the Framer read a frame out of a byte slice.
type frameReader struct{ b []byte }

func (r *frameReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// outWriter appends what the Framer writes to the connection's output.
type outWriter struct{ c *Conn }

func (w outWriter) Write(p []byte) (int, error) {
	w.c.out = append(w.c.out, p...)
	if cap(w.c.out) > outFree+int(w.c.outHeld) {
		w.c.chargeOut()
	}
	return len(p), nil
}

// outFree is the capacity of the output buffer that is not charged to the memory
// budget: what the owner's charge for the connection covers.
const outFree = 32 << 10

// chargeOut charges the memory budget for the output buffer's capacity past outFree,
// which large answers make it grow to (up to about MaxPending and a frame), until it
// is written out and dropped.
func (c *Conn) chargeOut() {
	n := int64(cap(c.out)-outFree) - c.outHeld
	if n <= 0 {
		return
	}
	c.outHeld += n
	if c.cfg.Memory != nil {
		c.cfg.Memory.Charge(n)
	}
}

// dropOut lets the output buffer go, with its charge.
func (c *Conn) dropOut() {
	c.out, c.outPos = nil, 0
	if c.outHeld > 0 && c.cfg.Memory != nil {
		c.cfg.Memory.Release(c.outHeld)
	}
	c.outHeld = 0
}

// NewConn returns a connection whose first output is the server's SETTINGS. Its input
// starts with the client preface.
func NewConn(cfg Config, h Handler) *Conn {
	cfg = cfg.withDefaults()
	c := &Conn{
		cfg:          cfg,
		h:            h,
		streams:      make(map[uint32]*stream),
		sendWindow:   initialWindow,
		peerInitial:  initialWindow,
		peerMaxFrame: maxFrameRead,
		recvWindow:   int64(cfg.ConnWindow),
	}
	c.fr = http2.NewFramer(outWriter{c}, &c.rd)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(maxFrameRead)
	c.dec = hpack.NewDecoder(4096, c.onField)
	c.dec.SetMaxStringLength(int(cfg.MaxHeaderListSize))
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxFrameRead},
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: cfg.MaxConcurrentStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: cfg.MaxHeaderListSize},
	)
	if d := cfg.ConnWindow - initialWindow; d > 0 {
		c.fr.WriteWindowUpdate(0, d)
	}
	return c
}

// Output is what waits to be written to the client.
func (c *Conn) Output() []byte { return c.out[c.outPos:] }

// Wrote says that the first n bytes of Output were written.
func (c *Conn) Wrote(n int) {
	c.outPos += n
	if c.outPos == len(c.out) {
		c.out, c.outPos = c.out[:0], 0
		if cap(c.out) > outFree {
			c.dropOut() // grown for large answers: not kept, as an idle connection holds little
		}
	} else if c.outPos > len(c.out)/2 {
		c.out = c.out[:copy(c.out, c.out[c.outPos:])]
		c.outPos = 0
	}
	if c.pending() < c.cfg.MaxPending/2 {
		c.flushBlocked()
		c.resume()
	}
}

// pending is the bytes written to the connection's output and not yet to the socket.
func (c *Conn) pending() int { return len(c.out) - c.outPos }

// WantsRead reports whether the connection takes more input now: not while it is over,
// nor while what it has waits (for its output to drain, or for handlers to finish).
func (c *Conn) WantsRead() bool { return c.err == nil && !c.closed && !c.stalled && !c.outputFull() }

func (c *Conn) outputFull() bool {
	if c.pending() > c.cfg.MaxPending {
		return true
	}
	for _, b := range c.backends {
		if b.pending() > c.cfg.MaxPending {
			return true
		}
	}
	return false
}

// Err is why the connection must close once its output is written, or nil.
func (c *Conn) Err() error { return c.err }

// Done reports whether the connection has nothing left to do: it failed, or it was
// shut down and every stream has finished. The owner closes it once Output is written.
func (c *Conn) Done() bool {
	return c.err != nil || c.goAway == 2 && c.active == 0 && c.running == 0
}

// Busy reports whether a stream is open or a call is with the Handler.
func (c *Conn) Busy() bool { return c.active > 0 || c.running > 0 }

// Feed processes bytes read from the client. An error means the connection is over;
// its output (a GOAWAY, as a rule) should still be written before closing.
func (c *Conn) Feed(p []byte) error {
	if c.err != nil || c.closed {
		return c.errOrClosed()
	}
	if len(c.in) == 0 {
		n := c.process(p)
		c.in = append(c.in, p[n:]...)
	} else {
		c.in = append(c.in, p...)
		c.in = c.in[:copy(c.in, c.in[c.process(c.in):])]
	}
	if len(c.in) == 0 && cap(c.in) > 2*maxFrameRead {
		c.in = nil
	}
	return c.err
}

func (c *Conn) errOrClosed() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// resume processes input that waited, once what it waited for has happened.
func (c *Conn) resume() {
	if !c.stalled || c.busy || c.err != nil || c.closed {
		return
	}
	c.stalled = false
	c.in = c.in[:copy(c.in, c.in[c.process(c.in):])]
}

// process reads the complete frames at the start of b and reports how many bytes it
// consumed.
func (c *Conn) process(b []byte) int {
	c.busy = true
	defer func() { c.busy = false }()
	pos := 0
	if !c.preface {
		n := min(len(b), len(http2.ClientPreface))
		if string(b[:n]) != http2.ClientPreface[:n] {
			c.fail(http2.ErrCodeProtocol, "invalid connection preface")
			return len(b)
		}
		if n < len(http2.ClientPreface) {
			return 0
		}
		c.preface, pos = true, n
	}
	for c.err == nil && !c.closed {
		if c.outputFull() {
			c.stalled = true
			break
		}
		n, ok := c.nextFrame(b[pos:])
		if !ok {
			break
		}
		if c.zombies > 0 && c.active+c.zombies >= int(c.cfg.MaxConcurrentStreams) && c.opensStream(b[pos:]) {
			c.stalled = true // as grpc-go's handler quota: reset calls still running count
			break
		}
		c.rd.b = b[pos : pos+n]
		f, err := c.fr.ReadFrame()
		pos += n - len(c.rd.b)
		if err != nil {
			c.readError(f, err)
			continue
		}
		c.frame(f)
	}
	return pos
}

// nextFrame reports the length of the frame at the start of b, with the CONTINUATION
// frames that complete a header block, or false if they have not all arrived. A header
// block in pieces is waited for whole, so that the Framer decodes it at once, up to a
// bound on what it may take, past which the connection ends.
func (c *Conn) nextFrame(b []byte) (int, bool) {
	n, ok, over := frameAt(b, 2*int(c.cfg.MaxHeaderListSize)+maxFrameRead)
	if over {
		c.fail(http2.ErrCodeEnhanceYourCalm, "header block too large")
	}
	return n, ok
}

// frameAt reports the length of the frame at the start of b, with the CONTINUATION
// frames of its header block, and whether they are all in b; over reports a header
// block still incomplete past maxBlock bytes (0: no bound). A frame over maxFrameRead,
// or a block cut by another frame, is reported by its header alone: the Framer refuses
// it when it reads that header.
func frameAt(b []byte, maxBlock int) (n int, ok, over bool) {
	if len(b) < 9 {
		return 0, false, false
	}
	size := frameLen(b)
	if size > maxFrameRead {
		return 9, true, false
	}
	n = 9 + size
	if len(b) < n {
		return 0, false, false
	}
	if http2.FrameType(b[3]) != http2.FrameHeaders || http2.Flags(b[4]).Has(http2.FlagHeadersEndHeaders) {
		return n, true, false
	}
	for {
		if maxBlock > 0 && n > maxBlock {
			return 0, false, true
		}
		if len(b) < n+9 {
			return 0, false, false
		}
		next := frameLen(b[n:])
		if http2.FrameType(b[n+3]) != http2.FrameContinuation || next > maxFrameRead {
			return n + 9, true, false
		}
		if len(b) < n+9+next {
			return 0, false, false
		}
		end := http2.Flags(b[n+4]).Has(http2.FlagHeadersEndHeaders)
		n += 9 + next
		if end {
			return n, true, false
		}
	}
}

// opensStream reports whether the frame at the start of b is HEADERS for a new stream.
func (c *Conn) opensStream(b []byte) bool {
	id := uint32(b[5]&0x7f)<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8])
	return http2.FrameType(b[3]) == http2.FrameHeaders && id > c.lastID
}

func frameLen(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }

// readError handles what ReadFrame refused.
func (c *Conn) readError(f http2.Frame, err error) {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		if se.StreamID > c.lastID && se.StreamID%2 == 1 {
			c.lastID = se.StreamID // a request refused as malformed still used its id
		}
		c.resetStream(se.StreamID, se.Code)
	case errors.As(err, &ce):
		detail := ""
		if d := c.fr.ErrorDetail(); d != nil {
			detail = d.Error()
		}
		c.fail(http2.ErrCode(ce), detail)
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.fail(http2.ErrCodeFrameSize, "frame too large")
	default:
		c.fail(http2.ErrCodeProtocol, err.Error())
	}
}

func (c *Conn) frame(f http2.Frame) {
	if !c.settings {
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
			c.fail(http2.ErrCodeProtocol, "the first frame is not SETTINGS")
			return
		}
		c.settings = true
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		c.onSettings(f)
	case *http2.HeadersFrame:
		c.beginBlock(f)
	case *http2.ContinuationFrame:
		c.blockFragment(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.DataFrame:
		c.onData(f)
	case *http2.WindowUpdateFrame:
		c.onWindowUpdate(f)
	case *http2.PingFrame:
		c.onPing(f)
	case *http2.RSTStreamFrame:
		c.onReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.GoAwayFrame:
		// The client stops opening streams and closes the connection when it is done.
	case *http2.PushPromiseFrame:
		c.fail(http2.ErrCodeProtocol, "PUSH_PROMISE from a client")
	}
	// Other frame types are extensions, which a receiver ignores (RFC 9113 §5.5).
}

func (c *Conn) onSettings(f *http2.SettingsFrame) {
	if f.IsAck() {
		return
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerInitial
			c.peerInitial = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = int(s.Val)
		}
		return nil
	})
	if err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			c.fail(http2.ErrCode(ce), "invalid setting")
		} else {
			c.fail(http2.ErrCodeProtocol, err.Error())
		}
		return
	}
	c.fr.WriteSettingsAck()
	c.flushBlocked()
}

func (c *Conn) onPing(f *http2.PingFrame) {
	if f.IsAck() {
		if f.Data == shutdownPing && c.goAway == 1 {
			c.goAway, c.goAwayID = 2, c.lastID
			c.fr.WriteGoAway(c.lastID, http2.ErrCodeNo, nil)
		}
		return
	}
	c.fr.WritePing(true, f.Data)
	if c.cfg.MinPingInterval <= 0 {
		return
	}
	now := c.cfg.Now()
	defer func() { c.lastPing = now }()
	if c.sentSince {
		c.sentSince, c.pingStrikes = false, 0
		return
	}
	if c.active == 0 && !c.cfg.PingWithoutStream {
		if c.lastPing.Add(noStreamPing).After(now) {
			c.pingStrikes++
		}
	} else if c.lastPing.Add(c.cfg.MinPingInterval).After(now) {
		c.pingStrikes++
	}
	if c.pingStrikes > maxPingStrike {
		c.fail(http2.ErrCodeEnhanceYourCalm, "too_many_pings")
	}
}

// Shutdown starts a graceful shutdown: a GOAWAY that tells the client to open no more
// streams, then, once a PING has made the round trip (so that streams the client
// opened meanwhile are counted), a GOAWAY with the last stream that will be served.
// Done reports when the streams have finished.
func (c *Conn) Shutdown() {
	if c.goAway != 0 || c.err != nil || c.closed {
		return
	}
	c.goAway = 1
	c.fr.WriteGoAway(maxWindow, http2.ErrCodeNo, nil)
	c.fr.WritePing(false, shutdownPing)
}

// fail ends the connection with a GOAWAY carrying code.
func (c *Conn) fail(code http2.ErrCode, detail string) {
	if c.err != nil {
		return
	}
	var debug []byte
	if detail != "" {
		debug = []byte(detail)
	}
	c.fr.WriteGoAway(c.lastID, code, debug)
	c.err = fmt.Errorf("h2fast: connection error %v: %s", code, detail)
}

// Close releases what the connection holds; the owner calls it once the socket is
// closed. Calls still with the Handler are canceled (Cancel), and Finish for them
// only releases them.
func (c *Conn) Close() {
	if c.closed {
		return
	}
	c.closed = true
	for _, b := range c.backends {
		b.conn, b.waiting = nil, nil // its socket closes with the connection's
	}
	for _, s := range c.streams {
		c.dropStream(s)
	}
	c.blocked = nil
	c.backends = nil
	c.dropOut()
	c.in = nil
}

// charge takes n bytes of the memory budget for s.
func (c *Conn) charge(s *stream, n int) bool {
	if n <= 0 {
		return true
	}
	if c.cfg.Memory != nil && !c.cfg.Memory.TryAcquire(int64(n)) {
		return false
	}
	s.held += int64(n)
	c.held += int64(n)
	return true
}

// hold charges n bytes that are made already to s, over the budget if need be (see
// Memory.Charge).
func (c *Conn) hold(s *stream, n int) {
	if n <= 0 {
		return
	}
	if c.cfg.Memory != nil {
		c.cfg.Memory.Charge(int64(n))
	}
	s.held += int64(n)
	c.held += int64(n)
}

func (c *Conn) uncharge(s *stream, n int64) {
	n = min(n, s.held)
	if n <= 0 {
		return
	}
	s.held -= n
	c.held -= n
	if c.cfg.Memory != nil {
		c.cfg.Memory.Release(n)
	}
}

// Held is the bytes of the memory budget the connection holds now.
func (c *Conn) Held() int64 { return c.held + c.outHeld }

// sent notes that HEADERS or DATA went out, which excuses the client's next ping.
func (c *Conn) sent() { c.sentSince = true }

// writeBlock encodes fields and writes them as a HEADERS frame and as many
// CONTINUATION frames as the client's frame size needs.
func (c *Conn) writeBlock(id uint32, fields []hpack.HeaderField, endStream bool) {
	c.hbuf.Reset()
	for _, f := range fields {
		c.enc.WriteField(f)
	}
	writeBlock(c.fr, id, c.hbuf.Bytes(), endStream, c.peerMaxFrame)
	c.sent()
}

func writeBlock(fr *http2.Framer, id uint32, block []byte, endStream bool, maxFrame int) {
	first := block[:min(len(block), maxFrame)]
	rest := block[len(first):]
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(rest) == 0})
	for len(rest) > 0 {
		frag := rest[:min(len(rest), maxFrame)]
		rest = rest[len(frag):]
		fr.WriteContinuation(id, len(rest) == 0, frag)
	}
}
