package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2/hpack"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// A fast call's deadline without a timer reports what context.WithTimeout's would:
// the deadline, no error before it, DeadlineExceeded after it, and its parent's
// cancellation and values.
func TestNoWaitDeadline(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	at := time.Now().Add(time.Hour)
	c := &noWaitDeadline{Context: parent, at: at}
	if d, ok := c.Deadline(); !ok || !d.Equal(at) {
		t.Fatalf("Deadline() = %v, %v; want %v, true", d, ok, at)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err() before the deadline = %v", err)
	}
	if c.Value(key{}) != "v" {
		t.Fatal("the parent's value is lost")
	}
	cancel()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() after the parent's cancel = %v", err)
	}
	past := &noWaitDeadline{Context: context.Background(), at: time.Now().Add(-time.Millisecond)}
	if err := past.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() past the deadline = %v", err)
	}
}

// While the client memory budget is tight (under memory pressure, or full) the fast
// path leaves its clients' requests unread, as grpc-go's read gate holds them, and
// reads them once it is not: a call made meanwhile is answered then, not refused.
func TestFastPathHoldsReadsUnderPressure(t *testing.T) {
	b := NewBudget(64 << 20)
	s, cc := serveInternal(t, Config{FastPath: true, Budget: b}, nil)
	c := cacheev1.NewCacheServiceClient(cc)
	cx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if _, err := c.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	served := s.fast.served
	before := testutil.ToFloat64(served)

	full := b.Limit() - b.Used()
	for _, tc := range []struct {
		name         string
		tight, loose func()
	}{
		{"memory pressure", func() { b.pressured.Add(1); b.pressure.Store(true) }, b.relieve},
		{"a full budget", func() { b.Charge(full) }, func() { b.Release(full) }},
	} {
		tc.tight()
		start := time.Now()
		answered := make(chan error, 1)
		go func() {
			_, err := c.Get(cx, &cacheev1.GetRequest{Key: []byte("k")})
			answered <- err
		}()
		select {
		case err := <-answered:
			if time.Since(start) >= maxReadWait {
				// The process stalled past the hold's bound, after which the call is
				// read as it should be: nothing here tells whether it was held.
				t.Skipf("%s: stalled for %v, past maxReadWait", tc.name, time.Since(start))
			}
			t.Fatalf("%s: a call was answered at once (%v); want it held until the budget has room", tc.name, err)
		case <-time.After(100 * time.Millisecond):
		}
		if n := testutil.ToFloat64(served); n != before && time.Since(start) < maxReadWait {
			t.Fatalf("%s: the fast path served %v calls", tc.name, n-before)
		}
		tc.loose()
		if err := <-answered; err != nil {
			t.Fatalf("%s: the call held failed once there was room: %v", tc.name, err)
		}
		before = testutil.ToFloat64(served)
	}
}

// checkHeaderList, which the data path uses instead of building a call's metadata,
// gives incomingMetadata's verdict on every header list, and the same
// "authorization" values. Each byte of the input picks a field.
func FuzzCheckHeaderList(f *testing.F) {
	f.Add([]byte{0, 3, 5})
	f.Add([]byte{0, 0})
	f.Add([]byte{1, 2, 3, 3, 7})
	f.Add([]byte{4, 0, 8, 9})
	fields := []hpack.HeaderField{
		{Name: ":authority", Value: "localhost"},
		{Name: "host", Value: "h"},
		{Name: ":path", Value: "/cachee.v1.CacheService/Get"},
		{Name: "authorization", Value: "Bearer tok"},
		{Name: "authorization", Value: "Bearer other"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "x-trace-bin", Value: "AAEC"},
		{Name: "x-trace-bin", Value: "not base64!"},
		{Name: "grpc-status-details-bin", Value: "%%"},
		{Name: "grpc-timeout", Value: "1S"},
		{Name: "te", Value: "trailers"},
		{Name: "x-user", Value: "u"},
	}
	f.Fuzz(func(t *testing.T, picks []byte) {
		var list []hpack.HeaderField
		for _, p := range picks {
			list = append(list, fields[int(p)%len(fields)])
		}
		md, ok := incomingMetadata(list)
		hl, ok2 := checkHeaderList(list)
		if ok != ok2 {
			t.Fatalf("%v: incomingMetadata says %v, checkHeaderList %v", list, ok, ok2)
		}
		if !ok {
			return
		}
		vals := md["authorization"]
		if hl.authorizations != len(vals) || len(vals) > 0 && hl.authorization != vals[0] {
			t.Fatalf("%v: authorization %q (%d), want %q", list, hl.authorization, hl.authorizations, vals)
		}
	})
}
