package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

// running is an in-process server on a temporary socket and free loopback ports.
type running struct {
	srv    *server.Server
	st     *store.Store
	addrs  server.Addrs
	client cacheev1.CacheServiceClient
	logs   *syncBuffer
	stop   func() error // ends Serve and returns its error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fastPath is whether the tests' servers answer gRPC on the fast path: yes, unless
// CACHEE_GRPC_FAST_PATH=false (the flag's variable) asks for grpc-go alone, which
// make test runs too, so that both give the same results.
var fastPath = os.Getenv("CACHEE_GRPC_FAST_PATH") != "false"

func serve(t *testing.T, cfg server.Config) *running {
	t.Helper()
	return serveAt(t, cfg, slog.LevelInfo)
}

func serveAt(t *testing.T, cfg server.Config, level slog.Level) *running {
	t.Helper()
	return serveHooked(t, cfg, level, nil)
}

// serveWith is serve with a hook that may change cfg once the store is open (to plug
// in something built on the store).
func serveWith(t *testing.T, cfg server.Config, hook func(*store.Store, *server.Config)) *running {
	t.Helper()
	return serveHooked(t, cfg, slog.LevelInfo, hook)
}

func serveHooked(t *testing.T, cfg server.Config, level slog.Level, hook func(*store.Store, *server.Config)) *running {
	t.Helper()
	st, err := store.Open(store.Config{MaxMemory: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if hook != nil {
		hook(st, &cfg)
	}
	dir, err := os.MkdirTemp("", "cachee")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	logs := &syncBuffer{}
	cfg.Socket = filepath.Join(dir, "c.sock")
	cfg.Addr, cfg.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: level}))
	cfg.FastPath = fastPath
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
	cc, err := grpc.NewClient("unix://"+cfg.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &running{srv: srv, st: st, addrs: srv.Addrs(), client: cacheev1.NewCacheServiceClient(cc), logs: logs, stop: stop}
}

func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mapSource is a Prewarmer over a map: the L2 tier's contract, on data the test owns.
type mapSource struct {
	st   *store.Store
	data map[string]string
}

func (m *mapSource) Prewarm(ctx context.Context, opts tier.PrewarmOptions, progress func(tier.PrewarmCounts)) (tier.PrewarmCounts, error) {
	start := time.Now()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m.data {
			if !yield(k) {
				return
			}
		}
	})
	keys = keys[:min(len(keys), opts.Keys)]
	c := tier.PrewarmCounts{Requested: int64(len(keys))}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		stored, err := m.st.Set([]byte(k), []byte(m.data[k]), store.SetOptions{Cond: store.IfAbsent})
		switch {
		case err != nil:
			c.Failed++
		case stored:
			c.Loaded++
		default:
			c.Skipped++
		}
		c.Elapsed = time.Since(start)
		progress(c)
	}
	return c, nil
}

// prewarmerFunc adapts a function to tier.Prewarmer.
type prewarmerFunc func(context.Context, tier.PrewarmOptions, func(tier.PrewarmCounts)) (tier.PrewarmCounts, error)

func (f prewarmerFunc) Prewarm(ctx context.Context, o tier.PrewarmOptions, p func(tier.PrewarmCounts)) (tier.PrewarmCounts, error) {
	return f(ctx, o, p)
}

// drain reads a Prewarm stream to its end.
func drain(t *testing.T, s grpc.ServerStreamingClient[cacheev1.PrewarmResponse]) ([]*cacheev1.PrewarmResponse, error) {
	t.Helper()
	var msgs []*cacheev1.PrewarmResponse
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

func TestPrewarmStreamsProgressThenCounts(t *testing.T) {
	src := &mapSource{data: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}}
	r := serve(t, server.Config{Prewarmer: src, Prewarm: tier.PrewarmOptions{Keys: 4, Timeout: time.Minute}})
	src.st = r.st
	r.st.Set([]byte("b"), []byte("already"), store.SetOptions{})

	s, err := r.client.Prewarm(bounded(t), &cacheev1.PrewarmRequest{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drain(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 4 progress and 1 final: %v", len(msgs), msgs)
	}
	for i, m := range msgs[:4] {
		if m.GetDone() || m.GetCounts().GetLoaded()+m.GetCounts().GetSkipped() != int64(i+1) {
			t.Fatalf("progress %d: %v", i, m)
		}
	}
	final := msgs[4]
	c := final.GetCounts()
	if !final.GetDone() || c.GetRequested() != 4 || c.GetLoaded() != 3 || c.GetSkipped() != 1 || c.GetFailed() != 0 {
		t.Fatalf("final: %v", final)
	}
	if v, ok, _ := r.st.Get([]byte("a"), nil); !ok || string(v) != "1" {
		t.Fatal("prewarmed key not in the store")
	}

	// The request's key count overrides the configured one.
	s, err = r.client.Prewarm(bounded(t), &cacheev1.PrewarmRequest{Keys: 2})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err = drain(t, s)
	if err != nil || msgs[len(msgs)-1].GetCounts().GetRequested() != 2 {
		t.Fatalf("%v %v", msgs, err)
	}
}

// TestPrewarmTimeoutEndsWithCounts: running out of time is not a failure; the final
// message says how far the prewarm got.
func TestPrewarmTimeoutEndsWithCounts(t *testing.T) {
	opts := make(chan tier.PrewarmOptions, 1)
	r := serve(t, server.Config{Prewarmer: prewarmerFunc(func(ctx context.Context, o tier.PrewarmOptions, progress func(tier.PrewarmCounts)) (tier.PrewarmCounts, error) {
		opts <- o
		c := tier.PrewarmCounts{Requested: 10, Loaded: 3}
		progress(c)
		<-ctx.Done() // a source slower than the timeout
		return c, ctx.Err()
	}), Prewarm: tier.PrewarmOptions{Source: "redis://l2:6379"}})

	s, err := r.client.Prewarm(bounded(t), &cacheev1.PrewarmRequest{Timeout: durationpb.New(20 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := drain(t, s)
	if err != nil {
		t.Fatalf("timeout became an error: %v", err)
	}
	final := msgs[len(msgs)-1]
	if !final.GetDone() || final.GetCounts().GetLoaded() != 3 || final.GetCounts().GetRequested() != 10 {
		t.Fatalf("final %v", final)
	}
	if got := <-opts; got.Source != "redis://l2:6379" || got.Keys != server.DefaultPrewarmKeys || got.Timeout != 20*time.Millisecond {
		t.Fatalf("options %+v: want the configured source, the default key count and the request's timeout", got)
	}
}

func TestPrewarmErrors(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	r := serve(t, server.Config{Prewarmer: prewarmerFunc(func(ctx context.Context, _ tier.PrewarmOptions, _ func(tier.PrewarmCounts)) (tier.PrewarmCounts, error) {
		switch calls.Add(1) {
		case 1:
			close(started)
			<-release
			return tier.PrewarmCounts{}, nil
		case 2:
			return tier.PrewarmCounts{}, fmt.Errorf("%w: dial redis: connection refused", tier.ErrPrewarmSource)
		default:
			panic("prewarmer bug")
		}
	})})
	ctx := bounded(t)

	first, err := r.client.Prewarm(ctx, &cacheev1.PrewarmRequest{})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	second, err := r.client.Prewarm(ctx, &cacheev1.PrewarmRequest{})
	if err == nil {
		_, err = drain(t, second)
	}
	wantReason(t, err, codes.Aborted, "PREWARM_RUNNING")
	close(release)
	if _, err := drain(t, first); err != nil {
		t.Fatal(err)
	}

	s, err := r.client.Prewarm(ctx, &cacheev1.PrewarmRequest{})
	if err == nil {
		_, err = drain(t, s)
	}
	wantReason(t, err, codes.Unavailable, "PREWARM_SOURCE_UNAVAILABLE")

	// A panic in a handler becomes INTERNAL, and the server serves on.
	s, err = r.client.Prewarm(ctx, &cacheev1.PrewarmRequest{})
	if err == nil {
		_, err = drain(t, s)
	}
	wantReason(t, err, codes.Internal, "INTERNAL")
	if _, err := r.client.Set(ctx, &cacheev1.SetRequest{Key: []byte("k")}); err != nil {
		t.Fatal("server did not survive the panic:", err)
	}
	if !bytes.Contains([]byte(r.logs.String()), []byte("panic in gRPC handler")) {
		t.Fatal("panic not logged")
	}
}

func wantReason(t *testing.T, err error, code codes.Code, reason string) *errdetails.ErrorInfo {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("%v: want %v", err, code)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason {
			return info
		}
	}
	t.Fatalf("%v: want reason %s", err, reason)
	return nil
}

// echoHandler stands in for the RESP shim on the ConnHandler contract: it writes back
// the peeked bytes and then everything else the client sends. An echo has nothing in
// flight between reads, so Shutdown closes its connections at once.
type echoHandler struct {
	mu        sync.Mutex
	peeked    [][]byte
	shutdowns int
	closed    bool
	conns     map[net.Conn]struct{}
	active    sync.WaitGroup
}

func (h *echoHandler) ServeConn(c net.Conn, peeked []byte) {
	defer c.Close()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if h.conns == nil {
		h.conns = make(map[net.Conn]struct{})
	}
	h.conns[c] = struct{}{}
	h.active.Add(1)
	defer h.active.Done()
	h.peeked = append(h.peeked, slices.Clone(peeked))
	h.mu.Unlock()
	c.Write(peeked)
	io.Copy(c, c)
}

func (h *echoHandler) Shutdown(context.Context) error {
	h.mu.Lock()
	h.shutdowns++
	h.closed = true
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.active.Wait()
	return nil
}

func TestConnHandlerGetsNonGRPCConnections(t *testing.T) {
	h := &echoHandler{}
	r := serve(t, server.Config{ConnHandler: h, GracePeriod: 50 * time.Millisecond})
	for _, n := range []struct{ network, addr string }{{"unix", r.addrs.Socket}, {"tcp", r.addrs.TCP}} {
		c, err := net.Dial(n.network, n.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		cmd := "*1\r\n$4\r\nPING\r\n"
		if _, err := c.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(cmd))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != cmd {
			t.Fatalf("%s: echoed %q, %v", n.network, got, err)
		}
	}
	h.mu.Lock()
	for _, p := range h.peeked {
		if len(p) == 0 || p[0] != '*' {
			t.Errorf("peeked %q: want the command's first bytes", p)
		}
	}
	h.mu.Unlock()
	// gRPC still works on the same socket.
	if _, err := r.client.Get(bounded(t), &cacheev1.GetRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}

	// Draining tells the handler, which closes its connections: every ServeConn has
	// returned by the time Serve does.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	h.active.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutdowns != 1 {
		t.Fatalf("Shutdown called %d times", h.shutdowns)
	}
}

// TestCallLogging: debug logs every call; otherwise the per-key RPCs are not logged
// (they are counted in metrics) while the others still log their failures.
func TestCallLogging(t *testing.T) {
	for _, tc := range []struct {
		level         slog.Level
		getLogged     bool
		prewarmLogged bool
	}{
		{slog.LevelDebug, true, true},
		{slog.LevelInfo, false, true},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			r := serveAt(t, server.Config{}, tc.level)
			ctx := bounded(t)
			r.client.Get(ctx, &cacheev1.GetRequest{}) // fails: empty key
			s, err := r.client.Prewarm(ctx, &cacheev1.PrewarmRequest{})
			if err == nil {
				drain(t, s)
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			logs := r.logs.String()
			if got := strings.Contains(logs, "grpc.method=Get"); got != tc.getLogged {
				t.Errorf("Get logged: %v, want %v", got, tc.getLogged)
			}
			if got := strings.Contains(logs, "grpc.method=Prewarm"); got != tc.prewarmLogged {
				t.Errorf("Prewarm logged: %v, want %v", got, tc.prewarmLogged)
			}
		})
	}
}
