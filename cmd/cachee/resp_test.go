package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// TestRESP checks that the binary serves the Redis protocol on its socket and its TCP
// port, over the same store as gRPC, and that --requirepass holds clients to AUTH.
func TestRESP(t *testing.T) {
	p := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unix := redis.NewClient(&redis.Options{Network: "unix", Addr: p.sock})
	defer unix.Close()
	tcp := redis.NewClient(&redis.Options{Addr: p.tcp, Protocol: 3})
	defer tcp.Close()

	if err := unix.Set(ctx, "user:42", "ada", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := tcp.Get(ctx, "user:42").Result(); err != nil || v != "ada" {
		t.Fatalf("GET over TCP: %q %v", v, err)
	}
	r, err := p.client().Get(ctx, &cacheev1.GetRequest{Key: []byte("user:42")})
	if err != nil || string(r.GetValue()) != "ada" {
		t.Fatalf("gRPC does not see the RESP write: %v %v", r, err)
	}
	if _, err := p.client().Set(ctx, &cacheev1.SetRequest{Key: []byte("from-grpc"), Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Incr(ctx, "from-grpc").Result(); err != nil || n != 2 {
		t.Fatalf("INCR of a gRPC write: %d %v", n, err)
	}

	locked := start(t, "--requirepass=s3cret")
	anon := redis.NewClient(&redis.Options{Network: "unix", Addr: locked.sock})
	defer anon.Close()
	if err := anon.Get(ctx, "k").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("unauthenticated GET: %v", err)
	}
	authed := redis.NewClient(&redis.Options{Network: "unix", Addr: locked.sock, Password: "s3cret"})
	defer authed.Close()
	if err := authed.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("authenticated SET: %v", err)
	}
}
