package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

// fakeTier stands in for an L2 tier: it answers Get for keys the store lacks from its
// own map and fails writes to keys starting with "down", as an unreachable L2 would.
type fakeTier struct {
	st *store.Store

	mu     sync.Mutex
	remote map[string]string
}

func (f *fakeTier) Get(_ context.Context, key, dst []byte) ([]byte, bool, error) {
	if v, ok, err := f.st.Get(key, dst); ok || err != nil {
		return v, ok, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.remote[string(key)]
	return append(dst, v...), ok, nil
}

func (f *fakeTier) GetMany(ctx context.Context, keys [][]byte, fn func(int, []byte, bool, error)) {
	for i, k := range keys {
		v, ok, err := f.Get(ctx, k, nil)
		fn(i, v, ok, err)
	}
}

func (f *fakeTier) Set(_ context.Context, key, value []byte, opt store.SetOptions) (bool, error) {
	if strings.HasPrefix(string(key), "down") {
		return false, fmt.Errorf("%w: connection refused", tier.ErrL2Unavailable)
	}
	f.mu.Lock()
	f.remote[string(key)] = string(value)
	f.mu.Unlock()
	return f.st.Set(key, value, opt)
}

func (f *fakeTier) SetMany(ctx context.Context, items []store.Item, stored []bool) []error {
	var errs []error
	for i, it := range items {
		ok, err := f.Set(ctx, it.Key, it.Value, it.Options)
		stored[i] = ok
		if err != nil {
			if errs == nil {
				errs = make([]error, len(items))
			}
			errs[i] = err
		}
	}
	return errs
}

func (f *fakeTier) Delete(_ context.Context, key []byte) (bool, error) {
	f.mu.Lock()
	_, ok := f.remote[string(key)]
	delete(f.remote, string(key))
	f.mu.Unlock()
	_, err := f.st.Delete(key)
	return ok, err
}

// TestTierServesDataPath: with a Tier configured, the data-path RPCs go through it,
// and its ErrL2Unavailable becomes UNAVAILABLE with reason L2_UNAVAILABLE.
func TestTierServesDataPath(t *testing.T) {
	var tier *fakeTier
	r := serveWith(t, server.Config{}, func(st *store.Store, cfg *server.Config) {
		tier = &fakeTier{st: st, remote: map[string]string{"remote": "r"}}
		cfg.Tier = tier
	})
	ctx := bounded(t)
	got, err := r.client.Get(ctx, &cacheev1.GetRequest{Key: []byte("remote")})
	if err != nil || !got.GetFound() || string(got.GetValue()) != "r" {
		t.Fatalf("Get through the tier: %v %v", got, err)
	}
	b, err := r.client.BatchGet(ctx, &cacheev1.BatchGetRequest{Keys: [][]byte{[]byte("remote"), []byte("none")}})
	if err != nil || !b.GetResults()[0].GetFound() || b.GetResults()[1].GetFound() {
		t.Fatalf("BatchGet through the tier: %v %v", b, err)
	}
	if _, err := r.client.Set(ctx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	tier.mu.Lock()
	wrote := tier.remote["k"]
	tier.mu.Unlock()
	if wrote != "v" {
		t.Fatalf("Set did not reach the tier: %q", wrote)
	}
	if _, err := r.client.BatchSet(ctx, &cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{{Key: []byte("b"), Value: []byte("1")}}}); err != nil {
		t.Fatal(err)
	}
	if d, err := r.client.Delete(ctx, &cacheev1.DeleteRequest{Key: []byte("remote")}); err != nil || !d.GetDeleted() {
		t.Fatalf("Delete through the tier: %v %v", d, err)
	}
	_, err = r.client.Set(ctx, &cacheev1.SetRequest{Key: []byte("down:1"), Value: []byte("v")})
	wantReason(t, err, codes.Unavailable, "L2_UNAVAILABLE")
}

// TestStartupPrewarmGatesReadiness: a server with a prewarm source prewarms as it
// starts; /ready and grpc.health.v1 say not serving until the prewarm ends, and the
// Prewarm RPC meanwhile answers that one is running.
func TestStartupPrewarmGatesReadiness(t *testing.T) {
	release := make(chan struct{})
	started := make(chan tier.PrewarmOptions, 1)
	r := serve(t, server.Config{
		PrewarmAtStart: true,
		Prewarm:        tier.PrewarmOptions{Source: "redis://l2:6379", Keys: 7, Timeout: time.Minute},
		Prewarmer: prewarmerFunc(func(ctx context.Context, o tier.PrewarmOptions, _ func(tier.PrewarmCounts)) (tier.PrewarmCounts, error) {
			started <- o
			<-release
			return tier.PrewarmCounts{Requested: 7, Loaded: 7}, nil
		}),
	})
	if o := <-started; o.Keys != 7 || o.Source != "redis://l2:6379" {
		t.Fatalf("startup prewarm options %+v", o)
	}
	health := healthClient(t, r.addrs.Socket)
	ctx := bounded(t)
	if code, body := httpGet(t, "http://"+r.addrs.HTTP+"/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "prewarm") {
		t.Fatalf("/ready during prewarm: %d %s", code, body)
	}
	if h, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health during prewarm: %v %v", h, err)
	}
	// The API answers all the while: startup and liveness probes ask for it by name.
	if h, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "cachee.v1.CacheService"}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("CacheService health during prewarm: %v %v", h, err)
	}
	s, err := r.client.Prewarm(ctx, &cacheev1.PrewarmRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Aborted {
		t.Fatalf("Prewarm RPC during the startup prewarm: %v, want ABORTED", err)
	}
	close(release)
	waitFor(t, "ready after prewarm", func() bool {
		code, _ := httpGet(t, "http://"+r.addrs.HTTP+"/ready")
		return code == http.StatusOK
	})
	if h, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after prewarm: %v %v", h, err)
	}
	if !strings.Contains(r.logs.String(), "prewarm") {
		t.Fatalf("startup prewarm not logged:\n%s", r.logs)
	}
}

// TestReadinessChangesReachHealth: a condition held after the server started (a
// hit-rate gate, say) turns grpc.health.v1 NOT_SERVING until released.
func TestReadinessChangesReachHealth(t *testing.T) {
	var srv *server.Server
	r := serveWith(t, server.Config{}, nil)
	srv = r.srv
	health := healthClient(t, r.addrs.Socket)
	ctx := bounded(t)
	srv.Readiness().Hold("hit-rate", "0.10 < 0.70")
	if h, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health while held: %v %v", h, err)
	}
	srv.Readiness().Release("hit-rate")
	if h, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after release: %v %v", h, err)
	}
}

func healthClient(t *testing.T, sock string) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
