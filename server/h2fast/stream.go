package h2fast

import (
	"encoding/binary"
	"slices"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// kind is who answers a stream.
type kind uint8

const (
	fastStream    kind = iota // the Handler, once the request is complete
	proxiedStream             // the backend
	refusedStream             // nobody: its request is discarded (answered already)
)

// stream is one request and its answer.
type stream struct {
	id   uint32
	kind kind
	req  request

	remoteDone bool // END_STREAM received (half-closed, remote)
	closed     bool // answered or reset: no longer in Conn.streams

	recvWindow  int64 // what the client may still send on this stream
	recvUnacked int64
	received    int64 // DATA bytes, against content-length
	sendWindow  int64 // what the client lets us send on this stream

	fields  []hpack.HeaderField             // the request's header list
	fieldv  [streamFields]hpack.HeaderField // fields points here, unless there are more
	body    []byte                          // fast: the request so far, with gRPC prefixes
	aliased bool                            // body is the Framer's buffer of the current frame, not a copy
	callv   Call                            // call points here: one allocation for both
	held    int64                           // bytes charged to the memory budget
	call    *Call
	serving bool      // call is with the Handler
	expires time.Time // a fast request's deadline while it is incomplete; zero otherwise

	// The answer, as far as it is not written yet: data waits for window; the final
	// header block (trailers) waits for the data, and is encoded only when written,
	// so that the hpack state follows the order of the wire.
	data        []byte
	dataPos     int
	trailers    []hpack.HeaderField
	hasTrailers bool
	endWithData bool // the last DATA ends the stream (an answer without trailers)
	rstAfter    bool // reset the stream (NO_ERROR) after the end: the client has not finished sending
	queued      bool // in Conn.blocked

	px *proxy // proxied: the backend side
}

func (c *Conn) onHeaders(f *headerBlock) {
	id := f.id
	if id%2 == 0 {
		c.fail(http2.ErrCodeProtocol, "stream id of a client must be odd")
		return
	}
	if s := c.streams[id]; s != nil {
		c.onTrailers(s, f)
		return
	}
	if id <= c.lastID {
		if found, reset := c.closedLately(id); reset {
			return // frames the client sent before it saw our RST_STREAM are ignored
		} else if found {
			c.fail(http2.ErrCodeStreamClosed, "HEADERS on a closed stream")
		} else {
			c.fail(http2.ErrCodeProtocol, "stream id lower than one already used")
		}
		return
	}
	c.lastID = id
	if f.hasPriority && f.dep == id {
		c.resetStream(id, http2.ErrCodeProtocol) // a stream cannot depend on itself (RFC 9113 §5.3.1)
		return
	}
	if c.goAway == 2 && id > c.goAwayID {
		return // after GOAWAY: ignored, the client retries it elsewhere
	}
	if f.truncated {
		// Larger than MaxHeaderListSize, which SETTINGS told the client.
		c.resetStream(id, http2.ErrCodeProtocol)
		return
	}
	req, bad := readRequest(f.fields)
	if bad != "" {
		c.resetStream(id, http2.ErrCodeProtocol)
		return
	}
	if c.active >= int(c.cfg.MaxConcurrentStreams) {
		c.resetStream(id, http2.ErrCodeRefusedStream)
		return
	}
	s := c.spare
	c.spare = nil
	if s == nil {
		s = new(stream)
	}
	*s = stream{
		id:         id,
		req:        req,
		recvWindow: initialWindow,
		sendWindow: c.peerInitial,
	}
	s.fields = append(s.fieldv[:0:len(s.fieldv)], f.fields...)
	c.streams[id] = s
	c.active++
	if _, ok := c.h.Route(req.path); !ok || !s.req.fast() {
		c.proxy(s)
	} else {
		s.kind = fastStream
		if req.hasTimeout && !f.endStream {
			s.expires = c.cfg.Now().Add(req.timeout)
			c.timed++
		}
	}
	if f.endStream {
		c.endOfRequest(s)
	}
}

// onTrailers takes a second header block on an open stream: the request's trailers,
// which must end it and carry no pseudo-header fields.
func (c *Conn) onTrailers(s *stream, f *headerBlock) {
	if s.remoteDone {
		c.resetStream(s.id, http2.ErrCodeStreamClosed)
		return
	}
	if !f.endStream || len(f.pseudo()) > 0 {
		c.resetStream(s.id, http2.ErrCodeProtocol)
		return
	}
	if s.kind == proxiedStream {
		s.px.trailers = slices.Clone(f.fields)
	}
	c.endOfRequest(s)
}

// closedLately reports whether id is one of the streams closed lately, and whether it
// was closed by a RST_STREAM sent from here.
func (c *Conn) closedLately(id uint32) (found, reset bool) {
	for _, r := range c.recent {
		if r.id == id {
			return true, r.reset
		}
	}
	return false, false
}

func (c *Conn) onData(f *http2.DataFrame) {
	n := int64(f.Length) // padding counts against the windows too
	if n > c.recvWindow {
		c.fail(http2.ErrCodeFlowControl, "DATA past the connection window")
		return
	}
	c.recvWindow -= n
	s := c.streams[f.StreamID]
	if s == nil {
		c.credit(nil, n)
		if f.StreamID > c.lastID {
			c.fail(http2.ErrCodeProtocol, "DATA on an idle stream")
		} else if _, reset := c.closedLately(f.StreamID); !reset && (c.goAway != 2 || f.StreamID <= c.goAwayID) {
			c.resetStream(f.StreamID, http2.ErrCodeStreamClosed)
		}
		return
	}
	if s.remoteDone {
		c.credit(nil, n)
		c.resetStream(s.id, http2.ErrCodeStreamClosed)
		return
	}
	if n > s.recvWindow {
		c.credit(nil, n)
		c.resetStream(s.id, http2.ErrCodeFlowControl)
		return
	}
	s.recvWindow -= n
	data := f.Data()
	s.received += int64(len(data))
	if pad := n - int64(len(data)); pad > 0 {
		c.credit(s, pad)
	}
	switch s.kind {
	case fastStream:
		c.fastData(s, data, f.StreamEnded())
	case proxiedStream:
		c.proxyData(s, data)
	case refusedStream:
		c.credit(s, int64(len(data)))
	}
	if f.StreamEnded() && !s.closed {
		c.endOfRequest(s)
	}
}

// fastData keeps a fast request's bytes until it ends. A request that turns out not to
// be plainly one uncompressed message of at most MaxRecvMsgSize goes to the backend,
// with what it sent so far.
func (c *Conn) fastData(s *stream, data []byte, end bool) {
	// The whole message is charged as soon as its first frame names its length, not
	// frame by frame: a large request is then admitted or refused as a whole, which
	// the Memory can refuse under memory pressure, as grpc-go's reads are (frames of
	// a few KiB each would all pass).
	want := len(s.body) + len(data)
	if len(s.body) == 0 && len(data) >= prefixLen && data[0] == 0 {
		if size := int(binary.BigEndian.Uint32(data[1:prefixLen])); size <= c.cfg.MaxRecvMsgSize {
			want = max(want, prefixLen+size)
		}
	}
	if !c.charge(s, want-int(s.held)) {
		s.kind = refusedStream
		c.credit(s, int64(len(data)))
		c.refuse(s)
		return
	}
	if end && len(s.body) == 0 && len(data) >= prefixLen && len(data) == prefixLen+int(binary.BigEndian.Uint32(data[1:prefixLen])) {
		// The whole request in the frame that ends it, as grpc-go's clients send it:
		// dispatched before the Framer reads another frame into the same buffer, it
		// need not be copied.
		s.body, s.aliased = data, true
	} else {
		if s.aliased {
			s.body, s.aliased = append(make([]byte, 0, want), s.body...), false
		} else if s.body == nil {
			s.body = make([]byte, 0, want) // the message's size, charged above: no regrowth
		}
		s.body = append(s.body, data...)
	}
	c.credit(s, int64(len(data)))
	if len(s.body) >= prefixLen {
		size := int(binary.BigEndian.Uint32(s.body[1:prefixLen]))
		if s.body[0] != 0 || size > c.cfg.MaxRecvMsgSize || len(s.body) > prefixLen+size {
			c.handOff(s)
		}
	}
}

// credit returns n received bytes to the client's windows: the connection's, and the
// stream's while it is open (s may be nil). WINDOW_UPDATE goes out once a quarter of
// a window is due, as grpc-go does.
func (c *Conn) credit(s *stream, n int64) {
	if n <= 0 {
		return
	}
	c.recvWindow += n
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.cfg.ConnWindow)/4 {
		c.fr.WriteWindowUpdate(0, uint32(c.recvUnacked))
		c.recvUnacked = 0
	}
	if s == nil || s.remoteDone || s.closed {
		return
	}
	s.recvWindow += n
	s.recvUnacked += n
	if s.recvUnacked >= initialWindow/4 {
		c.fr.WriteWindowUpdate(s.id, uint32(s.recvUnacked))
		s.recvUnacked = 0
	}
}

// endOfRequest takes the end of a request (END_STREAM).
func (c *Conn) endOfRequest(s *stream) {
	s.remoteDone = true
	if s.req.contentLength >= 0 && s.received != s.req.contentLength {
		c.resetStream(s.id, http2.ErrCodeProtocol)
		return
	}
	switch s.kind {
	case fastStream:
		c.dispatch(s)
	case proxiedStream:
		c.proxyEnd(s)
	case refusedStream:
		if s.hasTrailers && s.dataPos == len(s.data) {
			c.closeStream(s) // answered already: now the stream is over on both sides
		}
	}
}

// untime forgets a fast request's deadline: it is complete, relayed or over.
func (c *Conn) untime(s *stream) {
	if !s.expires.IsZero() {
		s.expires = time.Time{}
		c.timed--
	}
}

// NextDeadline reports the earliest deadline of the fast requests that have not
// arrived whole, if any: the owner calls Expire then.
func (c *Conn) NextDeadline() (time.Time, bool) {
	if c.timed == 0 {
		return time.Time{}, false
	}
	var next time.Time
	for _, s := range c.streams {
		if !s.expires.IsZero() && (next.IsZero() || s.expires.Before(next)) {
			next = s.expires
		}
	}
	return next, !next.IsZero()
}

// Expire relays to the backend the fast requests whose deadline passed before they
// arrived whole: the backend answers them as it answers a request whose deadline
// passes while it is read (DEADLINE_EXCEEDED).
func (c *Conn) Expire(now time.Time) {
	if c.timed == 0 || c.err != nil || c.closed {
		return
	}
	for _, s := range c.streams {
		if !s.expires.IsZero() && !s.expires.After(now) && s.kind == fastStream {
			c.handOff(s)
		}
	}
}

// dispatch gives a complete fast request to the Handler.
func (c *Conn) dispatch(s *stream) {
	c.untime(s)
	if len(s.body) < prefixLen || len(s.body) != prefixLen+int(binary.BigEndian.Uint32(s.body[1:prefixLen])) {
		c.handOff(s) // no message, or a partial one: the backend says what that is
		return
	}
	call := c.newCall(s)
	call.Message = s.body[prefixLen:]
	if cap(c.scratch) < maxScratch/16 {
		c.scratch = make([]byte, maxScratch/16)
	}
	call.Reply = c.scratch[prefixLen:prefixLen]
	c.running++
	s.serving = true
	done := c.h.Serve(c, call)
	call.Message = nil
	if !done {
		// Decoded by now: the request's bytes are the Handler's no more.
		s.body, s.aliased = nil, false
		c.uncharge(s, s.held)
		return
	}
	s.serving = false
	c.running--
	if call.relay {
		s.call = nil
		c.handOff(s)
		return
	}
	c.answer(s)
}

func (c *Conn) newCall(s *stream) *Call {
	m, _ := c.h.Route(s.req.path)
	s.callv = Call{
		Method:     m,
		Path:       s.req.path,
		Header:     s.fields,
		Timeout:    s.req.timeout,
		HasTimeout: s.req.hasTimeout,
		st:         s,
		subtype:    s.req.subtype,
	}
	s.call = &s.callv
	return s.call
}

// refuse answers a fast request the memory budget would not hold, before it ends.
func (c *Conn) refuse(s *stream) {
	call := c.newCall(s)
	c.h.Overloaded(call)
	c.answer(s)
}

// Finish delivers the answer of a call that Serve left pending.
func (c *Conn) Finish(call *Call) {
	s := call.st
	if !s.serving {
		return
	}
	s.serving = false
	c.running--
	if call.canceled || c.closed {
		if call.canceled {
			c.zombies--
		}
		c.uncharge(s, s.held)
		c.resume()
		return
	}
	c.answer(s)
}

// answer writes a call's answer: HEADERS, DATA and trailers when it succeeded; a
// trailers-only answer (one HEADERS frame) when it failed without metadata of its own,
// as grpc-go answers.
func (c *Conn) answer(s *stream) {
	call := s.call
	s.body = nil
	c.uncharge(s, s.held)
	s.rstAfter = !s.remoteDone
	ct := hpack.HeaderField{Name: "content-type", Value: contentType(call.subtype)}
	if call.Code == 0 || len(call.Headers) > 0 {
		hf := append(c.hf[:0], fieldStatus200, ct)
		hf = append(hf, call.Headers...)
		c.writeBlock(s.id, hf, false)
		c.hf = hf[:0]
	}
	hf := c.hf[:0]
	if call.Code != 0 && len(call.Headers) == 0 {
		hf = append(hf, fieldStatus200, ct)
	}
	if call.Code == 0 {
		hf = append(hf, fieldOK, fieldNoMessage)
	} else {
		hf = append(hf, hpack.HeaderField{Name: "grpc-status", Value: codeValue(call.Code)},
			hpack.HeaderField{Name: "grpc-message", Value: encodeStatusMessage(call.StatusMessage)})
		if len(call.Details) > 0 {
			hf = append(hf, hpack.HeaderField{Name: "grpc-status-details-bin", Value: EncodeBinary(call.Details)})
		}
	}
	hf = append(hf, call.Trailers...)
	c.hf = hf[:0]
	if call.Code == 0 {
		// The message goes out from a scratch buffer when the windows let all of it
		// through at once, as they do for small answers; what they hold back is copied.
		// A message the Handler appended to the scratch buffer is in place already,
		// after the room left for its prefix.
		var msg []byte
		if r, m := call.Reply, call.ReplyMsg; len(r) > 0 && len(m) == prefixLen+len(r) && &m[prefixLen] == &r[0] {
			msg = m // room for the prefix left by the Handler
		} else if cap(r) > 0 && cap(c.scratch) > prefixLen && &r[:1][0] == &c.scratch[:prefixLen+1][prefixLen] {
			msg = c.scratch[:prefixLen+len(r)]
		} else {
			msg = append(c.scratch[:0], 0, 0, 0, 0, 0)
			msg = append(msg, call.Reply...)
		}
		msg[0] = 0
		binary.BigEndian.PutUint32(msg[1:], uint32(len(call.Reply)))
		call.Reply, call.ReplyMsg = nil, nil
		s.data = msg
		kept := cap(msg) <= maxScratch
		if !kept {
			// A large answer is charged while the stream holds it; what emitData
			// writes of it moves to the output buffer, and out of this charge.
			c.hold(s, len(msg))
		}
		done := c.emitData(s)
		if kept {
			c.scratch = msg[:cap(msg)] // kept whole: its prefix room and capacity
		}
		if !done {
			if kept {
				// The scratch buffer serves the next answer: what is held back moves out.
				s.data = append([]byte(nil), s.data[s.dataPos:]...)
				c.hold(s, len(s.data))
			} else {
				s.data = s.data[s.dataPos:] // the connection's no more: no copy
			}
			s.dataPos = 0
			s.trailers, s.hasTrailers = append([]hpack.HeaderField(nil), hf...), true
			return
		}
		s.data = nil
	}
	c.writeBlock(s.id, hf, true)
	c.finishStream(s)
}

// maxScratch bounds the scratch buffer a connection keeps for answers.
const maxScratch = 64 << 10

// emit writes what it can of a stream's waiting answer: DATA as far as the windows and
// the output bound allow, then the trailers.
func (c *Conn) emit(s *stream) {
	if !c.emitData(s) || s.closed {
		return
	}
	s.data, s.dataPos = nil, 0
	if s.hasTrailers {
		c.writeBlock(s.id, s.trailers, true)
		s.trailers, s.hasTrailers = nil, false
		c.finishStream(s)
	}
}

// emitData writes s.data from dataPos as far as it can, and reports whether all of it
// is out.
func (c *Conn) emitData(s *stream) bool {
	for s.dataPos < len(s.data) {
		n := min(len(s.data)-s.dataPos, c.peerMaxFrame, int(min(c.sendWindow, s.sendWindow)))
		if n <= 0 || c.pending() > c.cfg.MaxPending {
			c.block(s)
			return false
		}
		end := s.endWithData && s.dataPos+n == len(s.data) && !s.hasTrailers
		c.fr.WriteData(s.id, end, s.data[s.dataPos:s.dataPos+n])
		c.sent()
		c.sendWindow -= int64(n)
		s.sendWindow -= int64(n)
		s.dataPos += n
		if s.px != nil {
			c.proxyWritten(s, n)
		} else {
			c.uncharge(s, int64(n))
		}
		if end {
			c.finishStream(s)
			return true
		}
	}
	return true
}

// finishStream closes a stream whose answer has ended.
func (c *Conn) finishStream(s *stream) {
	if s.rstAfter && !s.remoteDone {
		// grpc-go resets a stream it answered before the client finished sending, so
		// that the client stops; the request's remaining DATA is discarded.
		c.fr.WriteRSTStream(s.id, http2.ErrCodeNo)
		c.closeStream(s)
		c.remember(s.id, true)
		return
	}
	c.closeStream(s)
}

func (c *Conn) block(s *stream) {
	if !s.queued {
		s.queued = true
		c.blocked = append(c.blocked, s)
	}
}

// flushBlocked writes what the windows now let through of answers that waited, in
// the order they began to wait.
func (c *Conn) flushBlocked() {
	i, n := 0, len(c.blocked) // those emit queues again go after n
	for ; i < n; i++ {
		if c.sendWindow <= 0 || c.pending() > c.cfg.MaxPending {
			break
		}
		s := c.blocked[i]
		s.queued = false
		if !s.closed {
			c.emit(s) // which queues s again at the end if it is still blocked
		}
	}
	if i > 0 {
		c.blocked = c.blocked[:copy(c.blocked, c.blocked[i:])]
	}
}

func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		if c.sendWindow+inc > maxWindow {
			c.fail(http2.ErrCodeFlowControl, "connection window past 2^31-1")
			return
		}
		c.sendWindow += inc
		c.flushBlocked()
		return
	}
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.lastID {
			c.fail(http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream")
		}
		return // closed: a WINDOW_UPDATE may cross the end of the stream
	}
	if s.sendWindow+inc > maxWindow {
		c.resetStream(s.id, http2.ErrCodeFlowControl)
		return
	}
	s.sendWindow += inc
	if s.queued && c.sendWindow > 0 {
		c.flushBlocked()
	}
}

func (c *Conn) onReset(f *http2.RSTStreamFrame) {
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.lastID {
			c.fail(http2.ErrCodeProtocol, "RST_STREAM on an idle stream")
			return
		}
		// Closed here already, perhaps by a RST_STREAM that crossed the client's: the
		// client closed it too, so what it sends on it from now on is its error.
		c.closedByClient(f.StreamID)
		return
	}
	c.dropStream(s)
}

// resetStream sends RST_STREAM and forgets the stream, if there is one.
func (c *Conn) resetStream(id uint32, code http2.ErrCode) {
	c.fr.WriteRSTStream(id, code)
	if s := c.streams[id]; s != nil {
		c.dropStream(s)
	}
	c.remember(id, true)
}

// dropStream forgets a stream the client reset or that was reset here: a call with
// the Handler is canceled and counts as a zombie until Finish, which then releases its
// memory; a proxied stream is reset on the backend.
func (c *Conn) dropStream(s *stream) {
	if s.serving && !s.call.canceled {
		s.call.canceled = true
		c.zombies++
		c.h.Cancel(s.call)
	}
	if s.px != nil {
		c.proxyReset(s)
	}
	c.closeStream(s)
}

// closeStream forgets a stream that is over in both directions.
func (c *Conn) closeStream(s *stream) {
	if s.closed {
		return
	}
	c.untime(s)
	s.closed = true
	delete(c.streams, s.id)
	c.active--
	c.remember(s.id, false)
	if !s.serving {
		c.uncharge(s, s.held)
		s.body = nil
	}
	s.data, s.trailers = nil, nil
	if s.kind == fastStream && !s.serving && !s.queued && s.px == nil {
		// Nothing refers to it any more (not the Handler, the blocked queue or a
		// backend): the next stream reuses it, which spares a fast call the
		// allocation of a stream and its call (about 1 KiB).
		c.spare = s
	}
}

// remember records a closed stream, and whether it was reset from here (a stream
// closed and then reset keeps the reset).
func (c *Conn) remember(id uint32, reset bool) {
	for i := range c.recent {
		if c.recent[i].id == id {
			c.recent[i].reset = c.recent[i].reset || reset
			return
		}
	}
	c.recent[c.recentPos] = closedID{id, reset}
	c.recentPos = (c.recentPos + 1) % len(c.recent)
}

// closedByClient records that the client reset a stream closed already.
func (c *Conn) closedByClient(id uint32) {
	for i := range c.recent {
		if c.recent[i].id == id {
			c.recent[i].reset = false
		}
	}
}

type closedID struct {
	id    uint32
	reset bool
}
