package h2fast_test

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/cachee/cachee/server/h2fast"
)

// The harness runs a Conn between a real grpc-go client and a real grpc-go backend
// server, moving bytes with goroutines the way an event loop would: every call on the
// Conn happens under one lock. Sockets are socketpairs, so nothing listens.

const checkPath = "/grpc.health.v1.Health/Check"

// checkHandler answers grpc.health.v1 Check on the fast path: SERVING, unless the
// request names a service, which the test's hook may answer otherwise.
type checkHandler struct {
	served atomic.Int64
	// hook, when set, answers instead; it may return false and finish the call later
	// through harness.finish.
	hook     func(call *h2fast.Call, req *healthpb.HealthCheckRequest) bool
	canceled atomic.Int64
}

func (h *checkHandler) Route(path string) (int, bool) { return 1, path == checkPath }

func (h *checkHandler) Serve(_ *h2fast.Conn, call *h2fast.Call) bool {
	h.served.Add(1)
	var req healthpb.HealthCheckRequest
	if err := proto.Unmarshal(call.Message, &req); err != nil {
		call.Code, call.StatusMessage = 13, "bad request: "+err.Error()
		return true
	}
	if h.hook != nil {
		return h.hook(call, &req)
	}
	call.Reply, _ = proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	return true
}

func (h *checkHandler) Cancel(*h2fast.Call) { h.canceled.Add(1) }

func (h *checkHandler) Overloaded(call *h2fast.Call) {
	call.Code, call.StatusMessage = 14, "overloaded"
}

type harness struct {
	t        *testing.T
	mu       sync.Mutex
	conn     *h2fast.Conn
	client   net.Conn // the Conn's end of the client's socketpair
	h        *checkHandler
	backend  *grpc.Server
	health   *health.Server
	lis      *bufconn.Listener
	backends []backendConn
	wg       sync.WaitGroup
	closed   bool
}

type harnessOpts struct {
	cfg         h2fast.Config
	backendOpts []grpc.ServerOption
}

// newHarness starts a Conn and its backend, and returns a grpc-go client of it.
func newHarness(t *testing.T, o harnessOpts) (*harness, *grpc.ClientConn) {
	t.Helper()
	h := &harness{t: t, h: &checkHandler{}}
	h.lis = bufconn.Listen(1 << 20)
	h.backend = grpc.NewServer(o.backendOpts...)
	h.health = health.NewServer()
	healthpb.RegisterHealthServer(h.backend, h.health)
	go h.backend.Serve(h.lis)
	t.Cleanup(h.backend.Stop)

	ours, theirs := socketpair(t)
	h.client = ours
	h.conn = h2fast.NewConn(o.cfg, h.h)
	h.wg.Add(1)
	go h.pump(ours, h.conn.Feed, nil)
	h.mu.Lock()
	h.flush()
	h.mu.Unlock()
	cc, err := grpc.NewClient("passthrough:///pair", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return theirs, nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		h.stop()
	})
	return h, cc
}

func socketpair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// pump reads from nc and feeds what it reads to feed under the lock, then writes what
// is due everywhere. closed runs under the lock when nc ends.
func (h *harness) pump(nc net.Conn, feed func([]byte) error, closed func()) {
	defer h.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := nc.Read(buf)
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		if n > 0 {
			feed(buf[:n])
		}
		if err != nil {
			if closed != nil {
				closed()
			} else {
				h.conn.Close()
			}
		}
		h.flush()
		h.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// flush writes every output that is due and attaches new backends. Caller holds mu.
func (h *harness) flush() {
	for _, b := range h.conn.Unattached() {
		bc, err := h.lis.Dial()
		if err != nil {
			b.Closed()
			continue
		}
		h.wg.Add(1)
		go h.pump(bc, b.Feed, b.Closed)
		h.backends = append(h.backends, backendConn{b, bc})
	}
	for progress := true; progress; {
		progress = false
		if out := h.conn.Output(); len(out) > 0 {
			n, _ := h.client.Write(out)
			h.conn.Wrote(n)
			progress = n > 0
		}
		for _, bc := range h.backends {
			if out := bc.b.Output(); len(out) > 0 {
				n, _ := bc.nc.Write(out)
				bc.b.Wrote(n)
				progress = progress || n > 0
			}
		}
	}
	if h.conn.Done() {
		h.client.Close()
	}
}

// finish delivers a pending call's answer from any goroutine.
func (h *harness) finish(call *h2fast.Call) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn.Finish(call)
	h.flush()
}

// do runs fn on the Conn under the lock, then writes what is due.
func (h *harness) do(fn func(c *h2fast.Conn)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h.conn)
	h.flush()
}

func (h *harness) stop() {
	h.mu.Lock()
	h.closed = true
	h.conn.Close()
	h.client.Close()
	for _, bc := range h.backends {
		bc.nc.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

type backendConn struct {
	b  *h2fast.Backend
	nc net.Conn
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
