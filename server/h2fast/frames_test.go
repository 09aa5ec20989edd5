package h2fast_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/cachee/cachee/server/h2fast"
)

// raw drives a Conn frame by frame, as a client that writes what a test says, and
// reads back every frame the Conn wrote.
type raw struct {
	t    *testing.T
	c    *h2fast.Conn
	h    *checkHandler
	fr   *http2.Framer
	wbuf bytes.Buffer // what the client wrote, not yet fed
	rbuf bytes.Buffer // what the Conn wrote, not yet read
	rfr  *http2.Framer
	enc  *hpack.Encoder
	hb   bytes.Buffer
	next uint32
}

func newRaw(t *testing.T, cfg h2fast.Config, h *checkHandler) *raw {
	r := &raw{t: t, h: h, next: 1}
	r.c = h2fast.NewConn(cfg, h)
	r.fr = http2.NewFramer(&r.wbuf, nil)
	r.rfr = http2.NewFramer(nil, &r.rbuf)
	r.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.enc = hpack.NewEncoder(&r.hb)
	r.wbuf.WriteString(http2.ClientPreface)
	r.fr.WriteSettings()
	r.flush()
	r.expect(http2.FrameSettings) // the server's
	return r
}

// flush feeds what the client wrote and collects what the Conn wrote (as a client
// that reads everything at once).
func (r *raw) flush() error {
	err := r.c.Feed(r.wbuf.Bytes())
	r.wbuf.Reset()
	r.drain()
	return err
}

func (r *raw) drain() {
	out := r.c.Output()
	r.rbuf.Write(out)
	r.c.Wrote(len(out))
}

// frames reads every frame the Conn wrote so far.
func (r *raw) frames() []http2.Frame {
	var fs []http2.Frame
	for r.rbuf.Len() > 0 {
		f, err := r.rfr.ReadFrame()
		if err != nil {
			r.t.Fatalf("reading the server's frames: %v", err)
		}
		switch f := f.(type) { // copy what ReadFrame reuses
		case *http2.DataFrame:
			fs = append(fs, &dataCopy{id: f.StreamID, end: f.StreamEnded(), data: append([]byte(nil), f.Data()...)})
		default:
			fs = append(fs, f)
		}
	}
	return fs
}

type dataCopy struct {
	http2.FrameHeader
	id   uint32
	end  bool
	data []byte
}

// expect reads frames until one of type ft, failing if there is none.
func (r *raw) expect(ft http2.FrameType) http2.Frame {
	r.t.Helper()
	for _, f := range r.frames() {
		if _, ok := f.(*dataCopy); ok && ft == http2.FrameData {
			return f
		}
		if f.Header().Type == ft {
			return f
		}
	}
	r.t.Fatalf("no %v frame from the server", ft)
	return nil
}

// request opens a stream for a Check and sends its message; end says whether the
// request ends with it.
func (r *raw) request(path string, msg []byte, end bool) uint32 {
	id := r.next
	r.next += 2
	r.hb.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", "x"},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		r.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hb.Bytes(), EndHeaders: true})
	body := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	r.fr.WriteData(id, end, body)
	return id
}

func goAwayOf(t *testing.T, fs []http2.Frame) *http2.GoAwayFrame {
	t.Helper()
	for _, f := range fs {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g
		}
	}
	return nil
}

// TestTooManyPings: pings more often than MinPingInterval, with nothing sent in
// between, end the connection as grpc-go's keepalive enforcement does; each is still
// answered.
func TestTooManyPings(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRaw(t, h2fast.Config{MinPingInterval: 5 * time.Second, PingWithoutStream: true, Now: func() time.Time { return now }}, &checkHandler{})
	for i := range 4 {
		r.fr.WritePing(false, [8]byte{byte(i)})
		r.flush()
		fs := r.frames()
		if g := goAwayOf(t, fs); g != nil {
			if i != 3 || g.ErrCode != http2.ErrCodeEnhanceYourCalm || string(g.DebugData()) != "too_many_pings" {
				t.Fatalf("ping %d: GOAWAY %v %q", i+1, g.ErrCode, g.DebugData())
			}
			if r.c.Err() == nil {
				t.Fatal("the connection goes on after GOAWAY")
			}
			return
		}
	}
	t.Fatal("four pings within the interval: no GOAWAY")
}

// TestPingsSpacedOrExcused: pings at the allowed interval, or after the server sent
// something, are no strikes.
func TestPingsSpacedOrExcused(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRaw(t, h2fast.Config{MinPingInterval: 5 * time.Second, PingWithoutStream: true, Now: func() time.Time { return now }}, &checkHandler{})
	for i := range 10 {
		r.request("/grpc.health.v1.Health/Check", nil, true) // an answer excuses the next ping
		r.fr.WritePing(false, [8]byte{byte(i)})
		r.flush()
		if g := goAwayOf(t, r.frames()); g != nil {
			t.Fatalf("GOAWAY after excused pings: %v", g.ErrCode)
		}
	}
	for i := range 10 {
		now = now.Add(5 * time.Second)
		r.fr.WritePing(false, [8]byte{byte(i)})
		r.flush()
		if g := goAwayOf(t, r.frames()); g != nil {
			t.Fatalf("GOAWAY after spaced pings: %v", g.ErrCode)
		}
	}
}

// TestResetPendingCountsAgainstLimit: calls the client resets while their handler still
// runs keep counting against MaxConcurrentStreams (CVE-2023-44487): the connection
// stops taking input instead of starting more work, and goes on when handlers finish.
func TestResetPendingCountsAgainstLimit(t *testing.T) {
	h := &checkHandler{}
	var parked []*h2fast.Call
	h.hook = func(call *h2fast.Call, _ *healthpb.HealthCheckRequest) bool {
		parked = append(parked, call)
		return false
	}
	r := newRaw(t, h2fast.Config{MaxConcurrentStreams: 4}, h)
	for range 10 {
		id := r.request("/grpc.health.v1.Health/Check", nil, true)
		r.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	r.flush()
	if n := h.served.Load(); n != 4 {
		t.Fatalf("%d calls started, want 4 (the limit)", n)
	}
	if r.c.WantsRead() {
		t.Fatal("the connection wants input while its limit of handlers is busy")
	}
	if got := h.canceled.Load(); got != 4 {
		t.Fatalf("%d cancels, want 4", got)
	}
	r.c.Finish(parked[0])
	r.drain()
	if n := h.served.Load(); n != 5 {
		t.Fatalf("after a handler finished, %d calls started, want 5", n)
	}
	for i := 1; i < len(parked); i++ {
		r.c.Finish(parked[i])
		r.drain()
	}
	if n := h.served.Load(); n != 10 || !r.c.WantsRead() {
		t.Fatalf("after every handler finished: %d calls started, wants input %v", n, r.c.WantsRead())
	}
}

// TestGracefulShutdown: GOAWAY with the largest id and a PING; on the PING's answer,
// GOAWAY with the last stream; streams past it are ignored, streams before it finish.
func TestGracefulShutdown(t *testing.T) {
	h := &checkHandler{}
	var parked []*h2fast.Call
	h.hook = func(call *h2fast.Call, _ *healthpb.HealthCheckRequest) bool {
		parked = append(parked, call)
		return false
	}
	r := newRaw(t, h2fast.Config{}, h)
	r.request("/grpc.health.v1.Health/Check", nil, true)
	r.flush()
	r.c.Shutdown()
	r.drain()
	var ping *http2.PingFrame
	fs := r.frames()
	if g := goAwayOf(t, fs); g == nil || g.LastStreamID != 1<<31-1 || g.ErrCode != http2.ErrCodeNo {
		t.Fatalf("first GOAWAY: %+v", g)
	}
	for _, f := range fs {
		if p, ok := f.(*http2.PingFrame); ok {
			ping = p
		}
	}
	if ping == nil {
		t.Fatal("no PING after the first GOAWAY")
	}
	r.request("/grpc.health.v1.Health/Check", nil, true) // id 3: before the PING's answer, served
	r.fr.WritePing(true, ping.Data)
	r.request("/grpc.health.v1.Health/Check", nil, true) // id 5: after the last GOAWAY, ignored
	r.flush()
	if g := goAwayOf(t, r.frames()); g == nil || g.LastStreamID != 3 {
		t.Fatalf("last GOAWAY: %+v", g)
	}
	if n := h.served.Load(); n != 2 {
		t.Fatalf("%d calls served, want 2 (streams 1 and 3)", n)
	}
	if r.c.Done() {
		t.Fatal("done with calls pending")
	}
	for _, call := range parked {
		r.c.Finish(call)
	}
	r.drain()
	if !r.c.Done() {
		t.Fatal("not done after every stream finished")
	}
}

// TestUnreadOutputStopsInput: a client that sends PINGs and reads no answers stops being
// read once their answers pass MaxPending, which bounds what a flood of PING or
// SETTINGS frames can make the server hold.
func TestUnreadOutputStopsInput(t *testing.T) {
	r := newRaw(t, h2fast.Config{MaxPending: 4 << 10}, &checkHandler{})
	for range 2000 {
		r.fr.WritePing(false, [8]byte{})
	}
	in := r.wbuf.Len()
	r.c.Feed(r.wbuf.Bytes())
	r.wbuf.Reset()
	if r.c.WantsRead() {
		t.Fatal("wants input while answers go unread")
	}
	if out := len(r.c.Output()); out > 8<<10 || out >= in {
		t.Fatalf("%d bytes of answers wait for a client that reads nothing", out)
	}
	acks := 0
	for range 1000 {
		wants := r.c.WantsRead()
		r.drain() // which may process more of what waits
		for _, f := range r.frames() {
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
				acks++
			}
		}
		if wants {
			break
		}
	}
	if acks != 2000 || !r.c.WantsRead() {
		t.Fatalf("a client that reads: %d of 2000 pings answered, wants input %v", acks, r.c.WantsRead())
	}
}

// TestHeaderBlockFlood: a header block that never ends (CONTINUATION after
// CONTINUATION) ends the connection at a bound instead of being buffered on.
func TestHeaderBlockFlood(t *testing.T) {
	r := newRaw(t, h2fast.Config{MaxHeaderListSize: 4 << 10}, &checkHandler{})
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: bytes.Repeat([]byte{0x40}, 1000)})
	for range 200 {
		r.fr.WriteContinuation(1, false, bytes.Repeat([]byte{0x40}, 1000))
	}
	r.flush()
	if g := goAwayOf(t, r.frames()); g == nil || r.c.Err() == nil {
		t.Fatal("no GOAWAY for an endless header block")
	}
}

// TestOverloaded: a request the memory budget cannot hold is answered by the Handler's
// refusal, and the memory is all given back.
func TestOverloaded(t *testing.T) {
	var m budget
	m.limit = 100
	h := &checkHandler{}
	r := newRaw(t, h2fast.Config{Memory: &m}, h)
	id := r.request("/grpc.health.v1.Health/Check", bytes.Repeat([]byte{'x'}, 200), true)
	r.flush()
	var code string
	for _, f := range r.frames() {
		if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh.StreamID == id {
			code = mh.PseudoValue("status") + " " + headerValue(mh, "grpc-status")
		}
	}
	if code != "200 14" {
		t.Fatalf("answer: %q, want the overloaded status", code)
	}
	if m.used.Load() != 0 || r.c.Held() != 0 {
		t.Fatalf("memory still held: budget %d, connection %d", m.used.Load(), r.c.Held())
	}
	if h.served.Load() != 0 {
		t.Fatal("the Handler served a refused call")
	}
}

func headerValue(mh *http2.MetaHeadersFrame, name string) string {
	for _, f := range mh.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) TryAcquire(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) Charge(n int64) { b.used.Add(n) }

func (b *budget) Release(n int64) {
	if b.used.Add(-n) < 0 {
		panic("released more than was charged")
	}
}

// bigAnswer makes the Handler answer every call with n bytes of message.
func bigAnswer(n int) *checkHandler {
	h := &checkHandler{}
	h.hook = func(call *h2fast.Call, _ *healthpb.HealthCheckRequest) bool {
		call.Reply = bytes.Repeat([]byte{'a'}, n)
		return true
	}
	return h
}

// dataOf sums the DATA the server sent on a stream in fs, and reports the largest
// frame and whether the stream ended (trailers).
func dataOf(fs []http2.Frame, id uint32) (total, largest int, ended bool) {
	for _, f := range fs {
		switch f := f.(type) {
		case *dataCopy:
			if f.id == id {
				total += len(f.data)
				largest = max(largest, len(f.data))
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id && f.StreamEnded() {
				ended = true
			}
		}
	}
	return total, largest, ended
}

// The flow control of answers, as h2spec checks it with an answer to its GET, which a
// gRPC server answers without DATA (so h2spec skips those cases: see cmd/cachee's
// h2spec test): here with a gRPC answer of 100 bytes (105 with its prefix).
func TestAnswerFlowControl(t *testing.T) {
	t.Run("initial window 1", func(t *testing.T) { // h2spec http2/6.9.1
		r := newRaw(t, h2fast.Config{}, bigAnswer(100))
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		id := r.request(checkPath, nil, true)
		r.flush()
		if total, largest, ended := dataOf(r.frames(), id); total != 1 || largest != 1 || ended {
			t.Fatalf("with a window of 1: %d bytes, frames up to %d, ended %v", total, largest, ended)
		}
		for got := 1; got < 105; {
			r.fr.WriteWindowUpdate(id, 1)
			r.flush()
			n, largest, ended := dataOf(r.frames(), id)
			if n != 1 || largest != 1 {
				t.Fatalf("after a WINDOW_UPDATE of 1: %d bytes", n)
			}
			if got += n; ended != (got == 105) {
				t.Fatalf("after %d bytes: ended %v", got, ended)
			}
		}
	})
	t.Run("window raised by SETTINGS after HEADERS", func(t *testing.T) { // h2spec http2/6.9.2
		r := newRaw(t, h2fast.Config{}, bigAnswer(100))
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		id := r.request(checkPath, nil, true)
		r.flush()
		if n, _, _ := dataOf(r.frames(), id); n != 0 {
			t.Fatalf("%d bytes through a window of 0", n)
		}
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
		r.flush()
		if n, _, ended := dataOf(r.frames(), id); n != 105 || !ended {
			t.Fatalf("after SETTINGS opened the window: %d bytes, ended %v", n, ended)
		}
	})
	t.Run("window made negative by SETTINGS", func(t *testing.T) { // h2spec http2/6.9.2
		r := newRaw(t, h2fast.Config{}, bigAnswer(100))
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 50})
		id := r.request(checkPath, nil, true)
		r.flush()
		if n, _, _ := dataOf(r.frames(), id); n != 50 {
			t.Fatalf("%d bytes through a window of 50", n)
		}
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10}) // the stream's window: -40
		r.fr.WriteWindowUpdate(id, 45)                                                 // +5
		r.flush()
		if n, _, _ := dataOf(r.frames(), id); n != 5 {
			t.Fatalf("window -40 + 45: %d bytes sent, want 5", n)
		}
	})
	t.Run("several values in one SETTINGS: the last counts", func(t *testing.T) { // h2spec http2/6.5.3
		r := newRaw(t, h2fast.Config{}, bigAnswer(100))
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		id := r.request(checkPath, nil, true)
		r.flush()
		if n, _, _ := dataOf(r.frames(), id); n != 1 {
			t.Fatalf("%d bytes, want 1 (the last value)", n)
		}
	})
	t.Run("frames no larger than the client's MAX_FRAME_SIZE", func(t *testing.T) {
		r := newRaw(t, h2fast.Config{}, bigAnswer(40000))
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		r.fr.WriteWindowUpdate(0, 1<<20)
		id := r.request(checkPath, nil, true)
		r.flush()
		if n, largest, ended := dataOf(r.frames(), id); n != 40005 || largest != 16384 || !ended {
			t.Fatalf("%d bytes in frames up to %d, ended %v", n, largest, ended)
		}
	})
}

// TestCloseWithRelayedStreamsWaiting: streams queued for a backend that has not sent
// its SETTINGS yet (one stream at a time until then) are dropped when the connection
// closes, and closing ends.
func TestCloseWithRelayedStreamsWaiting(t *testing.T) {
	r := newRaw(t, h2fast.Config{}, &checkHandler{})
	for range 5 {
		r.request("/other.Service/Method", nil, false)
	}
	r.flush()
	bs := r.c.Unattached()
	if len(bs) != 1 {
		t.Fatalf("%d backends", len(bs))
	}
	done := make(chan struct{})
	go func() {
		r.c.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if !bs[0].Done() {
		t.Fatal("the backend of a closed connection is not done")
	}
}

// TestRequestEndedByAnEmptyFrame: a request whose message comes in one DATA frame and
// whose end in another (as Rust's h2 sends them), other frames between, reaches the
// Handler as sent.
func TestRequestEndedByAnEmptyFrame(t *testing.T) {
	h := &checkHandler{}
	var got string
	h.hook = func(call *h2fast.Call, req *healthpb.HealthCheckRequest) bool {
		got = req.GetService()
		call.Reply, _ = proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
		return true
	}
	r := newRaw(t, h2fast.Config{}, h)
	msg, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: "the-service-asked-for"})
	id := r.request(checkPath, msg, false)
	r.flush()
	r.fr.WritePing(false, [8]byte{'o', 'v', 'e', 'r', 'w', 'r', 'i', 't'}) // read into the same buffer
	other := r.request(checkPath, []byte("xxxxxxxxxxxxxxxxxxxxxxx"), false)
	r.fr.WriteData(id, true, nil)
	r.fr.WriteRSTStream(other, http2.ErrCodeCancel)
	r.flush()
	if got != "the-service-asked-for" {
		t.Fatalf("the Handler got %q", got)
	}
}
