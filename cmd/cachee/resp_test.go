package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
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

// TestLatencyCoversRESP: cachee_latency_seconds samples RESP commands too, so that a
// server used only over RESP reports its latency in /metrics and in cachee stats.
func TestLatencyCoversRESP(t *testing.T) {
	p := start(t)
	c := dialRESP(t, "unix", p.sock)
	const n = 10000
	var b []byte
	for i := range n {
		b = appendCommand(b, "SET", fmt.Sprint("k", i%10), "v")
		b = appendCommand(b, "GET", fmt.Sprint("k", i%10))
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	for range 2 * n {
		if _, err := readReplyLine(c); err != nil {
			t.Fatal(err)
		}
	}
	_, body := get(t, "http://"+p.metrics+"/metrics")
	m := regexp.MustCompile(`(?m)^cachee_latency_seconds_count (\d+)$`).FindStringSubmatch(string(body))
	// One command in 512 is timed; pipelined SETs stored as one batch are not commands
	// of their own, but the GETs between them keep every SET alone.
	if m == nil {
		t.Fatalf("no cachee_latency_seconds_count in /metrics")
	}
	if count, _ := strconv.Atoi(m[1]); count < 2*n/512 {
		t.Fatalf("cachee_latency_seconds_count %d after %d RESP commands, want at least %d", count, 2*n, 2*n/512)
	}
	out, stderr, code := run(t, []string{"CACHEE_SOCKET=" + p.sock}, "", "stats", "-o", "json")
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("stats: exit %d %q %q", code, out, stderr)
	}
	if st["latency_p50"] == "0s" {
		t.Fatalf("stats shows no latency after RESP commands: %s", out)
	}
}

// readReplyLine reads one one-line reply, or a bulk string with its payload.
func readReplyLine(c *respConn) (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "$") || line == "$-1\r\n" {
		return line, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return line, err
	}
	buf := make([]byte, n+2)
	_, err = io.ReadFull(c.r, buf)
	return line + string(buf), err
}
