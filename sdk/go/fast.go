package cachee

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// fastPath is the Client's own transport for Get, Set and Delete (h2.go), kept
// connected in the background. Until it is connected, and when the Client is given
// grpc-go options (WithDialOptions), those calls go through grpc-go like the others.
type fastPath struct {
	network, addr string
	get, set, del *h2Method
	conn          atomic.Pointer[h2conn]
	dialing       sync.Mutex
}

// newFastPath returns the transport for target, or nil for a target only grpc-go's
// resolvers understand.
func newFastPath(target, token string) *fastPath {
	network, addr, authority, ok := h2Target(target)
	if !ok {
		return nil
	}
	m := func(name string) *h2Method {
		return newH2Method("/cachee.v1.CacheService/"+name, authority, token)
	}
	return &fastPath{network: network, addr: addr, get: m("Get"), set: m("Set"), del: m("Delete")}
}

// ready returns the connection, when it is up and takes new calls.
func (f *fastPath) ready() *h2conn {
	if f == nil {
		return nil
	}
	if c := f.conn.Load(); c != nil && c.usable() {
		return c
	}
	return nil
}

// connect dials, unless a connection is up, and reports whether one is.
func (f *fastPath) connect(ctx context.Context) bool {
	if f == nil {
		return false
	}
	f.dialing.Lock()
	defer f.dialing.Unlock()
	if f.ready() != nil {
		return true
	}
	c, err := dialH2(ctx, f.network, f.addr, maxRecvMsgSize)
	if err != nil {
		return false
	}
	// A connection that was replaced closes itself once its last call has ended
	// (it stopped taking calls: the server went away) or has failed already.
	f.conn.Store(c)
	return true
}

// keep connects again whenever the connection stops taking calls, with the Client's
// backoff between failed attempts, until ctx ends.
func (f *fastPath) keep(ctx context.Context, wg *sync.WaitGroup, backoff func(attempt int) time.Duration) {
	defer wg.Done()
	for attempt := 0; ; {
		if f.connect(ctx) {
			attempt = 0
			select {
			case <-f.conn.Load().gone:
			case <-ctx.Done():
				return
			}
			continue
		}
		t := time.NewTimer(backoff(attempt))
		attempt++
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func (f *fastPath) close() {
	if f == nil {
		return
	}
	f.dialing.Lock()
	defer f.dialing.Unlock()
	if c := f.conn.Swap(nil); c != nil {
		c.close()
	}
}

// fastCall makes one attempt of a per-key call: the request of reqLen bytes that
// encode appends, and the answer's message given to answer; on grpc-go's connection
// (slow) when the Client's own is not up.
func (c *Client) fastCall(ctx context.Context, deadline time.Time, m func(*fastPath) *h2Method, reqLen int,
	encode func([]byte) []byte, answer func(msg []byte) error, slow func(ctx context.Context) error) error {
	conn := c.fast.ready()
	if conn == nil {
		if _, ok := ctx.Deadline(); !ok && !deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		return slow(ctx)
	}
	call, err := conn.call(ctx, deadline, m(c.fast), reqLen, encode)
	if err != nil {
		return err
	}
	defer putCall(call)
	msg, err := call.result()
	if err != nil {
		return err
	}
	return answer(msg)
}

func methodGet(f *fastPath) *h2Method    { return f.get }
func methodSet(f *fastPath) *h2Method    { return f.set }
func methodDelete(f *fastPath) *h2Method { return f.del }

// Requests and answers of Get, Set and Delete, written and read by hand rather than
// by the generated code, so that a call allocates nothing for them; the fields are
// cache_service.proto's. FuzzAnswers holds the readers to proto.Unmarshal.

func sizeBytesField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// setRequest is a SetRequest: key (1), value (2), ttl (3: a Duration of seconds (1)
// and nanos (2), as durationpb.New gives them), condition (4).
type setRequest struct {
	key, value []byte
	ttl        time.Duration
	cond       int32
}

func (r *setRequest) durationSize() int {
	s, n := int64(r.ttl/time.Second), int64(r.ttl%time.Second)
	size := 0
	if s != 0 {
		size += protowire.SizeTag(1) + protowire.SizeVarint(uint64(s))
	}
	if n != 0 {
		size += protowire.SizeTag(2) + protowire.SizeVarint(uint64(n))
	}
	return size
}

func (r *setRequest) size() int {
	n := sizeBytesField(1, len(r.key))
	if len(r.value) > 0 {
		n += sizeBytesField(2, len(r.value))
	}
	if r.ttl != 0 {
		n += sizeBytesField(3, r.durationSize())
	}
	if r.cond != 0 {
		n += protowire.SizeTag(4) + protowire.SizeVarint(uint64(int64(r.cond)))
	}
	return n
}

func (r *setRequest) append(b []byte) []byte {
	b = appendBytesField(b, 1, r.key)
	if len(r.value) > 0 {
		b = appendBytesField(b, 2, r.value)
	}
	if r.ttl != 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(r.durationSize()))
		if s := int64(r.ttl / time.Second); s != 0 {
			b = protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.VarintType), uint64(s))
		}
		if n := int64(r.ttl % time.Second); n != 0 {
			b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), uint64(n))
		}
	}
	if r.cond != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, 4, protowire.VarintType), uint64(int64(r.cond)))
	}
	return b
}

// decodeGetResponse reads a GetResponse: found (1) and value (2), which points into b.
func decodeGetResponse(b []byte) (found bool, value []byte, err error) {
	err = walkFields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			found = v != 0
			return n
		case num == 2 && typ == protowire.BytesType:
			var n int
			value, n = protowire.ConsumeBytes(b)
			return n
		}
		return protowire.ConsumeFieldValue(num, typ, b)
	})
	return found, value, err
}

// decodeBoolAnswer reads a SetResponse or DeleteResponse: a bool (1).
func decodeBoolAnswer(b []byte) (v bool, err error) {
	err = walkFields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if num == 1 && typ == protowire.VarintType {
			x, n := protowire.ConsumeVarint(b)
			v = x != 0
			return n
		}
		return protowire.ConsumeFieldValue(num, typ, b)
	})
	return v, err
}

// walkFields calls field for each field of a message, which consumes its value and
// says how many bytes that took (negative: malformed).
func walkFields(b []byte, field func(num protowire.Number, typ protowire.Type, b []byte) int) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errMalformedAnswer
		}
		b = b[n:]
		if n = field(num, typ, b); n < 0 {
			return errMalformedAnswer
		}
		b = b[n:]
	}
	return nil
}

var errMalformedAnswer = grpcstatus.Error(codes.Internal, "cachee: the sidecar's answer is not a valid message of its type")
