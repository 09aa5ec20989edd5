package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

func TestBudget(t *testing.T) {
	var none *Budget
	if !none.TryAcquire(1<<40) || none.Used() != 0 || none.Limit() != 0 {
		t.Fatal("a nil budget must admit everything")
	}
	none.Release(5)
	if NewBudget(0) != nil {
		t.Fatal("NewBudget(0) must be unbounded")
	}
	b := NewBudget(100)
	if !b.TryAcquire(60) || !b.TryAcquire(40) {
		t.Fatal("admits up to the limit")
	}
	if b.TryAcquire(1) || b.Refused() != 1 {
		t.Fatal("refuses past the limit, and counts it")
	}
	b.Release(40)
	if b.TryAcquire(41) || !b.TryAcquire(40) || b.Used() != 100 {
		t.Fatalf("used %d", b.Used())
	}

	// Concurrent reservations never take it past the limit.
	b = NewBudget(1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for range 8 {
		wg.Go(func() {
			for range 10000 {
				if b.TryAcquire(7) {
					if u := b.Used(); u > 1000 {
						mu.Lock()
						peak = max(peak, u)
						mu.Unlock()
					}
					b.Release(7)
				}
			}
		})
	}
	wg.Wait()
	if peak != 0 || b.Used() != 0 {
		t.Fatalf("peak %d over the limit, %d left reserved", peak, b.Used())
	}
}

func TestBearerMatches(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{[]string{"Bearer tok"}, true},
		{[]string{"bearer tok"}, true},
		{[]string{"Bearer   tok"}, true},
		{[]string{"Bearer tok "}, false},
		{[]string{"Bearer to"}, false},
		{[]string{"Bearer tokk"}, false},
		{[]string{"Bearertok"}, false},
		{[]string{"tok"}, false},
		{[]string{""}, false},
		{nil, false},
		{[]string{"Bearer tok", "Bearer tok"}, false},
	} {
		// Both ways of finding the values: in a call's metadata (grpc-go) and in its
		// header list (the fast path).
		rejected := 0
		a := &auth{token: "tok", rejected: func(string) { rejected++ }}
		ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"authorization": tc.values})
		var first string
		if len(tc.values) > 0 {
			first = tc.values[0]
		}
		const m = "/cachee.v1.CacheService/Get"
		if got, fast := a.allowed(ctx, m), a.allowedBearer(m, first, len(tc.values)); got != tc.want || fast != tc.want {
			t.Errorf("%q: %v from the metadata, %v from the header list, want %v", tc.values, got, fast, tc.want)
		}
		if want := map[bool]int{true: 0, false: 2}[tc.want]; rejected != want {
			t.Errorf("%q: %d rejections counted, want %d", tc.values, rejected, want)
		}
	}
}

// panicky is a service whose handlers panic: no handler of cachee's should, but if
// one does, the recovery interceptor must turn it into INTERNAL and keep serving.
type panicky struct{}

var panickyDesc = grpc.ServiceDesc{
	ServiceName: "cachee.test.Panicky",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Get",
		// As protoc-gen-go-grpc generates it, so that the interceptors run.
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(cacheev1.GetRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) { panic("handler bug") }
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/cachee.test.Panicky/Get"}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, info, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler:       func(any, grpc.ServerStream) error { panic(errors.New("stream handler bug")) },
	}},
}

// serveInternal serves cfg on a store of its own and a temporary socket until the test
// ends, with setup run on the server before it listens, and returns it with a gRPC
// client connection to its socket.
func serveInternal(t *testing.T, cfg Config, setup func(*Server)) (*Server, *grpc.ClientConn) {
	t.Helper()
	st, err := store.Open(store.Config{MaxMemory: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir, err := os.MkdirTemp("", "cachee") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg.Socket = filepath.Join(dir, "c.sock")
	cfg.Addr, cfg.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.GracePeriod = 100 * time.Millisecond
	s, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	cc, err := grpc.NewClient("unix://"+cfg.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return s, cc
}

func TestPanicBecomesInternal(t *testing.T) {
	_, cc := serveInternal(t, Config{}, func(s *Server) { s.grpc.RegisterService(&panickyDesc, panicky{}) })
	cx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	for range 3 {
		err := cc.Invoke(cx, "/cachee.test.Panicky/Get", &cacheev1.GetRequest{Key: []byte("k")}, new(cacheev1.GetResponse))
		if status.Code(err) != codes.Internal {
			t.Fatalf("unary panic: %v, want Internal", err)
		}
		cs, err := cc.NewStream(cx, &panickyDesc.Streams[0], "/cachee.test.Panicky/Watch")
		if err == nil {
			if err = cs.SendMsg(&cacheev1.GetRequest{}); err == nil {
				cs.CloseSend()
				err = cs.RecvMsg(new(cacheev1.GetResponse))
			}
		}
		if status.Code(err) != codes.Internal {
			t.Fatalf("stream panic: %v, want Internal", err)
		}
	}
	// The server is alive and serves the real service on the same connection.
	c := cacheev1.NewCacheServiceClient(cc)
	if _, err := c.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Get(cx, &cacheev1.GetRequest{Key: []byte("k")}); err != nil || string(r.GetValue()) != "v" {
		t.Fatalf("%v %v", r, err)
	}
}
