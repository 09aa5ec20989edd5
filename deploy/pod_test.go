package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachee/cachee/deploy/internal/manifest"
	"github.com/cachee/cachee/deploy/internal/podsim"
)

// podOptions renders the L1/L2 overlay and finds the binaries `make pod` uses.
func podOptions(t *testing.T) podsim.Options {
	t.Helper()
	out, err := manifest.Kustomize(filepath.Join("kubernetes", "overlays", "l1l2"))
	if err != nil {
		t.Fatal(err)
	}
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("DEPLOY_TOOLS_REQUIRED") == "1" {
			t.Fatal("redis-server not found (make deps installs it)")
		}
		t.Skip("redis-server not found: apt-get install redis-server")
	}
	cachee, app := binaries(t)
	return podsim.Options{
		Manifest:    out,
		Cachee:      cachee,
		App:         app,
		HealthProbe: tool(t, "CACHEE_HEALTH_PROBE", "grpc-health-probe"),
		RedisServer: redis,
		L2:          "auto",
		Duration:    time.Second,
		Concurrency: 2,
		Keys:        500,
		SocketShare: 0.2,
		Log:         testWriter{t},
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestPod runs the L1/L2 pod briefly: the readiness gate opens, load is served from
// every tier without errors or wrong values, and both containers drain cleanly.
func TestPod(t *testing.T) {
	o := podOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := podsim.Run(ctx, o)
	var sb strings.Builder
	r.Print(&sb)
	t.Log("\n" + sb.String())
	if err != nil {
		t.Fatal(err)
	}
	if !r.GateOpened {
		t.Fatal("readiness gate did not open")
	}
	if r.Load.Requests == 0 || r.Load.Errors != 0 {
		t.Errorf("load: %d requests, %d errors", r.Load.Requests, r.Load.Errors)
	}
	if r.App.Mismatches != 0 {
		t.Errorf("%d cached values differ from the origin's", r.App.Mismatches)
	}
	// The app read the segment that cachee wrote (as different processes, and as the
	// manifest's uid and group when this runs as root), and reached it over the socket.
	for _, tier := range []string{"shm", "sidecar", "origin"} {
		if r.App.Tiers[tier].Count == 0 {
			t.Errorf("no reads answered by %s", tier)
		}
	}
	if r.L2Addr == "" || r.L2Direct == nil {
		t.Error("no redis-server stood in for the L2")
	}
	if r.AppExit != 0 || r.CacheeExit != 0 || r.SocketLeft {
		t.Errorf("shutdown: app exit %d, cachee exit %d, socket left %v", r.AppExit, r.CacheeExit, r.SocketLeft)
	}
	// Until cachee has the L2 tier, the run says which flags it did not pass.
	for _, m := range r.L2Missing {
		if !slices.ContainsFunc(r.L2Dropped, func(a string) bool { return strings.HasPrefix(a, m+"=") }) || !strings.Contains(r.L2Mode, m) {
			t.Errorf("%s is missing from cachee but not reported as dropped: %q", m, r.L2Mode)
		}
	}
}

// TestPodL2On passes the L2 flags whatever the binary has. A cachee without the L2
// tier must refuse them, and the run must say which are missing.
func TestPodL2On(t *testing.T) {
	o := podOptions(t)
	o.L2 = "on"
	o.Duration = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := podsim.Run(ctx, o)
	if len(r.L2Missing) == 0 {
		if err != nil {
			t.Fatalf("cachee has the L2 flags, but the run failed: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "unknown flag") || !strings.Contains(err.Error(), strings.Join(r.L2Missing, ", ")) {
		t.Fatalf("with L2 flags this cachee lacks (%v), the run ended with %v", r.L2Missing, err)
	}
	t.Logf("as expected: %v", err)
}
