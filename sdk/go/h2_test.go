package cachee

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// fakeServer is the server side of a Client's own connection, written frame by frame
// by a test.
type fakeServer struct {
	t   testing.TB
	fr  *http2.Framer
	out bytes.Buffer // what the test has the server send
	enc *hpack.Encoder
	blk bytes.Buffer
}

func newFakeServer(t testing.TB) *fakeServer {
	s := &fakeServer{t: t}
	s.fr = http2.NewFramer(&s.out, nil)
	s.enc = hpack.NewEncoder(&s.blk)
	s.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	return s
}

func (s *fakeServer) headers(id uint32, end bool, fields ...string) {
	s.blk.Reset()
	for i := 0; i < len(fields); i += 2 {
		s.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: s.blk.Bytes(), EndHeaders: true, EndStream: end})
}

// answer has the server answer stream id with the message m and status OK.
func (s *fakeServer) answer(id uint32, m proto.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	s.headers(id, false, ":status", "200", "content-type", "application/grpc")
	s.fr.WriteData(id, false, append([]byte{0, byte(len(b) >> 24), byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}, b...))
	s.headers(id, true, "grpc-status", "0")
}

// dialFake connects a Client's own connection to a server that writes the settings
// the test wrote into s, and reads and drops everything the client sends; the test
// has it write more with send.
func dialFake(t testing.TB, s *fakeServer) (*h2conn, net.Conn) {
	cli, srv := net.Pipe()
	go io.Copy(io.Discard, srv)
	go srv.Write(bytes.Clone(s.out.Bytes()))
	s.out.Reset()
	c, err := newH2Conn(cli, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close(); srv.Close() })
	return c, srv
}

// send writes what the test wrote into s since the last send.
func (s *fakeServer) send(srv net.Conn) {
	if _, err := srv.Write(s.out.Bytes()); err != nil {
		s.t.Fatal(err)
	}
	s.out.Reset()
}

var getMethod = newH2Method("/cachee.v1.CacheService/Get", "localhost", "")

type callResult struct {
	msg []byte
	err error
}

// goGet starts a Get of key with a deadline of d and waits until its stream is open.
func goGet(t testing.TB, c *h2conn, key string, d time.Duration) <-chan callResult {
	return startGet(t, c, context.Background(), key, d)
}

// startGet is goGet with a context.
func startGet(t testing.TB, c *h2conn, ctx context.Context, key string, d time.Duration) <-chan callResult {
	c.mu.Lock()
	id := c.nextID
	c.mu.Unlock()
	out := make(chan callResult, 1)
	go func() {
		k := []byte(key)
		call, err := c.call(ctx, time.Now().Add(d), getMethod, sizeBytesField(1, len(k)),
			func(b []byte) []byte { return appendBytesField(b, 1, k) })
		if err != nil {
			out <- callResult{err: err}
			return
		}
		msg, err := call.result()
		out <- callResult{bytes.Clone(msg), err}
		putCall(call)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		open := c.nextID > id
		c.mu.Unlock()
		if open {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatal("the call did not start")
		}
	}
}

func TestH2Answers(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)

	r := goGet(t, c, "a", 5*time.Second)
	s.answer(1, &cacheev1.GetResponse{Found: true, Value: []byte("v1")})
	s.send(srv)
	res := <-r
	found, v, derr := decodeGetResponse(res.msg)
	if res.err != nil || derr != nil || !found || string(v) != "v1" {
		t.Fatalf("answer: %q %v %v", res.msg, res.err, derr)
	}

	// An error, trailers only, with an ErrorInfo.
	r = goGet(t, c, "", 5*time.Second)
	info, _ := anypb.New(&errdetails.ErrorInfo{Reason: "KEY_EMPTY", Domain: "cachee", Metadata: map[string]string{"field": "key"}})
	details, _ := proto.Marshal(&spb.Status{Code: int32(codes.InvalidArgument), Message: "key: empty", Details: []*anypb.Any{info}})
	s.headers(3, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "3",
		"grpc-message", "key%3A empty", "grpc-status-details-bin", encodeBin(details))
	s.send(srv)
	e := fromStatus((<-r).err).(*Error)
	if e.Code != codes.InvalidArgument || e.Reason != "KEY_EMPTY" || e.Metadata["field"] != "key" || e.Message != "key: empty" || !errors.Is(e, ErrKeyEmpty) {
		t.Fatalf("error: %#v", e)
	}

	// An HTTP error with no gRPC status.
	r = goGet(t, c, "b", 5*time.Second)
	s.headers(5, true, ":status", "503")
	s.send(srv)
	if err := (<-r).err; status.Code(err) != codes.Unavailable {
		t.Fatalf("HTTP 503: %v", err)
	}
}

func encodeBin(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// A GOAWAY fails the calls the server will not answer (unprocessed: safe to try
// again), lets the others finish, and stops new calls.
func TestH2GoAway(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	one := goGet(t, c, "one", 10*time.Second) // stream 1
	two := goGet(t, c, "two", 10*time.Second) // stream 3
	s.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	s.send(srv)
	if err := (<-two).err; status.Code(err) != codes.Unavailable {
		t.Fatalf("the call after the last stream: %v, want UNAVAILABLE", err)
	}
	if c.usable() {
		t.Fatal("a connection the server is leaving takes new calls")
	}
	s.answer(1, &cacheev1.GetResponse{})
	s.send(srv)
	if err := (<-one).err; err != nil {
		t.Fatalf("the call the server kept: %v", err)
	}
	select {
	case <-c.done: // closed once its last call ended
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open after its last call")
	}
}

// A call that runs out of time is reset, and a late answer to it is ignored.
func TestH2Deadline(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	if err := (<-goGet(t, c, "k", 20*time.Millisecond)).err; status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("%v, want DEADLINE_EXCEEDED", err)
	}
	r := goGet(t, c, "next", 10*time.Second) // stream 3
	s.answer(1, &cacheev1.GetResponse{Found: true})
	s.answer(3, &cacheev1.GetResponse{Found: true, Value: []byte("x")})
	s.send(srv)
	res := <-r
	if found, v, _ := decodeGetResponse(res.msg); res.err != nil || !found || string(v) != "x" {
		t.Fatalf("a call after a late answer: %q %v", res.msg, res.err)
	}
}

func TestH2TimeoutField(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "1u"},
		{1500 * time.Nanosecond, "2u"},
		{time.Second, "1000000u"},
		{99 * time.Second, "99000000u"},
		{200 * time.Second, "200000m"},
		{1000 * time.Hour, "3600000S"},
	} {
		d := hpack.NewDecoder(4096, nil)
		fields, err := d.DecodeFull(appendTimeout(nil, hpackLiteral, 0, tc.d))
		if err != nil || len(fields) != 1 || fields[0].Name != "grpc-timeout" || fields[0].Value != tc.want {
			t.Errorf("%v: %v %v, want %s", tc.d, fields, err, tc.want)
		}
	}
	// The method's fields decode as grpc-go expects them.
	fields, err := hpack.NewDecoder(4096, nil).DecodeFull(newHpackTable().appendHeaders(nil, newH2Method("/s/M", "localhost", "tok"), -1))
	want := []string{":method", "POST", ":scheme", "http", ":path", "/s/M", ":authority", "localhost",
		"content-type", "application/grpc", "te", "trailers", "authorization", "Bearer tok"}
	if err != nil || len(fields) != len(want)/2 {
		t.Fatalf("%v %v", fields, err)
	}
	for i, f := range fields {
		if f.Name != want[2*i] || f.Value != want[2*i+1] {
			t.Errorf("field %d: %v, want %s: %s", i, f, want[2*i], want[2*i+1])
		}
	}
	if !fields[len(fields)-1].Sensitive {
		t.Error("the token may be indexed")
	}
}

// FuzzH2Responses feeds the Client's own connection arbitrary bytes from the server
// after its settings, written in pieces of chunk bytes (0: at once), so that frames
// arrive cut anywhere: whatever they are, a call ends (answered, refused, or failed
// with the connection) and nothing panics.
func FuzzH2Responses(f *testing.F) {
	s := newFakeServer(f)
	f.Add([]byte{}, uint16(0))
	s.out.Reset()
	s.answer(1, &cacheev1.GetResponse{Found: true, Value: []byte("v")})
	f.Add(bytes.Clone(s.out.Bytes()), uint16(0))
	f.Add(bytes.Clone(s.out.Bytes()), uint16(1))
	f.Add(bytes.Clone(s.out.Bytes()), uint16(7))
	s.out.Reset()
	s.headers(1, true, ":status", "200", "grpc-status", "5", "grpc-message", "a%20b", "grpc-status-details-bin", "AAAA")
	f.Add(bytes.Clone(s.out.Bytes()), uint16(3))
	s.out.Reset()
	s.fr.WriteData(1, true, []byte{0, 0, 0, 0, 9, 1})
	s.fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	s.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	s.fr.WriteWindowUpdate(1, 100)
	s.fr.WritePing(false, [8]byte{1})
	f.Add(bytes.Clone(s.out.Bytes()), uint16(10))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		s := newFakeServer(t)
		c, srv := dialFake(t, s)
		r := goGet(t, c, "k", time.Minute)
		s.out.Write(data)
		go func() {
			b := s.out.Bytes()
			for n := int(chunk); n > 0 && len(b) > n; b = b[n:] {
				if _, err := srv.Write(b[:n]); err != nil {
					return
				}
			}
			srv.Write(b)
			srv.Close()
		}()
		if res := <-r; res.err == nil {
			decodeGetResponse(res.msg)
		}
	})
}

// FuzzAnswers holds the Client's readers of answers to proto.Unmarshal.
func FuzzAnswers(f *testing.F) {
	for _, m := range []proto.Message{
		&cacheev1.GetResponse{Found: true, Value: []byte("value")},
		&cacheev1.GetResponse{Found: true},
		&cacheev1.SetResponse{Stored: true},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{0x08, 0x02, 0x12, 0x00, 0x12, 0x01, 'x', 0x18, 0x01})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		var get cacheev1.GetResponse
		perr := proto.Unmarshal(b, &get)
		found, v, err := decodeGetResponse(b)
		if (perr == nil) != (err == nil) || err == nil && (found != get.GetFound() || !bytes.Equal(v, get.GetValue())) {
			t.Fatalf("GetResponse %x: %v %q %v; proto.Unmarshal %v %v", b, found, v, err, &get, perr)
		}
		var set cacheev1.SetResponse
		perr = proto.Unmarshal(b, &set)
		stored, err := decodeBoolAnswer(b)
		if (perr == nil) != (err == nil) || err == nil && stored != set.GetStored() {
			t.Fatalf("SetResponse %x: %v %v; proto.Unmarshal %v %v", b, stored, err, &set, perr)
		}
	})
}

// FuzzSetRequest holds the Client's writer of SetRequest to proto.Unmarshal.
func FuzzSetRequest(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), int64(1500*time.Millisecond), int32(1))
	f.Add([]byte(""), []byte(""), int64(-1), int32(-3))
	f.Fuzz(func(t *testing.T, key, value []byte, ttl int64, cond int32) {
		r := setRequest{key: key, value: value, ttl: time.Duration(ttl), cond: cond}
		b := r.append(nil)
		if len(b) != r.size() {
			t.Fatalf("size %d, wrote %d", r.size(), len(b))
		}
		var m cacheev1.SetRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		want := &cacheev1.SetRequest{Key: key, Value: value, Ttl: ttlProto(r.ttl), Condition: cacheev1.SetCondition(cond)}
		if !proto.Equal(&m, want) {
			t.Fatalf("wrote %v, want %v", &m, want)
		}
	})
}
