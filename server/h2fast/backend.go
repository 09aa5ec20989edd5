package h2fast

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Backend is the client side of an HTTP/2 connection that a Conn opens to the backend
// server to relay the streams it does not answer itself. The Conn's owner connects it
// to the backend (see Conn.Unattached) and moves bytes between the two as it does for
// the Conn: Output to the backend's socket, what the socket gives to Feed. Each relayed
// stream keeps its own flow control on both sides: the Conn lets the client send no
// more than the backend has taken, and the backend no more than the client has read.
type Backend struct {
	conn   *Conn // nil once the Conn is closed
	out    []byte
	outPos int
	in     []byte
	rd     frameReader
	fr     *http2.Framer
	enc    *hpack.Encoder
	hbuf   bytes.Buffer

	attached    bool
	settings    bool // the backend's SETTINGS arrived
	streams     map[uint32]*stream
	nextID      uint32
	active      int
	maxStreams  uint32
	waiting     []*stream // relayed streams waiting for the backend to allow another
	blocked     []*stream // relayed streams whose request waits for the backend's windows
	sendWindow  int64
	peerInitial int64
	maxFrame    int
	recvWindow  int64
	recvUnacked int64
	goneAway    bool
	goAwayID    uint32
	err         error
}

// proxy is the backend side of a relayed stream.
type proxy struct {
	b           *Backend
	bid         uint32 // the stream's id on the backend; 0 until it is opened there
	toBackend   []byte // request bytes not yet sent to the backend
	credited    int    // how many leading bytes of toBackend the client was credited already
	trailers    []hpack.HeaderField
	end         bool // the request is complete: END_STREAM follows toBackend
	sentEnd     bool
	respHeaders bool // the backend's response headers were relayed
	respDone    bool // the backend ended or reset the stream
	sendWindow  int64
	recvWindow  int64
	recvUnacked int64
	queued      bool
	counted     bool // told to Config.Relayed
}

// backendConnWindow is the connection window a Backend gives the backend server.
const backendConnWindow = 1 << 20

func newBackend(c *Conn) *Backend {
	b := &Backend{
		conn:        c,
		streams:     make(map[uint32]*stream),
		nextID:      1,
		maxStreams:  c.cfg.MaxConcurrentStreams, // until the backend's SETTINGS say
		sendWindow:  initialWindow,
		peerInitial: initialWindow,
		maxFrame:    maxFrameRead,
		recvWindow:  backendConnWindow,
	}
	b.fr = http2.NewFramer(backendWriter{b}, &b.rd)
	b.fr.SetReuseFrames()
	b.fr.SetMaxReadFrameSize(maxFrameRead)
	b.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	b.enc = hpack.NewEncoder(&b.hbuf)
	b.out = append(b.out, http2.ClientPreface...)
	b.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	b.fr.WriteWindowUpdate(0, backendConnWindow-initialWindow)
	return b
}

type backendWriter struct{ b *Backend }

func (w backendWriter) Write(p []byte) (int, error) {
	w.b.out = append(w.b.out, p...)
	return len(p), nil
}

// Unattached returns the backends the connection opened that have no socket yet, and
// marks them attached: the owner connects each to the backend server.
func (c *Conn) Unattached() []*Backend {
	var bs []*Backend
	for _, b := range c.backends {
		if !b.attached {
			b.attached = true
			bs = append(bs, b)
		}
	}
	return bs
}

// Output is what waits to be written to the backend.
func (b *Backend) Output() []byte { return b.out[b.outPos:] }

// Wrote says that the first n bytes of Output were written.
func (b *Backend) Wrote(n int) {
	b.outPos += n
	if b.outPos == len(b.out) {
		b.out, b.outPos = b.out[:0], 0
		if cap(b.out) > outFree {
			b.out = nil // grown for large requests: not kept, as the connection's own
		}
	} else if b.outPos > len(b.out)/2 {
		b.out = b.out[:copy(b.out, b.out[b.outPos:])]
		b.outPos = 0
	}
	if c := b.conn; c != nil && b.pending() < c.cfg.MaxPending/2 {
		b.flushBlocked()
		c.resume()
	}
}

func (b *Backend) pending() int { return len(b.out) - b.outPos }

// Done reports whether the owner should close the backend's socket: it failed, its
// Conn closed, or it went away and no stream uses it any more.
func (b *Backend) Done() bool {
	return b.err != nil || b.conn == nil || b.goneAway && b.active == 0 && len(b.waiting) == 0
}

// Feed processes bytes read from the backend.
func (b *Backend) Feed(p []byte) error {
	if b.err != nil {
		return b.err
	}
	if b.conn == nil {
		return ErrClosed
	}
	b.in = append(b.in, p...)
	pos := 0
	for b.err == nil && b.conn != nil {
		n, ok := b.nextFrame(b.in[pos:])
		if !ok {
			break
		}
		b.rd.b = b.in[pos : pos+n]
		f, err := b.fr.ReadFrame()
		pos += n - len(b.rd.b)
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				b.fr.WriteRSTStream(se.StreamID, se.Code)
				if s := b.streams[se.StreamID]; s != nil {
					b.conn.resetStream(s.id, http2.ErrCodeInternal)
				}
				continue
			}
			b.fail(fmt.Errorf("h2fast: backend: %w", err))
			break
		}
		b.frame(f)
	}
	b.in = b.in[:copy(b.in, b.in[pos:])]
	return b.err
}

// nextFrame is Conn.nextFrame for the backend, which is trusted not to flood.
func (b *Backend) nextFrame(p []byte) (int, bool) {
	n, ok, _ := frameAt(p, 0)
	return n, ok
}

// Closed tells that the backend's socket closed or failed.
func (b *Backend) Closed() {
	if b.err == nil {
		b.fail(ErrClosed)
	}
}

// fail ends the backend connection: the streams it carried are reset to the client,
// REFUSED_STREAM for those the backend never saw (the client may retry them).
func (b *Backend) fail(err error) {
	b.err = err
	c := b.conn
	if c == nil {
		return
	}
	for _, s := range b.waiting {
		s.px = nil
		c.resetStream(s.id, http2.ErrCodeRefusedStream)
	}
	b.waiting = nil
	for _, s := range b.streams {
		s.px = nil
		c.resetStream(s.id, http2.ErrCodeInternal)
	}
	b.streams = map[uint32]*stream{}
	b.active = 0
	c.dropBackend(b)
}

func (c *Conn) dropBackend(b *Backend) {
	for i, x := range c.backends {
		if x == b {
			c.backends = append(c.backends[:i], c.backends[i+1:]...)
			break
		}
	}
}

// current is the backend new relayed streams go to, opened when there is none.
func (c *Conn) current() *Backend {
	if n := len(c.backends); n > 0 && !c.backends[n-1].goneAway && c.backends[n-1].err == nil && c.backends[n-1].nextID < maxWindow-2 {
		return c.backends[n-1]
	}
	b := newBackend(c)
	c.backends = append(c.backends, b)
	return b
}

// proxy relays a new stream to the backend.
func (c *Conn) proxy(s *stream) {
	s.kind = proxiedStream
	s.px = &proxy{b: c.current()}
	s.px.b.open(s)
}

// handOff relays a fast stream to the backend after all, with what it received so far
// (whose window the client was credited already).
func (c *Conn) handOff(s *stream) {
	c.untime(s)
	s.kind = proxiedStream
	body := s.body
	if s.aliased {
		body = append([]byte(nil), body...) // the frame it points into is about to be reused
		s.aliased = false
	}
	s.px = &proxy{b: c.current(), toBackend: body, credited: len(body), end: s.remoteDone}
	s.body = nil
	s.px.b.open(s)
}

// open starts s on the backend, or queues it while the backend's stream limit is
// reached.
func (b *Backend) open(s *stream) {
	if s.px.bid == 0 && !s.px.counted {
		s.px.counted = true
		if r := b.conn.cfg.Relayed; r != nil {
			r()
		}
	}
	if !b.canOpen() {
		b.waiting = append(b.waiting, s)
		return
	}
	px := s.px
	px.bid = b.nextID
	b.nextID += 2
	px.sendWindow = b.peerInitial
	px.recvWindow = initialWindow
	b.streams[px.bid] = s
	b.active++
	b.hbuf.Reset()
	for _, f := range s.fields {
		b.enc.WriteField(f)
	}
	writeBlock(b.fr, px.bid, b.hbuf.Bytes(), px.end && len(px.toBackend) == 0 && px.trailers == nil, b.maxFrame)
	if px.end && len(px.toBackend) == 0 && px.trailers == nil {
		px.sentEnd = true
	}
	b.flush(s)
}

// canOpen reports whether the backend takes another stream now: within its limit,
// which is known once its SETTINGS arrive (until then, one stream at a time).
func (b *Backend) canOpen() bool {
	return !b.goneAway && uint32(b.active) < b.maxStreams && (b.settings || b.active == 0)
}

// openWaiting starts queued streams as far as the backend's limit allows.
func (b *Backend) openWaiting() {
	for len(b.waiting) > 0 && b.canOpen() {
		s := b.waiting[0]
		b.waiting = b.waiting[1:]
		if !s.closed {
			b.open(s)
		}
	}
	if b.goneAway && len(b.waiting) > 0 && b.conn != nil {
		// A backend going away takes no more streams: the next one does.
		waiting := b.waiting
		b.waiting = nil
		next := b.conn.current()
		for _, s := range waiting {
			if !s.closed {
				s.px.b = next
				next.open(s)
			}
		}
	}
}

// proxyData takes request DATA of a relayed stream.
func (c *Conn) proxyData(s *stream, data []byte) {
	if !c.charge(s, len(data)) {
		c.credit(s, int64(len(data)))
		c.overloadProxied(s)
		return
	}
	s.px.toBackend = append(s.px.toBackend, data...)
	s.px.b.flush(s)
}

// overloadProxied answers a relayed stream the memory budget would not hold with the
// Handler's refusal when nothing of the backend's answer was relayed yet, and resets
// it otherwise.
func (c *Conn) overloadProxied(s *stream) {
	c.proxyReset(s)
	if s.px.respHeaders {
		c.resetStream(s.id, http2.ErrCodeEnhanceYourCalm)
		return
	}
	s.px = nil
	s.kind = refusedStream
	c.refuse(s)
}

// proxyEnd takes the end of a relayed stream's request.
func (c *Conn) proxyEnd(s *stream) {
	s.px.end = true
	s.px.b.flush(s)
}

// flush sends what it can of a relayed stream's request.
func (b *Backend) flush(s *stream) {
	px, c := s.px, b.conn
	if px == nil || px.bid == 0 || px.sentEnd || px.respDone || c == nil {
		return
	}
	pos := 0
	for pos < len(px.toBackend) {
		n := min(len(px.toBackend)-pos, b.maxFrame, int(min(b.sendWindow, px.sendWindow)))
		if n <= 0 || b.pending() > c.cfg.MaxPending {
			break
		}
		end := px.end && px.trailers == nil && pos+n == len(px.toBackend)
		b.fr.WriteData(px.bid, end, px.toBackend[pos:pos+n])
		b.sendWindow -= int64(n)
		px.sendWindow -= int64(n)
		pos += n
		fresh := n - min(n, px.credited)
		px.credited -= n - fresh
		c.credit(s, int64(fresh))
		c.uncharge(s, int64(n))
		px.sentEnd = end
	}
	px.toBackend = px.toBackend[:copy(px.toBackend, px.toBackend[pos:])]
	if len(px.toBackend) > 0 {
		if !px.queued {
			px.queued = true
			b.blocked = append(b.blocked, s)
		}
		return
	}
	if px.end && !px.sentEnd {
		if px.trailers != nil {
			b.hbuf.Reset()
			for _, f := range px.trailers {
				b.enc.WriteField(f)
			}
			writeBlock(b.fr, px.bid, b.hbuf.Bytes(), true, b.maxFrame)
		} else {
			b.fr.WriteData(px.bid, true, nil)
		}
		px.sentEnd = true
	}
}

func (b *Backend) flushBlocked() {
	blocked := b.blocked
	b.blocked = nil
	for _, s := range blocked {
		if s.px != nil {
			s.px.queued = false
			b.flush(s)
		}
	}
}

// proxyReset resets a relayed stream on the backend: the client reset it, or it was
// reset here.
func (c *Conn) proxyReset(s *stream) {
	px := s.px
	if px == nil || px.b.conn == nil {
		return
	}
	b := px.b
	if px.bid == 0 {
		for i, w := range b.waiting {
			if w == s {
				b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
				break
			}
		}
		return
	}
	if !px.respDone {
		px.respDone = true
		b.fr.WriteRSTStream(px.bid, http2.ErrCodeCancel)
		b.forget(px.bid)
	}
}

// forget ends a stream on the backend side.
func (b *Backend) forget(bid uint32) {
	if _, ok := b.streams[bid]; !ok {
		return
	}
	delete(b.streams, bid)
	b.active--
	b.openWaiting()
}

// proxyWritten credits the backend for n bytes of its answer written to the client.
func (c *Conn) proxyWritten(s *stream, n int) {
	c.uncharge(s, int64(n))
	px := s.px
	b := px.b
	if b.err != nil || b.conn == nil {
		return
	}
	b.recvWindow += int64(n)
	b.recvUnacked += int64(n)
	if b.recvUnacked >= backendConnWindow/4 {
		b.fr.WriteWindowUpdate(0, uint32(b.recvUnacked))
		b.recvUnacked = 0
	}
	if px.respDone {
		return
	}
	px.recvWindow += int64(n)
	px.recvUnacked += int64(n)
	if px.recvUnacked >= initialWindow/4 {
		b.fr.WriteWindowUpdate(px.bid, uint32(px.recvUnacked))
		px.recvUnacked = 0
	}
}

func (b *Backend) frame(f http2.Frame) {
	c := b.conn
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return
		}
		b.settings = true
		f.ForeachSetting(func(s http2.Setting) error {
			switch s.ID {
			case http2.SettingMaxConcurrentStreams:
				b.maxStreams = s.Val
			case http2.SettingInitialWindowSize:
				delta := int64(s.Val) - b.peerInitial
				b.peerInitial = int64(s.Val)
				for _, st := range b.streams {
					st.px.sendWindow += delta
				}
			case http2.SettingMaxFrameSize:
				b.maxFrame = int(s.Val)
			case http2.SettingHeaderTableSize:
				b.enc.SetMaxDynamicTableSizeLimit(s.Val)
			}
			return nil
		})
		b.fr.WriteSettingsAck()
		b.openWaiting()
		b.flushBlocked()
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			b.sendWindow += int64(f.Increment)
		} else if s := b.streams[f.StreamID]; s != nil {
			s.px.sendWindow += int64(f.Increment)
		}
		b.flushBlocked()
	case *http2.PingFrame:
		if !f.IsAck() {
			b.fr.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		b.goneAway, b.goAwayID = true, f.LastStreamID
		for bid, s := range b.streams {
			if bid > f.LastStreamID {
				// Never processed by the backend: safe for the client to retry.
				delete(b.streams, bid)
				b.active--
				s.px = nil
				c.resetStream(s.id, http2.ErrCodeRefusedStream)
			}
		}
		b.openWaiting()
	case *http2.MetaHeadersFrame:
		s := b.streams[f.StreamID]
		if s == nil {
			return // reset here meanwhile
		}
		b.onHeaders(s, f)
	case *http2.DataFrame:
		b.onData(f)
	case *http2.RSTStreamFrame:
		s := b.streams[f.StreamID]
		if s == nil {
			return
		}
		s.px.respDone = true
		b.forget(f.StreamID)
		code := f.ErrCode
		if code == http2.ErrCodeNo && !s.px.respHeaders {
			code = http2.ErrCodeInternal // a reset without an answer is not a normal end
		}
		if code == http2.ErrCodeNo {
			return // after the answer: the backend stops reading the request
		}
		c.resetStream(s.id, code)
	case *http2.PushPromiseFrame:
		b.fail(errors.New("h2fast: backend sent PUSH_PROMISE"))
	}
}

// onHeaders relays a header block of the backend's answer: the response headers, or
// the trailers, which wait behind the answer's DATA that the client's windows hold.
func (b *Backend) onHeaders(s *stream, f *http2.MetaHeadersFrame) {
	c, px := b.conn, s.px
	end := f.StreamEnded()
	if end {
		px.respDone = true
		b.forget(f.StreamID)
		s.rstAfter = !s.remoteDone
	}
	if !px.respHeaders {
		px.respHeaders = true
		if end && s.dataPos == len(s.data) {
			c.writeBlock(s.id, f.Fields, true)
			c.finishStream(s)
			return
		}
		c.writeBlock(s.id, f.Fields, false)
		return
	}
	if !end {
		c.resetStream(s.id, http2.ErrCodeProtocol) // a second header block must end the stream
		return
	}
	s.trailers, s.hasTrailers = f.Fields, true
	c.emit(s)
}

func (b *Backend) onData(f *http2.DataFrame) {
	n := int64(f.Length)
	if n > b.recvWindow {
		b.fail(errors.New("h2fast: backend sent past the connection window"))
		return
	}
	b.recvWindow -= n
	s := b.streams[f.StreamID]
	data := f.Data()
	c := b.conn
	if s == nil || s.closed {
		b.creditConn(n) // reset here meanwhile: discarded
		return
	}
	px := s.px
	if pad := n - int64(len(data)); pad > 0 {
		b.creditConn(pad)
	}
	px.recvWindow -= n
	if s.dataPos == len(s.data) {
		s.data, s.dataPos = s.data[:0], 0
	}
	c.hold(s, len(data)) // the backend's answer is bounded by the windows: let it through
	s.data = append(s.data, data...)
	if f.StreamEnded() {
		px.respDone = true
		b.forget(f.StreamID)
		s.endWithData = true
		s.rstAfter = !s.remoteDone
	}
	if len(data) == 0 && s.endWithData {
		c.fr.WriteData(s.id, true, nil)
		c.finishStream(s)
		return
	}
	c.emit(s)
}

func (b *Backend) creditConn(n int64) {
	b.recvWindow += n
	b.recvUnacked += n
	if b.recvUnacked >= backendConnWindow/4 {
		b.fr.WriteWindowUpdate(0, uint32(b.recvUnacked))
		b.recvUnacked = 0
	}
}
