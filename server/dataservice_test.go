package server_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// TestDataPathHandlersMatchTheChain runs the same calls against a server whose
// data-path methods have their own handlers (the default) and one where the
// generated handlers and the interceptor chain serve them (debug logging), each on
// grpc-go and on the fast path, and requires the same answers and the same errors,
// to the ErrorInfo and the message.
func TestDataPathHandlersMatchTheChain(t *testing.T) {
	type call struct {
		method string
		req    proto.Message
	}
	big := make([]byte, 64<<10+1)
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	calls := []call{
		{"Get", &cacheev1.GetRequest{Key: []byte("k")}},
		{"Set", &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v1")}},
		{"Get", &cacheev1.GetRequest{Key: []byte("k")}},
		{"Set", &cacheev1.SetRequest{Key: []byte("empty")}},
		{"Get", &cacheev1.GetRequest{Key: []byte("empty")}},
		{"Set", &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v2"), Condition: cacheev1.SetCondition_SET_CONDITION_IF_ABSENT}},
		{"Set", &cacheev1.SetRequest{Key: []byte("n"), Value: []byte("v"), Condition: cacheev1.SetCondition_SET_CONDITION_IF_PRESENT}},
		{"Set", &cacheev1.SetRequest{Key: []byte("t"), Value: []byte("v"), Ttl: durationpb.New(time.Hour)}},
		{"Set", &cacheev1.SetRequest{Key: []byte("t"), Value: []byte("v"), Ttl: &durationpb.Duration{Seconds: -1}}},
		{"Set", &cacheev1.SetRequest{Key: []byte("t"), Value: []byte("v"), Ttl: &durationpb.Duration{Seconds: 1, Nanos: -1}}},
		{"Set", &cacheev1.SetRequest{Key: []byte("t"), Value: []byte("v"), Condition: 7}},
		{"Set", &cacheev1.SetRequest{Value: []byte("v")}},
		{"Set", &cacheev1.SetRequest{Key: big, Value: []byte("v")}},
		{"Set", &cacheev1.SetRequest{Key: []byte("big"), Value: make([]byte, 1<<20+1)}},
		{"Set", &cacheev1.SetRequest{Key: []byte("large"), Value: pattern(700 << 10)}},
		{"Get", &cacheev1.GetRequest{Key: []byte("large")}},
		{"Set", &cacheev1.SetRequest{Key: []byte("mid"), Value: pattern(10 << 10)}}, // past the pool's first buffer
		{"Get", &cacheev1.GetRequest{Key: []byte("mid")}},
		{"Set", &cacheev1.SetRequest{Key: []byte("small"), Value: pattern(4<<10 - 20)}},
		{"Get", &cacheev1.GetRequest{Key: []byte("small")}},
		{"Get", &cacheev1.GetRequest{Key: []byte("mid")}},
		{"Get", &cacheev1.GetRequest{}},
		{"Get", &cacheev1.GetRequest{Key: big}},
		{"Delete", &cacheev1.DeleteRequest{Key: []byte("k")}},
		{"Delete", &cacheev1.DeleteRequest{Key: []byte("k")}},
		{"Delete", &cacheev1.DeleteRequest{}},
		{"BatchSet", &cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}}},
		{"BatchSet", &cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{{Key: []byte("a"), Value: []byte("1")}, {Value: []byte("2")}}}},
		{"BatchGet", &cacheev1.BatchGetRequest{Keys: [][]byte{[]byte("a"), []byte("missing"), []byte("b")}}},
		{"BatchGet", &cacheev1.BatchGetRequest{Keys: make([][]byte, 1001)}},
		{"RecordAccess", &cacheev1.RecordAccessRequest{Refs: []uint64{1, 2}, UnreportedHits: 3}},
		{"RecordAccess", &cacheev1.RecordAccessRequest{Refs: make([]uint64, 1<<16+1)}},
	}
	responses := map[string]func() proto.Message{
		"Get": func() proto.Message { return new(cacheev1.GetResponse) }, "Set": func() proto.Message { return new(cacheev1.SetResponse) },
		"Delete": func() proto.Message { return new(cacheev1.DeleteResponse) }, "BatchGet": func() proto.Message { return new(cacheev1.BatchGetResponse) },
		"BatchSet":     func() proto.Message { return new(cacheev1.BatchSetResponse) },
		"RecordAccess": func() proto.Message { return new(cacheev1.RecordAccessResponse) },
	}
	defer onGRPCGo()()
	run := func(fast bool, level slog.Level) []string {
		fastPath = fast
		r := serveAt(t, server.Config{Budget: server.NewBudget(16 << 20)}, level)
		cc := grpcConn(t, "unix://"+r.addrs.Socket)
		var out []string
		for _, c := range calls {
			resp := responses[c.method]()
			err := cc.Invoke(bounded(t), "/cachee.v1.CacheService/"+c.method, c.req, resp)
			out = append(out, describe(c.method, resp, err))
		}
		return out
	}
	chain := run(false, slog.LevelDebug)
	for _, w := range []struct {
		name  string
		fast  bool
		level slog.Level
	}{{"own handlers", false, slog.LevelInfo}, {"fast path, own handlers", true, slog.LevelInfo}, {"fast path, chain", true, slog.LevelDebug}} {
		got := run(w.fast, w.level)
		for i := range calls {
			if got[i] != chain[i] {
				t.Errorf("call %d: %s:\n\t%s\ngrpc-go, chain:\n\t%s", i, w.name, got[i], chain[i])
			}
		}
	}
}

// onGRPCGo has the servers the test starts serve gRPC from grpc-go alone, where the
// data-path handlers are, and returns what undoes it.
func onGRPCGo() (undo func()) {
	old := fastPath
	fastPath = false
	return func() { fastPath = old }
}

// describe renders a call's outcome: the answer, or the status and its ErrorInfo.
func describe(method string, resp proto.Message, err error) string {
	if err == nil {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(resp)
		s := fmt.Sprintf("%s ok %v", method, resp)
		if len(s) > 300 {
			s = s[:300]
		}
		return fmt.Sprintf("%s (%d bytes, crc %08x)", s, len(b), crc32.ChecksumIEEE(b))
	}
	st := status.Convert(err)
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	return fmt.Sprintf("%s %v %q %v", method, st.Code(), st.Message(), info)
}

// panicTier is the store, but panics on every read.
type panicTier struct{ st *store.Store }

func (panicTier) Get(context.Context, []byte, []byte) ([]byte, bool, error) { panic("tier bug") }
func (t panicTier) GetMany(_ context.Context, keys [][]byte, fn func(int, []byte, bool, error)) {
	t.st.GetMany(keys, fn)
}
func (t panicTier) Set(_ context.Context, key, value []byte, opt store.SetOptions) (bool, error) {
	return t.st.Set(key, value, opt)
}
func (t panicTier) SetMany(_ context.Context, items []store.Item, stored []bool) []error {
	return t.st.SetMany(items, stored)
}
func (t panicTier) Delete(_ context.Context, key []byte) (bool, error) { return t.st.Delete(key) }

// A panic in a data-path handler becomes INTERNAL for that call, is logged and
// counted, and the server serves on.
func TestDataPathPanicBecomesInternal(t *testing.T) {
	defer onGRPCGo()()
	r := serveWith(t, server.Config{}, func(st *store.Store, cfg *server.Config) {
		cfg.Tier = panicTier{st}
	})
	_, err := r.client.Get(bounded(t), &cacheev1.GetRequest{Key: []byte("k")})
	wantReason(t, err, codes.Internal, "INTERNAL")
	if _, err := r.client.Set(bounded(t), &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("a Set after a Get panicked: %v", err)
	}
	if !strings.Contains(r.logs.String(), "panic in gRPC handler") || !strings.Contains(r.logs.String(), "tier bug") {
		t.Fatalf("panic not logged:\n%s", r.logs)
	}
	if m := metrics(t, r.addrs.Metrics); !strings.Contains(m, `grpc_server_handled_total{grpc_code="Internal",grpc_method="Get",grpc_service="cachee.v1.CacheService",grpc_type="unary"} 1`) {
		t.Fatal("the panic's INTERNAL not counted")
	}
}
