package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// TestHitRateGate: with ReadyHitRate set, /ready stays 503 until the hit rate over the
// last window reaches it, then stays 200 (it gates startup, and does not flap later).
func TestHitRateGate(t *testing.T) {
	r := serve(t, server.Config{ReadyHitRate: 0.7, ReadyWindow: 300 * time.Millisecond, ReadyMinReads: 20, ReadyMaxWait: time.Minute})
	ready := func() (bool, string) {
		code, body := httpGet(t, "http://"+r.addrs.HTTP+"/ready")
		return code == http.StatusOK, body
	}
	if ok, body := ready(); ok || !strings.Contains(body, "hit-rate") {
		t.Fatalf("ready before any traffic: %s", body)
	}
	r.st.Set([]byte("k"), []byte("v"), store.SetOptions{})
	// Mostly misses: still not ready.
	for range 100 {
		r.st.Get([]byte("missing"), nil)
	}
	time.Sleep(150 * time.Millisecond)
	if ok, body := ready(); ok {
		t.Fatalf("ready at a low hit rate: %s", body)
	}
	// Mostly hits: ready within a window or two.
	waitFor(t, "ready at a high hit rate", func() bool {
		for range 100 {
			r.st.Get([]byte("k"), nil)
		}
		ok, _ := ready()
		return ok
	})
	for range 1000 {
		r.st.Get([]byte("missing"), nil)
	}
	time.Sleep(400 * time.Millisecond)
	if ok, body := ready(); !ok {
		t.Fatalf("readiness flapped back: %s", body)
	}
}

// TestHitRateGateMaxWait: a pod that never reaches the rate is ready after
// ReadyMaxWait anyway, and says why in the log.
func TestHitRateGateMaxWait(t *testing.T) {
	r := serve(t, server.Config{ReadyHitRate: 0.99, ReadyWindow: 100 * time.Millisecond, ReadyMaxWait: 3 * time.Second})
	code, _ := httpGet(t, "http://"+r.addrs.HTTP+"/ready")
	if code == http.StatusOK {
		t.Fatal("ready at once")
	}
	waitFor(t, "ready after max wait", func() bool {
		code, _ := httpGet(t, "http://"+r.addrs.HTTP+"/ready")
		return code == http.StatusOK
	})
	if !strings.Contains(r.logs.String(), "max wait") {
		t.Fatalf("not logged:\n%s", r.logs)
	}
}
