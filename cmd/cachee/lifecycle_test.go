package main_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// TestDrainOnSIGTERM holds a call open across SIGTERM: the server must report
// NOT_SERVING on it, keep /ready at 503 while it drains, refuse new work, and exit 0
// once the call ends.
func TestDrainOnSIGTERM(t *testing.T) {
	p := start(t)
	cc := p.conn()
	cx := ctx(t)
	h := healthpb.NewHealthClient(cc)
	watch, err := h.Watch(cx, &healthpb.HealthCheckRequest{Service: "cachee.v1.CacheService"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before SIGTERM: %v %v", r, err)
	}
	if code, _ := get(t, "http://"+p.http+"/ready"); code != 200 {
		t.Fatalf("/ready before SIGTERM: %d", code)
	}

	p.signal(syscall.SIGTERM)
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after SIGTERM: %v %v", r, err)
	}
	// The Watch call is in flight, so the server is still draining.
	code, body := get(t, "http://"+p.http+"/ready")
	if code != 503 || !strings.Contains(string(body), "draining") {
		t.Fatalf("/ready while draining: %d %s", code, body)
	}
	if _, body := get(t, "http://"+p.http+"/health"); !strings.Contains(string(body), `"status":"draining"`) {
		t.Fatalf("/health while draining: %s", body)
	}
	// New calls fail UNAVAILABLE: the socket is gone and the connection is going away.
	c := cacheev1.NewCacheServiceClient(cc)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := c.Get(cx, &cacheev1.GetRequest{Key: []byte("k")})
		if status.Code(err) == codes.Unavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get while draining: %v, want UNAVAILABLE", err)
		}
	}
	if _, err := os.Lstat(p.sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there while draining: %v", err)
	}
	select {
	case <-p.exited:
		t.Fatal("exited while a call was still in flight")
	default:
	}

	cc.Close() // ends the Watch call; the drain can finish
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if logs := p.logs.String(); !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "grace period over") {
		t.Fatalf("drain did not finish cleanly:\n%s", logs)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(socketDir(t), "cachee.sock")
	// A socket file nobody listens on, as a killed server leaves it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatal("stale socket not left behind:", err)
	}

	p := startProc(t, procOptions{sock: sock})
	if err := p.waitServing(); err != nil {
		t.Fatalf("%v\n%s", err, p.logs)
	}
	if _, err := p.client().Get(ctx(t), &cacheev1.GetRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}

	// A second server on the same socket must not steal it from the first.
	_, stderr, code := run(t, nil, "", "--socket="+sock, "--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=1mb", "--shm=")
	if code != 1 || !strings.Contains(stderr, "another server is listening") {
		t.Fatalf("second server: exit %d, stderr %s", code, stderr)
	}
	if _, err := p.client().Get(ctx(t), &cacheev1.GetRequest{Key: []byte("k")}); err != nil {
		t.Fatal("first server lost its socket:", err)
	}
}

func TestSocketPathHoldingAFile(t *testing.T) {
	sock := filepath.Join(socketDir(t), "cachee.sock")
	if err := os.WriteFile(sock, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, nil, "", "--socket="+sock, "--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=1mb", "--shm=")
	if code != 1 || !strings.Contains(stderr, "is not a socket") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if b, err := os.ReadFile(sock); err != nil || string(b) != "not a socket" {
		t.Fatalf("file at the socket path was touched: %q %v", b, err)
	}
}

func TestSharedMemorySegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shm")
	p := start(t, "--shm="+dir)
	seg := filepath.Join(dir, "cachee.seg")
	if _, err := os.Stat(seg); err != nil {
		t.Fatal(err)
	}
	st, err := p.client().Stats(ctx(t), &cacheev1.StatsRequest{})
	if err != nil || st.GetSegmentPath() != seg {
		t.Fatalf("segment path %q, want %q (%v)", st.GetSegmentPath(), seg, err)
	}
}
