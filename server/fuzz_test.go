package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// Small limits, so that the fuzzer reaches them.
const (
	fuzzMaxKey   = 16
	fuzzMaxValue = 64
	fuzzMaxRecv  = fuzzMaxKey + fuzzMaxValue + 4<<10 // the server's message size limit for these
)

// rawCodec sends a message's bytes as they are, so that the fuzzer's bytes reach the
// server's decoder untouched.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

// fuzzServer is one in-process server for all iterations of a fuzzing process.
var fuzzServer = sync.OnceValues(func() (*grpc.ClientConn, error) {
	st, err := store.Open(store.Config{MaxMemory: store.MinMemory, MaxKeySize: fuzzMaxKey, MaxValueSize: fuzzMaxValue})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cachee-fuzz")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "c.sock")
	srv, err := server.New(server.Config{Socket: sock, Addr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FastPath: fastPath}, st)
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	go srv.Serve(context.Background()) // lives as long as the fuzzing process
	return grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
})

// fuzzMethods are the unary calls, each with a fresh request message to decode the
// fuzzer's bytes into for the checks.
var fuzzMethods = []struct {
	name string
	req  func() proto.Message
}{
	{"Get", func() proto.Message { return new(cacheev1.GetRequest) }},
	{"Set", func() proto.Message { return new(cacheev1.SetRequest) }},
	{"Delete", func() proto.Message { return new(cacheev1.DeleteRequest) }},
	{"BatchGet", func() proto.Message { return new(cacheev1.BatchGetRequest) }},
	{"BatchSet", func() proto.Message { return new(cacheev1.BatchSetRequest) }},
	{"RecordAccess", func() proto.Message { return new(cacheev1.RecordAccessRequest) }},
	{"Stats", func() proto.Message { return new(cacheev1.StatsRequest) }},
}

// FuzzRequestValidation sends arbitrary bytes as the request of each unary call, over
// a real connection, through the interceptors, validation and handlers. Whatever the
// bytes: the server answers (no panic: that would be INTERNAL); every error it
// gives is classified (carries a cachee ErrorInfo, and is never INTERNAL or UNKNOWN),
// except gRPC's own answer to bytes that are not the message; and whatever passes
// validation is within the limits.
func FuzzRequestValidation(f *testing.F) {
	seed := func(method int, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(method), b)
	}
	seed(0, &cacheev1.GetRequest{Key: []byte("k")})
	seed(1, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v"), Ttl: durationpb.New(time.Second), Condition: cacheev1.SetCondition_SET_CONDITION_IF_ABSENT})
	seed(1, &cacheev1.SetRequest{Key: []byte("k"), Ttl: &durationpb.Duration{Seconds: -1, Nanos: 5}})
	seed(1, &cacheev1.SetRequest{Key: []byte("k"), Ttl: &durationpb.Duration{Seconds: 1 << 40}})
	seed(2, &cacheev1.DeleteRequest{Key: make([]byte, fuzzMaxKey+1)})
	seed(3, &cacheev1.BatchGetRequest{Keys: [][]byte{[]byte("a"), nil, []byte("b")}})
	seed(4, &cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{{Key: []byte("a"), Value: make([]byte, fuzzMaxValue)}, {Key: []byte("b"), Condition: 9}}})
	seed(5, &cacheev1.RecordAccessRequest{Refs: []uint64{0, 1, 1 << 63, ^uint64(0)}})
	seed(6, &cacheev1.StatsRequest{})

	cc, err := fuzzServer()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out []byte
		err := cc.Invoke(ctx, "/cachee.v1.CacheService/"+m.name, &data, &out, grpc.ForceCodec(rawCodec{}))
		req := m.req()
		if uerr := proto.Unmarshal(data, req); uerr != nil {
			// Not the message: gRPC refuses it itself, and nothing else happens.
			if err == nil {
				t.Fatalf("%s accepted bytes that are not its request: %v", m.name, uerr)
			}
			return
		}
		if err != nil {
			st := status.Convert(err)
			if st.Code() == codes.Internal || st.Code() == codes.Unknown {
				t.Fatalf("%s %v: unclassified error %v", m.name, req, err)
			}
			if st.Code() == codes.ResourceExhausted && len(st.Details()) == 0 && len(data) > 2*fuzzMaxRecv {
				return // over twice the message size limit: grpc-go refuses it unread
			}
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if info == nil || info.GetDomain() != server.ErrorDomain || info.GetReason() == "" {
				t.Fatalf("%s %v: error without a cachee ErrorInfo: %v", m.name, req, err)
			}
			return
		}
		if err := withinLimits(req); err != nil {
			t.Fatalf("%s passed validation: %v", m.name, err)
		}
	})
}

// withinLimits is validation's contract, stated again independently: what it passes
// has keys of 1 to fuzzMaxKey bytes, values of at most fuzzMaxValue, batches of at
// most server.MaxBatch, TTLs that are valid and not negative, and known conditions.
func withinLimits(req proto.Message) error {
	key := func(k []byte) error {
		if len(k) == 0 || len(k) > fuzzMaxKey {
			return fmt.Errorf("key of %d bytes", len(k))
		}
		return nil
	}
	item := func(k, v []byte, ttl *durationpb.Duration, c cacheev1.SetCondition) error {
		if err := key(k); err != nil {
			return err
		}
		if len(v) > fuzzMaxValue {
			return fmt.Errorf("value of %d bytes", len(v))
		}
		if ttl != nil && (ttl.CheckValid() != nil || ttl.AsDuration() < 0) {
			return fmt.Errorf("ttl %v", ttl)
		}
		if _, ok := cacheev1.SetCondition_name[int32(c)]; !ok {
			return fmt.Errorf("condition %d", c)
		}
		return nil
	}
	switch r := req.(type) {
	case *cacheev1.GetRequest:
		return key(r.GetKey())
	case *cacheev1.DeleteRequest:
		return key(r.GetKey())
	case *cacheev1.SetRequest:
		return item(r.GetKey(), r.GetValue(), r.GetTtl(), r.GetCondition())
	case *cacheev1.BatchGetRequest:
		if len(r.GetKeys()) > server.MaxBatch {
			return fmt.Errorf("%d keys", len(r.GetKeys()))
		}
		for _, k := range r.GetKeys() {
			if err := key(k); err != nil {
				return err
			}
		}
	case *cacheev1.BatchSetRequest:
		if len(r.GetItems()) > server.MaxBatch {
			return fmt.Errorf("%d items", len(r.GetItems()))
		}
		for _, it := range r.GetItems() {
			if err := item(it.GetKey(), it.GetValue(), it.GetTtl(), it.GetCondition()); err != nil {
				return err
			}
		}
	case *cacheev1.RecordAccessRequest:
		if len(r.GetRefs()) > server.MaxRefs {
			return fmt.Errorf("%d refs", len(r.GetRefs()))
		}
	}
	return nil
}
