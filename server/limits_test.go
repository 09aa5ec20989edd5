package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// TestMain lets the test binary double as a client run under another uid (see
// peerHelper), for the SO_PEERCRED tests.
func TestMain(m *testing.M) {
	if sock := os.Getenv("CACHEE_PEER_HELPER_SOCKET"); sock != "" {
		peerHelper(sock)
		return
	}
	os.Exit(m.Run())
}

// limited is an in-process server with a store of the test's choosing.
type limited struct {
	srv   *server.Server
	addrs server.Addrs
	logs  *syncBuffer
	stop  func() error
}

func serveLimited(t *testing.T, cfg server.Config, scfg store.Config) *limited {
	t.Helper()
	cfg.FastPath = fastPath
	return serveLimitedAs(t, cfg, scfg)
}

// serveLimitedAs is serveLimited with cfg.FastPath as given.
func serveLimitedAs(t *testing.T, cfg server.Config, scfg store.Config) *limited {
	t.Helper()
	st, err := store.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir, err := os.MkdirTemp("", "cachee")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	logs := &syncBuffer{}
	cfg.Socket = filepath.Join(dir, "run", "c.sock")
	cfg.Addr, cfg.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = 100 * time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), nil))
	srv, err := server.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			return errors.New("Serve did not return")
		}
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return &limited{srv: srv, addrs: srv.Addrs(), logs: logs, stop: stop}
}

func grpcConn(t *testing.T, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(target, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// bearer sends a fixed authorization header with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

func TestAuthToken(t *testing.T) {
	l := serveLimited(t, server.Config{AuthToken: "s3cret-token"}, store.Config{MaxMemory: 4 << 20})
	ctx := bounded(t)
	for _, target := range []string{"unix://" + l.addrs.Socket, l.addrs.TCP} {
		t.Run(target[:4], func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				header string // "" sends none
				ok     bool
			}{
				{"none", "", false},
				{"wrong", "Bearer s3cret-tokeN", false},
				{"prefix", "Bearer s3cret", false},
				{"longer", "Bearer s3cret-token2", false},
				{"no scheme", "s3cret-token", false},
				{"basic", "Basic s3cret-token", false},
				{"right", "Bearer s3cret-token", true},
				{"scheme in any case", "bEARER s3cret-token", true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					var opts []grpc.DialOption
					if tc.header != "" {
						opts = append(opts, grpc.WithPerRPCCredentials(bearer(tc.header)))
					}
					cc := grpcConn(t, target, opts...)
					_, err := cacheev1.NewCacheServiceClient(cc).Set(ctx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")})
					if tc.ok {
						if err != nil {
							t.Fatal(err)
						}
					} else {
						wantReason(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
					}
					// Reflection needs the token as well; health does not, so that
					// Kubernetes gRPC probes (which send no headers) work.
					rc, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
					if err == nil {
						// A Send to a stream the server has ended fails with io.EOF;
						// Recv then says how it ended.
						_ = rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
						_, err = rc.Recv()
					}
					if got := status.Code(err); tc.ok && err != nil || !tc.ok && got != codes.Unauthenticated {
						t.Fatalf("reflection: %v", err)
					}
					h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
					if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
						t.Fatalf("health: %v %v", h, err)
					}
				})
			}
		})
	}
	if !strings.Contains(metrics(t, l.addrs.Metrics), `cachee_rejected_total{reason="unauthenticated"}`) {
		t.Fatal("no cachee_rejected_total for unauthenticated calls")
	}
}

// Calls without the token are refused by an interceptor, so however many there are and
// whatever their deadlines, nothing lingers and clients with the token are served.
func TestUnauthenticatedCallsDoNotLockOut(t *testing.T) {
	l := serveLimited(t, server.Config{AuthToken: "s3cret-token"}, store.Config{MaxMemory: 4 << 20})
	c := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l.addrs.Socket))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for range 200 {
		if _, err := c.Get(ctx, &cacheev1.GetRequest{Key: []byte("k")}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Get without the token: %v", err)
		}
	}
	good := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l.addrs.Socket, grpc.WithPerRPCCredentials(bearer("Bearer s3cret-token"))))
	if _, err := good.Get(bounded(t), &cacheev1.GetRequest{Key: []byte("k")}); err != nil {
		t.Fatalf("a client with the token after 200 refused calls with an hour's deadline: %v", err)
	}
}

func metrics(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBudgetChargesCalls: gRPC calls are charged what they hold while they hold it, so
// that many calls run at once in a budget that holds one large message, an answer that
// does not fit is refused with OVERLOADED, and every charge ends with its call.
func TestBudgetChargesCalls(t *testing.T) {
	scfg := store.Config{MaxMemory: 4 << 20, MaxValueSize: 64 << 10}
	maxRecv := 64<<10 + 64<<10 + 4<<10 // key + value + slack: the default
	big := make([]byte, 60<<10)

	t.Run("charges end with the calls", func(t *testing.T) {
		b := server.NewBudget(server.MinBudget(maxRecv))
		l := serveLimited(t, server.Config{Budget: b}, scfg)
		cc := grpcConn(t, "unix://"+l.addrs.Socket)
		c := cacheev1.NewCacheServiceClient(cc)
		for i := range 20 {
			k := []byte(strconv.Itoa(i))
			if _, err := c.Set(bounded(t), &cacheev1.SetRequest{Key: k, Value: big}); err != nil {
				t.Fatalf("Set %d: %v", i, err)
			}
			if r, err := c.Get(bounded(t), &cacheev1.GetRequest{Key: k}); err != nil || len(r.GetValue()) != len(big) {
				t.Fatalf("Get %d: %v", i, err)
			}
		}
		// Many small calls at once, where one large message is all the budget holds.
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 64 {
			wg.Go(func() {
				for j := range 20 {
					if _, err := c.Get(bounded(t), &cacheev1.GetRequest{Key: []byte("small" + strconv.Itoa(j))}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a small Get among 64 at once: %v", err)
		}
		eventually(t, "the calls' charges to end", func() bool { return b.Used() == server.GRPCConnCost })
		cc.Close()
		eventually(t, "the connection's charge to end", func() bool { return b.Used() == 0 })
	})

	t.Run("an answer that does not fit is refused", func(t *testing.T) {
		b := server.NewBudget(server.MinBudget(maxRecv))
		l := serveLimited(t, server.Config{Budget: b}, scfg)
		c := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l.addrs.Socket))
		if _, err := c.Set(bounded(t), &cacheev1.SetRequest{Key: []byte("big"), Value: big}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the Set's charges to end", func() bool { return b.Used() == server.GRPCConnCost })
		// Others hold all but half of the value's size.
		others := b.Limit() - b.Used() - int64(len(big))/2
		if !b.TryAcquire(others) {
			t.Fatal("could not take the budget")
		}
		_, err := c.Get(bounded(t), &cacheev1.GetRequest{Key: []byte("big")})
		wantReason(t, err, codes.Unavailable, "OVERLOADED")
		for _, batch := range [][][]byte{{[]byte("big")}, {[]byte("absent"), []byte("big")}} {
			_, err = c.BatchGet(bounded(t), &cacheev1.BatchGetRequest{Keys: batch})
			wantReason(t, err, codes.Unavailable, "OVERLOADED")
		}
		// Small calls still go through: a request is read even when the budget is
		// full, as long as no other read is in progress.
		if r, err := c.Get(bounded(t), &cacheev1.GetRequest{Key: []byte("absent")}); err != nil || r.GetFound() {
			t.Fatalf("a Get of a missing key: %v %v", r, err)
		}
		b.Release(others)
		if r, err := c.Get(bounded(t), &cacheev1.GetRequest{Key: []byte("big")}); err != nil || len(r.GetValue()) != len(big) {
			t.Fatalf("once the others let go: %v", err)
		}
		if !strings.Contains(metrics(t, l.addrs.Metrics), `cachee_client_memory_limit_bytes `+strconv.FormatInt(b.Limit(), 10)) {
			t.Fatal("no client memory limit gauge")
		}
	})

	t.Run("no room for a connection", func(t *testing.T) {
		b := server.NewBudget(server.GRPCConnCost - 1)
		l := serveLimited(t, server.Config{Budget: b}, scfg)
		c := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l.addrs.Socket))
		_, err := c.Stats(bounded(t), &cacheev1.StatsRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("%v, want Unavailable", err)
		}
		if !strings.Contains(metrics(t, l.addrs.Metrics), `cachee_rejected_total{reason="client_memory"} `) {
			t.Fatal("refusal not counted")
		}
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMaxConns(t *testing.T) {
	l := serveLimited(t, server.Config{MaxConns: 1}, store.Config{MaxMemory: 4 << 20})
	first := grpcConn(t, "unix://"+l.addrs.Socket)
	if _, err := cacheev1.NewCacheServiceClient(first).Stats(bounded(t), &cacheev1.StatsRequest{}); err != nil {
		t.Fatal(err)
	}
	second := grpcConn(t, "unix://"+l.addrs.Socket)
	if _, err := cacheev1.NewCacheServiceClient(second).Stats(bounded(t), &cacheev1.StatsRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("second connection: %v, want Unavailable", err)
	}
	first.Close()
	// The slot is free again once the server has seen the first connection go.
	eventually(t, "a new connection to be admitted", func() bool {
		cc := grpcConn(t, "unix://"+l.addrs.Socket)
		defer cc.Close()
		_, err := cacheev1.NewCacheServiceClient(cc).Stats(bounded(t), &cacheev1.StatsRequest{})
		return err == nil
	})
}

func TestBatchGetAnswerBounded(t *testing.T) {
	l := serveLimited(t, server.Config{}, store.Config{MaxMemory: 32 << 20})
	c := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l.addrs.Socket,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20))))
	ctx := bounded(t)
	var keys [][]byte
	for i := range 5 {
		k := []byte(fmt.Sprint("big", i))
		if _, err := c.Set(ctx, &cacheev1.SetRequest{Key: k, Value: make([]byte, 1<<20)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	// An answer may hold as much as a request: here 1 MiB of value, 64 KiB of key
	// and 4 KiB more. One value fits; two do not.
	if _, err := c.BatchGet(ctx, &cacheev1.BatchGetRequest{Keys: keys[:1]}); err != nil {
		t.Fatal(err)
	}
	_, err := c.BatchGet(ctx, &cacheev1.BatchGetRequest{Keys: keys[:2]})
	wantReason(t, err, codes.ResourceExhausted, "RESPONSE_TOO_LARGE")
	// With a larger message size, so may the answer.
	l2 := serveLimited(t, server.Config{MaxRecvMsgSize: 6 << 20}, store.Config{MaxMemory: 32 << 20})
	c2 := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l2.addrs.Socket,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20))))
	for _, k := range keys {
		if _, err := c2.Set(ctx, &cacheev1.SetRequest{Key: k, Value: make([]byte, 1<<20)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c2.BatchGet(ctx, &cacheev1.BatchGetRequest{Keys: keys}); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, keys[0], keys[1]) // 7 MiB
	_, err = c2.BatchGet(ctx, &cacheev1.BatchGetRequest{Keys: keys})
	wantReason(t, err, codes.ResourceExhausted, "RESPONSE_TOO_LARGE")
}

// A request over the message size limit is refused with an ErrorInfo that gives the
// sizes and a message that names the flag that raises the limit; on a unary call and
// on a stream alike.
func TestMessageTooLarge(t *testing.T) {
	scfg := store.Config{MaxMemory: 8 << 20, MaxValueSize: 256 << 10}
	const derived = 64<<10 + 256<<10 + 4<<10 // key + value + slack
	for _, tc := range []struct {
		name  string
		cfg   server.Config
		limit int
		flag  string
	}{
		{"derived", server.Config{Budget: server.NewBudget(8 << 20)}, derived, "--max-value-size"},
		{"set", server.Config{MaxRecvMsgSize: 400 << 10}, 400 << 10, "--grpc-max-msg-size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := serveLimited(t, tc.cfg, scfg)
			cc := grpcConn(t, "unix://"+l.addrs.Socket)
			c := cacheev1.NewCacheServiceClient(cc)
			check := func(err error, size int) {
				t.Helper()
				info := wantReason(t, err, codes.ResourceExhausted, "MESSAGE_TOO_LARGE")
				if got := info.GetMetadata()["limit"]; got != strconv.Itoa(tc.limit) {
					t.Errorf("limit %q, want %d", got, tc.limit)
				}
				if got := info.GetMetadata()["size"]; got != strconv.Itoa(size) {
					t.Errorf("size %q, want %d", got, size)
				}
				msg := status.Convert(err).Message()
				if !strings.Contains(msg, strconv.Itoa(tc.limit)+" bytes") || !strings.Contains(msg, tc.flag) {
					t.Errorf("message %q: want the limit in bytes and %s", msg, tc.flag)
				}
			}
			// Up to twice the limit, the server reads the message to say so.
			req := &cacheev1.SetRequest{Key: []byte("k"), Value: make([]byte, tc.limit*3/2)}
			_, err := c.Set(bounded(t), req)
			check(err, proto.Size(req))
			// Beyond that grpc-go refuses it before reading it, without an ErrorInfo.
			_, err = c.Set(bounded(t), &cacheev1.SetRequest{Key: []byte("k"), Value: make([]byte, 2*tc.limit)})
			if st := status.Convert(err); st.Code() != codes.ResourceExhausted || len(st.Details()) != 0 {
				t.Fatalf("a message over twice the limit: %v", err)
			}
			// A stream's message: a reflection request over the limit.
			stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(bounded(t))
			if err != nil {
				t.Fatal(err)
			}
			rreq := &reflectionpb.ServerReflectionRequest{Host: strings.Repeat("h", tc.limit+1),
				MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
			if err := stream.Send(rreq); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			check(err, proto.Size(rreq))
			// The connection serves on, and what the message held is released.
			if _, err := c.Set(bounded(t), &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			if b := tc.cfg.Budget; b != nil {
				eventually(t, "the refused messages' charges to end", func() bool {
					runtime.GC() // frames of the refused messages that grpc-go dropped
					return b.Used() == server.GRPCConnCost
				})
			}
		})
	}
}

func TestIdleTimeoutClosesGRPCConnections(t *testing.T) {
	l := serveLimited(t, server.Config{IdleTimeout: 200 * time.Millisecond}, store.Config{MaxMemory: 4 << 20})
	cc := grpcConn(t, "unix://"+l.addrs.Socket)
	if _, err := cacheev1.NewCacheServiceClient(cc).Stats(bounded(t), &cacheev1.StatsRequest{}); err != nil {
		t.Fatal(err)
	}
	// GOAWAY after the idle time turns the client's channel IDLE; it reconnects on
	// its next call.
	ctx := bounded(t)
	for s := cc.GetState(); s != connectivity.Idle; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("connection still %v", s)
		}
	}
	if _, err := cacheev1.NewCacheServiceClient(cc).Stats(bounded(t), &cacheev1.StatsRequest{}); err != nil {
		t.Fatal(err)
	}
}

// h2 is a hand-driven HTTP/2 client connection, for what grpc-go's client will not
// do: ping too often, send a deadline that has already passed.
type h2 struct {
	t  *testing.T
	c  net.Conn
	fr *http2.Framer
}

func dialH2(t *testing.T, network, addr string) *h2 {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, bufio.NewReader(c))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &h2{t: t, c: c, fr: fr}
}

// next reads frames until one that is not SETTINGS, WINDOW_UPDATE or a ping reply,
// answering the server's SETTINGS.
func (h *h2) next() (http2.Frame, error) {
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
			continue
		case *http2.WindowUpdateFrame:
			continue
		case *http2.PingFrame:
			if f.IsAck() {
				continue
			}
		}
		return f, nil
	}
}

func (h *h2) headers(stream uint32, method string, extra ...string) {
	h.t.Helper()
	var b strings.Builder
	enc := hpack.NewEncoder(&b)
	fields := []string{":method", "POST", ":scheme", "http", ":path", method, ":authority", "cachee",
		"content-type", "application/grpc", "te", "trailers"}
	fields = append(fields, extra...)
	for i := 0; i < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: []byte(b.String()), EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
}

// TestKeepaliveEnforcement: a client that pings more often than the enforcement
// policy allows gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; the server serves on.
func TestKeepaliveEnforcement(t *testing.T) {
	l := serveLimited(t, server.Config{}, store.Config{MaxMemory: 4 << 20})
	h := dialH2(t, "unix", l.addrs.Socket)
	for i := range 10 {
		if err := h.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have closed
		}
	}
	for {
		f, err := h.next()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm || string(g.DebugData()) != "too_many_pings" {
				t.Fatalf("GOAWAY %v %q", g.ErrCode, g.DebugData())
			}
			break
		}
	}
	// Alive: a well-behaved client is served.
	c := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l.addrs.Socket))
	if _, err := c.Stats(bounded(t), &cacheev1.StatsRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestExpiredDeadline: a call whose deadline has passed on arrival fails
// DEADLINE_EXCEEDED from the server (grpc-go's client would fail it before sending).
func TestExpiredDeadline(t *testing.T) {
	l := serveLimited(t, server.Config{}, store.Config{MaxMemory: 4 << 20})
	h := dialH2(t, "tcp", l.addrs.TCP)
	h.headers(1, "/cachee.v1.CacheService/Get", "grpc-timeout", "1n")
	for {
		f, err := h.next()
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if m, ok := f.(*http2.MetaHeadersFrame); ok {
			if got := m.PseudoValue("status"); got != "200" {
				t.Fatalf(":status %s", got)
			}
			got := map[string]string{}
			for _, f := range m.RegularFields() {
				got[f.Name] = f.Value
			}
			if got["grpc-status"] != strconv.Itoa(int(codes.DeadlineExceeded)) {
				t.Fatalf("grpc-status %s (%s), want DeadlineExceeded", got["grpc-status"], got["grpc-message"])
			}
			break
		}
	}
	c := cacheev1.NewCacheServiceClient(grpcConn(t, l.addrs.TCP))
	if _, err := c.Stats(bounded(t), &cacheev1.StatsRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestPeerCredentials runs clients as other users against a socket whose file mode
// would let them in, so that only the SO_PEERCRED check stands in their way.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run clients under other uids")
	}
	bin := copyHelper(t)
	for _, tc := range []struct {
		name       string
		cfg        server.Config
		uid, gid   uint32
		wantServed bool
	}{
		{"no lists: anyone the file mode lets in", server.Config{}, 40001, 40001, true},
		{"uid listed", server.Config{AllowUIDs: []uint32{40001}}, 40001, 40001, true},
		{"uid not listed", server.Config{AllowUIDs: []uint32{40002}}, 40001, 40001, false},
		{"gid listed", server.Config{AllowGIDs: []uint32{40005}}, 40001, 40005, true},
		{"gid not listed", server.Config{AllowUIDs: []uint32{40002}, AllowGIDs: []uint32{40006}}, 40001, 40005, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ConnHandler = &echoHandler{}
			l := serveLimited(t, tc.cfg, store.Config{MaxMemory: 4 << 20})
			// Open the socket up so that the file mode is not what refuses.
			os.Chmod(filepath.Dir(filepath.Dir(l.addrs.Socket)), 0o755)
			os.Chmod(filepath.Dir(l.addrs.Socket), 0o755)
			os.Chmod(l.addrs.Socket, 0o666)
			got := runPeerHelper(t, bin, l.addrs.Socket, tc.uid, tc.gid)
			if served := got == "served"; served != tc.wantServed {
				t.Fatalf("client uid %d gid %d: %s, want served=%v", tc.uid, tc.gid, got, tc.wantServed)
			}
			if !tc.wantServed && !strings.Contains(l.logs.String(), "is not allowed") {
				t.Fatalf("refusal not logged:\n%s", l.logs)
			}
			// The server's own uid is always let in.
			c := cacheev1.NewCacheServiceClient(grpcConn(t, "unix://"+l.addrs.Socket))
			if _, err := c.Stats(bounded(t), &cacheev1.StatsRequest{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// copyHelper copies the test binary where other users may run it: the one go test
// built sits in a directory only we can enter.
func copyHelper(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cachee-helper")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "helper")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func runPeerHelper(t *testing.T, bin, sock string, uid, gid uint32) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CACHEE_PEER_HELPER_SOCKET="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// peerHelper connects to sock, writes a line and says whether it came back.
func peerHelper(sock string) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	const msg = "PING\r\n"
	if _, err := io.WriteString(c, msg); err != nil {
		fmt.Println("refused:", err)
		return
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println("served")
}
