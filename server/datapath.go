package server

import (
	"context"
	"errors"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/h2fast"
)

// The data-path RPCs are what applications call at high rates, so each is served by a
// handler of its own instead of the generated one and the interceptor chain: it does
// in one function what the chain does (the bearer token, the grpc_server_* counters,
// recovery from a panic, validation), with counters resolved once. Get, Set and Delete
// decode their request in place, from the buffer grpc-go read it into (which the call
// holds until it returns), and Get writes its answer from the store straight into the
// buffer grpc-go writes it from. Debug logging, which logs every call, needs the
// chain: with it, the generated handlers serve them too.

// dataMethod is a row of the data-path table: how one per-key RPC is served from its
// request's bytes.
type dataMethod func(d *dataPath, ctx context.Context, req []byte) (any, error)

// dataMethods is the data-path table: the one list of per-key RPCs.
var dataMethods = map[string]dataMethod{
	"Get":          (*dataPath).get,
	"Set":          (*dataPath).set,
	"Delete":       (*dataPath).delete,
	"BatchGet":     decoded((*service).BatchGet),
	"BatchSet":     decoded((*service).BatchSet),
	"RecordAccess": decoded((*service).RecordAccess),
}

// isDataPath reports whether a method is one of the data-path RPCs.
func isDataPath(service, method string) bool {
	return service == cacheev1.CacheService_ServiceDesc.ServiceName && dataMethods[method] != nil
}

// dataPath serves the data-path RPCs.
type dataPath struct {
	svc     *service
	gate    *readGate
	pool    *bufferPool
	lim     limits
	auth    *auth
	fm      *fastMetrics
	panics  func(ctx context.Context, p any) error // logs a panic and says what to answer
	inPlace bool                                   // the tier keeps no reference to a key or value once a call returns
}

// rawRequest is a request as grpc-go read it: the codec hands over the bytes
// instead of decoding them.
type rawRequest struct {
	buf mem.Buffer
	b   []byte
}

var rawRequests = sync.Pool{New: func() any { return new(rawRequest) }}

// held is what the request holds that the Budget does not count yet: a buffer of the
// pool is charged by the pool.
func (r *rawRequest) held() int64 {
	if _, plain := r.buf.(mem.SliceBuffer); plain {
		return int64(len(r.b))
	}
	return 0
}

func (r *rawRequest) release() {
	if r.buf != nil {
		r.buf.Free()
	}
	*r = rawRequest{}
	rawRequests.Put(r)
}

// handlers gives the grpc.MethodHandler of a data-path method (nil for any other
// method, or when d is nil), for registrar.
func (d *dataPath) handlers(fullMethod string) grpc.MethodHandler {
	m, ok := d.method(fullMethod, false)
	if !ok {
		return nil
	}
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (resp any, err error) {
		raw := rawRequests.Get().(*rawRequest)
		defer raw.release()
		held, err := d.gate.read(ctx, raw, dec)
		if err != nil {
			return nil, err
		}
		defer d.gate.budget.Release(held)
		return d.call(ctx, m, raw.b, d.auth.allowed(ctx, m.full))
	}
}

// dataCall is a data-path method: its row, and what it is counted and authorized as.
type dataCall struct {
	full  string // "/cachee.v1.CacheService/Get"
	i     int    // its index in fastMetrics
	serve dataMethod
}

// method returns the data-path method of a full method name, if d serves it, as
// grpc-go's handlers serve it or (fast) as the fast path does.
func (d *dataPath) method(fullMethod string, fast bool) (dataCall, bool) {
	svc, name, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if d == nil || !isDataPath(svc, name) {
		return dataCall{}, false
	}
	serve := dataMethods[name]
	if fast && name == "Get" {
		serve = (*dataPath).getFast
	}
	return dataCall{full: fullMethod, i: d.fm.methods[name], serve: serve}, true
}

// call serves one data-path call from its request's bytes, as the interceptor chain
// would: the grpc_server_* counters, recovery from a panic, and the bearer token's
// verdict (authorized, from auth), which the caller gives because grpc-go's path and
// the fast path find the token in different places.
func (d *dataPath) call(ctx context.Context, m dataCall, req []byte, authorized bool) (resp any, err error) {
	fm := d.fm
	fm.started[m.i].Add(1)
	fm.received[m.i].Add(1)
	if authorized {
		resp, err = d.serve(ctx, m.serve, req)
	} else {
		err = toStatus(errUnauthenticated)
	}
	if c := int(status.Code(err)); c < numCodes {
		fm.handled[m.i][c].Add(1)
	}
	if err == nil {
		fm.sent[m.i].Add(1)
	}
	return resp, err
}

// serve runs one call, turning a panic into INTERNAL as the recovery interceptor does.
func (d *dataPath) serve(ctx context.Context, serve dataMethod, req []byte) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, d.panics(ctx, p)
		}
	}()
	return serve(d, ctx, req)
}

// get serves Get. Its answer is encoded in buffers of the pool, which grpc-go returns
// once it has written them: found = true (field 1, 0x08 0x01) and the value (field 2,
// bytes), or nothing for a miss.
func (d *dataPath) get(ctx context.Context, req []byte) (any, error) {
	return d.getAnswer(ctx, req, false)
}

// getFast serves Get on the gRPC fast path, as get does but for a value larger than
// the pool's buffer: the store reads it into a buffer of its own after room for the
// answer's prefix and field headers, and the answer is sent from there (a
// fastAnswer), so that the value is copied once.
func (d *dataPath) getFast(ctx context.Context, req []byte) (any, error) {
	return d.getAnswer(ctx, req, true)
}

// fastAnswer is a whole gRPC message, its h2fast.PrefixLen bytes of prefix (to be
// filled) and the encoded answer, as the fast path sends it.
type fastAnswer []byte

func (d *dataPath) getAnswer(ctx context.Context, req []byte, fast bool) (any, error) {
	key, err := d.keyRequest(req, newGetRequest)
	if err != nil {
		return nil, err
	}
	// The value is read to where it will be sent from, after room for the field
	// headers (and the message's prefix, on the fast path, which then has the store
	// append it to that room, so that a buffer of the value's own has it too).
	room := 3 + binaryMaxVarint32
	bp := d.pool.Get(4 << 10)
	dst := (*bp)[room:room]
	if fast {
		room += h2fast.PrefixLen
		dst = (*bp)[:room]
	}
	t := d.svc.lat.start()
	v, found, err := d.svc.tier.Get(ctx, key, dst)
	d.svc.lat.done(t)
	if err != nil || !found {
		d.pool.Put(bp)
		if err != nil {
			return nil, toStatus(err)
		}
		return emptyAnswer, nil
	}
	val := v[len(dst):]
	n := len(val)
	if n > 0 && &val[0] != &(*bp)[room] {
		// Larger than the buffer: the store copied it to a slice of its own, which
		// the answer is sent from, charged until it has been written, if the budget
		// holds it.
		d.pool.Put(bp)
		if !d.svc.budget.TryAcquire(int64(n)) {
			return nil, toStatus(errOverloaded)
		}
		if fast {
			d.svc.budget.Release(int64(n)) // the fast path charges what it holds to send
			var hdr [3 + binaryMaxVarint32]byte
			h := appendFound(hdr[:0], n)
			start := room - len(h) - h2fast.PrefixLen
			copy(v[start+h2fast.PrefixLen:], h)
			return fastAnswer(v[start:]), nil
		}
		vp := d.pool.adopt(v)
		d.svc.budget.Release(int64(n))
		return mem.BufferSlice{mem.SliceBuffer(appendFound(make([]byte, 0, room), n)), mem.NewBuffer(vp, d.pool)}, nil
	}
	b := appendFound((*bp)[:0], n)
	b = append(b, (*bp)[room:room+n]...) // moves the value down over the unused room
	*bp = b
	return mem.NewBuffer(bp, d.pool), nil
}

// appendFound appends the fields of a GetResponse before its value of n bytes.
func appendFound(b []byte, n int) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = append(b, 1)
	if n > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
	}
	return b
}

// binaryMaxVarint32 is the most bytes a varint of a length up to 2^32 takes.
const binaryMaxVarint32 = 5

// set serves Set.
func (d *dataPath) set(ctx context.Context, req []byte) (any, error) {
	r, err := decodeSet(req)
	if err != nil {
		return nil, unmarshalError(proto.Unmarshal(req, new(cacheev1.SetRequest)))
	}
	ttl := durationpb.Duration{Seconds: r.ttlSeconds, Nanos: r.ttlNanos}
	var ttlp *durationpb.Duration
	if r.hasTTL {
		ttlp = &ttl
	}
	if err := d.lim.item("", r.key, r.value, ttlp, r.cond); err != nil {
		return nil, toStatus(err)
	}
	opt, err := setOptions(ttlp, r.cond)
	if err != nil {
		return nil, toStatus(err)
	}
	t := d.svc.lat.start()
	ok, err := d.svc.tier.Set(ctx, d.own(r.key), d.own(r.value), opt)
	d.svc.lat.done(t)
	if err != nil {
		return nil, toStatus(err)
	}
	return boolAnswer(ok), nil
}

// delete serves Delete.
func (d *dataPath) delete(ctx context.Context, req []byte) (any, error) {
	key, err := d.keyRequest(req, newDeleteRequest)
	if err != nil {
		return nil, err
	}
	t := d.svc.lat.start()
	ok, err := d.svc.tier.Delete(ctx, key)
	d.svc.lat.done(t)
	if err != nil {
		return nil, toStatus(err)
	}
	return boolAnswer(ok), nil
}

// keyRequest decodes and checks the key of a GetRequest or DeleteRequest (newMsg
// makes the message, which only an error needs).
func (d *dataPath) keyRequest(req []byte, newMsg func() proto.Message) ([]byte, error) {
	key, err := decodeKey(req)
	if err != nil {
		return nil, unmarshalError(proto.Unmarshal(req, newMsg()))
	}
	if err := d.lim.key("key", key); err != nil {
		return nil, toStatus(err)
	}
	return d.own(key), nil
}

// newGetRequest and newDeleteRequest make the message keyRequest reports a bad
// request's error with: only then, so that a good one allocates none.
func newGetRequest() proto.Message    { return new(cacheev1.GetRequest) }
func newDeleteRequest() proto.Message { return new(cacheev1.DeleteRequest) }

// own returns b, or a copy of it when the tier might keep a reference after the call
// (an L2 tier's writes), since b points into a buffer grpc-go reuses.
func (d *dataPath) own(b []byte) []byte {
	if d.inPlace || b == nil {
		return b
	}
	return append([]byte(nil), b...)
}

// decoded makes a row for a method served from its decoded request message by the
// service's own method.
func decoded[Req any, PReq interface {
	*Req
	proto.Message
}, Resp any](call func(*service, context.Context, PReq) (Resp, error)) dataMethod {
	return func(d *dataPath, ctx context.Context, b []byte) (any, error) {
		req := PReq(new(Req))
		if err := proto.Unmarshal(b, req); err != nil {
			return nil, unmarshalError(err)
		}
		if err := d.lim.validate(req); err != nil {
			return nil, toStatus(err)
		}
		return call(d.svc, ctx, req)
	}
}

// A data-path handler may answer with a mem.Buffer that holds the answer already
// encoded; the codec sends it as it is. These are shared: grpc-go only reads them.
var (
	emptyAnswer mem.Buffer = mem.SliceBuffer{}           // a message with no field set
	trueAnswer  mem.Buffer = mem.SliceBuffer{0x08, 0x01} // field 1, a bool, true
)

// boolAnswer is the encoding of SetResponse and DeleteResponse: field 1, a bool.
func boolAnswer(b bool) mem.Buffer {
	if b {
		return trueAnswer
	}
	return emptyAnswer
}

// decodeKey decodes a GetRequest or DeleteRequest (field 1, key) in place. Unknown
// fields are skipped; a field repeated counts its last value, as proto.Unmarshal does.
func decodeKey(b []byte) (key []byte, err error) {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return nil, errMalformed
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			key, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, errMalformed
		}
		b = b[n:]
	}
	return key, nil
}

// setRequest is a SetRequest decoded in place.
type setRequest struct {
	key, value []byte
	hasTTL     bool
	ttlSeconds int64
	ttlNanos   int32
	cond       cacheev1.SetCondition
}

// decodeSet decodes a SetRequest in place: key (1), value (2), ttl (3, a Duration
// of seconds (1) and nanos (2)), condition (4).
func decodeSet(b []byte) (r setRequest, err error) {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return r, errMalformed
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			r.key, n = protowire.ConsumeBytes(b)
		case num == 2 && typ == protowire.BytesType:
			r.value, n = protowire.ConsumeBytes(b)
		case num == 3 && typ == protowire.BytesType:
			var d []byte
			if d, n = protowire.ConsumeBytes(b); n >= 0 {
				// A message field that occurs again is merged: its fields overwrite.
				r.hasTTL = true
				if err := decodeDuration(d, &r.ttlSeconds, &r.ttlNanos); err != nil {
					return r, err
				}
			}
		case num == 4 && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			r.cond = cacheev1.SetCondition(int32(v))
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return r, errMalformed
		}
		b = b[n:]
	}
	return r, nil
}

func decodeDuration(b []byte, seconds *int64, nanos *int32) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			*seconds = int64(v)
		case num == 2 && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			*nanos = int32(v)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
	}
	return nil
}

// consumeTag is protowire.ConsumeTag, refusing field numbers out of range as
// proto.Unmarshal does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

// errMalformed is a request that is not a valid message of its type.
var errMalformed = errors.New("server: malformed request")

// unmarshalError is the status grpc-go answers a request that is not its method's
// message with, to the word: the answer does not depend on which path served the
// call. The in-place decoders give the error of proto.Unmarshal, which they follow
// (FuzzDecodeInPlace), by calling it.
func unmarshalError(err error) error {
	return status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
}
