package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// sidecar is a real cachee (store and server) on a socket and segment in temp dirs.
type sidecar struct {
	socket, shm string
	stop        func()
}

func startSidecar(t *testing.T) *sidecar {
	t.Helper()
	// Short paths: a Unix socket path must fit in 107 bytes.
	dir, err := os.MkdirTemp("", "app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sc := &sidecar{socket: filepath.Join(dir, "cachee.sock"), shm: filepath.Join(dir, "shm")}
	st, err := store.Open(store.Config{Dir: sc.shm, MaxMemory: 8 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Socket: sc.socket, Addr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		GracePeriod: time.Second, Logger: slog.New(slog.DiscardHandler),
	}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	sc.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	}
	t.Cleanup(sc.stop)
	return sc
}

func getItem(t *testing.T, h http.Handler, path string) itemResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	var r itemResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if got := rec.Header().Get("X-Cache-Tier"); got != string(r.Tier) {
		t.Fatalf("X-Cache-Tier %q, body says %q", got, r.Tier)
	}
	return r
}

func TestTiers(t *testing.T) {
	sc := startSidecar(t)
	log := slog.New(slog.DiscardHandler)
	cfg := config{ttl: time.Minute, valueSize: 100, cacheTimeout: time.Second}
	c, err := newCache(sc.socket, sc.shm, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := newApp(cfg, c, log)
	h := a.routes()

	if r := getItem(t, h, "/item/1"); r.Tier != tierOrigin || r.Bytes != 100 {
		t.Fatalf("first read: %+v, want origin, 100 bytes", r)
	}
	if r := getItem(t, h, "/item/1?via=socket"); r.Tier != tierSidecar {
		t.Fatalf("read via the socket: %+v, want sidecar", r)
	}
	// The reader maps the segment on its next check; wait for that, boundedly.
	var r itemResponse
	for i := 0; i < 200; i++ {
		if r = getItem(t, h, "/item/1"); r.Tier == tierShm {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.Tier != tierShm {
		t.Fatalf("read after the segment appeared: %+v, want shm", r)
	}

	// A sidecar that is gone costs the origin's latency, never an error.
	sc.stop()
	if r := getItem(t, h, "/item/2?via=socket"); r.Tier != tierOrigin {
		t.Fatalf("read with the sidecar down: %+v, want origin", r)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
	var s statsReport
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Mismatches != 0 || s.SidecarErrors["Unavailable"] < 1 || s.Tiers["origin"].Count != 2 || s.Tiers["sidecar"].Count < 1 || s.Tiers["shm"].Count < 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestParseFlagsEnv(t *testing.T) {
	t.Setenv("CACHEE_SOCKET", "/s/c.sock")
	t.Setenv("CACHEE_SHM", "/dev/shm/x")
	c, err := parseFlags([]string{"--listen=:9"})
	if err != nil {
		t.Fatal(err)
	}
	if c.socket != "/s/c.sock" || c.shm != "/dev/shm/x" || c.listen != ":9" {
		t.Fatalf("%+v", c)
	}
	if _, err := parseFlags([]string{"--value-size=0"}); err == nil {
		t.Fatal("value size 0 accepted")
	}
}
