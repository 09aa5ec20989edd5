package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// tool returns the path of an external tool: $env, else name on PATH. Without it the
// test is skipped, unless CACHEE_REQUIRE_TOOLS is set (make test sets it, so that a
// missing install step cannot pass unnoticed).
func tool(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CACHEE_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is required (CACHEE_REQUIRE_TOOLS is set): set %s or put it on PATH (make tools installs it)", name, env)
	}
	t.Skipf("%s not found: set %s or put it on PATH (make tools installs it)", name, env)
	return ""
}

// TestGRPCToolsAtEveryMemorySize runs grpcurl (list, describe, Set, Get) and
// grpc_health_probe against the binary at small and default memory sizes. grpcurl
// keeps its reflection stream open while it invokes a method on the same connection,
// which a server that allowed one call per connection at a time could not answer.
func TestGRPCToolsAtEveryMemorySize(t *testing.T) {
	grpcurl := tool(t, "CACHEE_GRPCURL", "grpcurl")
	probe := tool(t, "CACHEE_HEALTH_PROBE", "grpc-health-probe")
	for _, mem := range []string{"16mb", "64mb", "256mb"} {
		t.Run(mem, func(t *testing.T) {
			t.Parallel()
			p := start(t, "--max-memory="+mem)
			curl := func(args ...string) string {
				t.Helper()
				cx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(cx, grpcurl, append([]string{"-plaintext", "-unix", "-max-time", "30"}, args...)...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("grpcurl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			if out := curl(p.sock, "list"); !strings.Contains(out, "cachee.v1.CacheService") || !strings.Contains(out, "grpc.health.v1.Health") {
				t.Fatalf("grpcurl list:\n%s", out)
			}
			if out := curl(p.sock, "describe", "cachee.v1.CacheService"); !strings.Contains(out, "rpc Set ( .cachee.v1.SetRequest )") {
				t.Fatalf("grpcurl describe:\n%s", out)
			}
			key, value := b64("grpcurl"), b64("value at "+mem)
			if out := curl("-d", fmt.Sprintf(`{"key":%q,"value":%q}`, key, value), p.sock, "cachee.v1.CacheService/Set"); !strings.Contains(out, `"stored": true`) {
				t.Fatalf("grpcurl Set:\n%s", out)
			}
			if out := curl("-d", fmt.Sprintf(`{"key":%q}`, key), p.sock, "cachee.v1.CacheService/Get"); !strings.Contains(out, value) {
				t.Fatalf("grpcurl Get:\n%s", out)
			}
			out, err := exec.Command(probe, "-addr", "unix://"+p.sock, "-connect-timeout", "20s", "-rpc-timeout", "20s").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "SERVING") {
				t.Fatalf("grpc-health-probe: %v\n%s", err, out)
			}
			// A client that keeps a Watch open while it makes calls on the same
			// connection.
			cc := dial(t, "unix://"+p.sock)
			watch, err := healthpb.NewHealthClient(cc).Watch(ctx(t), &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Watch: %v %v", r, err)
			}
			c := cacheev1.NewCacheServiceClient(cc)
			for i := range 20 {
				k := []byte(fmt.Sprint("watched", i))
				if _, err := c.Set(ctx(t), &cacheev1.SetRequest{Key: k, Value: k}); err != nil {
					t.Fatalf("Set with a Watch open: %v", err)
				}
				if r, err := c.Get(ctx(t), &cacheev1.GetRequest{Key: k}); err != nil || !bytes.Equal(r.GetValue(), k) {
					t.Fatalf("Get with a Watch open: %v %v", r, err)
				}
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestManyCallsOnOneConnection: at --max-memory=64mb, 300 calls at once on one
// connection are all admitted: 300 health Watch streams stay open on it while 300 Gets
// run at once beside them. Each call is charged what it holds, which for these is
// little; charged for the largest message each could carry, one would have fit.
func TestManyCallsOnOneConnection(t *testing.T) {
	p := start(t, "--max-memory=64mb")
	cc := dial(t, "unix://"+p.sock)
	c := cacheev1.NewCacheServiceClient(cc)
	value := bytes.Repeat([]byte("v"), 100)
	if _, err := c.Set(ctx(t), &cacheev1.SetRequest{Key: []byte("k"), Value: value}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	h := healthpb.NewHealthClient(cc)
	for i := range n {
		w, err := h.Watch(ctx(t), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatalf("Watch %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			<-start
			r, err := c.Get(ctx(t), &cacheev1.GetRequest{Key: []byte("k")}, grpc.WaitForReady(false))
			if err == nil && len(r.GetValue()) != len(value) {
				err = fmt.Errorf("got %d bytes", len(r.GetValue()))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("one of %d Gets at once beside %d Watches: %v", n, n, err)
	}
}
