package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

func TestBadFlagsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string // in the one line on stderr
	}{
		{"size", nil, []string{"--max-memory=lots"}, `invalid argument "lots" for "--max-memory"`},
		{"size unit", nil, []string{"--max-memory=12parsecs"}, "unknown unit"},
		{"size range", nil, []string{"--max-memory=1kb"}, "invalid --max-memory 1kb"},
		{"value over half the memory", nil, []string{"--max-memory=1mb", "--max-value-size=1mb"}, "--max-value-size"},
		{"eviction", nil, []string{"--eviction=fifo"}, `"fifo" is not one of`},
		{"port range", nil, []string{"--port=70000"}, "invalid --port 70000"},
		{"port syntax", nil, []string{"--port=high"}, `invalid argument "high" for "--port"`},
		{"duration", nil, []string{"--prewarm-timeout=soon"}, `"--prewarm-timeout"`},
		{"bind", nil, []string{"--bind=my-host"}, "invalid --bind"},
		{"unknown flag", nil, []string{"--colour"}, "unknown flag: --colour"},
		{"unknown command", nil, []string{"serve"}, `unknown command "serve"`},
		{"start takes no args", nil, []string{"start", "now"}, `unknown command "now"`},
		{"env size", []string{"CACHEE_MAX_MEMORY=lots"}, nil, "CACHEE_MAX_MEMORY"},
		{"env bool", []string{"CACHEE_RESP_COMPAT=maybe"}, nil, "CACHEE_RESP_COMPAT"},
		{"env on subcommand", []string{"CACHEE_PORT=x"}, []string{"start"}, "CACHEE_PORT"},
		{"get needs a key", nil, []string{"get"}, "accepts 1 arg(s)"},
		{"set needs a value", nil, []string{"set", "k"}, "accepts 2 arg(s)"},
		{"set negative ttl", nil, []string{"set", "k", "v", "--ttl=-1s"}, "negative"},
		{"set nx and xx", nil, []string{"set", "k", "v", "--nx", "--xx"}, "--nx and --xx"},
		{"stats output", nil, []string{"stats", "-o", "yaml"}, `"yaml" is not one of`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tc.env, "", tc.args...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "cachee: ") || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr %q: want one line with %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Fatalf("stdout %q", stdout)
			}
		})
	}
}

// TestEnvConfiguresServer starts cachee configured by CACHEE_* alone, and checks that
// a flag beats its variable.
func TestEnvConfiguresServer(t *testing.T) {
	sock := socketDir(t) + "/env.sock"
	p := startProc(t, procOptions{
		sock:    sock,
		noFlags: true,
		args:    []string{"start", "--eviction=noeviction"},
		env: []string{
			"CACHEE_SOCKET=" + sock, "CACHEE_PORT=0", "CACHEE_HTTP_PORT=0", "CACHEE_METRICS_PORT=0",
			"CACHEE_SHM=", "CACHEE_LOG_FORMAT=json", "CACHEE_MAX_MEMORY=2MiB",
			"CACHEE_MAX_VALUE_SIZE=100", "CACHEE_EVICTION=lru",
		},
	})
	if err := p.waitServing(); err != nil {
		t.Fatalf("%v\n%s", err, p.logs)
	}
	c := p.client()
	st, err := c.Stats(ctx(t), &cacheev1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetMemoryLimitBytes() != 2<<20 || st.GetEviction() != "noeviction" {
		t.Fatalf("memory limit %d, eviction %q; want 2 MiB from the environment and noeviction from the flag",
			st.GetMemoryLimitBytes(), st.GetEviction())
	}
	_, err = c.Set(ctx(t), &cacheev1.SetRequest{Key: []byte("k"), Value: make([]byte, 101)})
	if info := wantError(t, err, codes.InvalidArgument, "VALUE_TOO_LARGE"); info.GetMetadata()["limit"] != "100" {
		t.Fatalf("limit %v, want 100 from CACHEE_MAX_VALUE_SIZE", info.GetMetadata())
	}
}

func TestClientCommands(t *testing.T) {
	p := start(t)
	env := []string{"CACHEE_SOCKET=" + p.sock}
	expect := func(stdin string, wantOut, wantErr string, wantCode int, args ...string) {
		t.Helper()
		stdout, stderr, code := run(t, env, stdin, args...)
		if code != wantCode || stdout != wantOut || !strings.Contains(stderr, wantErr) {
			t.Fatalf("cachee %v: exit %d, stdout %q, stderr %q; want %d, %q, %q", args, code, stdout, stderr, wantCode, wantOut, wantErr)
		}
	}
	expect("", "OK\n", "", 0, "set", "greeting", "hello", "--ttl", "5m")
	expect("", "hello", "", 0, "get", "greeting") // raw bytes when not on a terminal
	expect("", "", "(not found)", 1, "get", "missing")
	expect("", "", "(not stored)", 1, "set", "greeting", "again", "--nx")
	expect("", "OK\n", "", 0, "set", "greeting", "again", "--xx")
	expect("from\nstdin", "OK\n", "", 0, "set", "piped", "-")
	expect("", "from\nstdin", "", 0, "get", "piped")
	expect("", "again", "", 0, "get", "greeting", "--addr", "unix://"+p.sock)
	expect("", "again", "", 0, "get", "greeting", "--addr", p.tcp)
	expect("", "", "InvalidArgument KEY_EMPTY", 1, "get", "")
	expect("", "", "FailedPrecondition PREWARM_NOT_CONFIGURED", 1, "prewarm")
	expect("", "deleted\n", "", 0, "del", "greeting")
	expect("", "", "(not found)", 1, "del", "greeting")
	expect("", "", "Unavailable", 1, "get", "k", "--addr", "unix://"+p.sock+".absent")

	stdout, stderr, code := run(t, env, "", "stats")
	if code != 0 || !regexp.MustCompile(`(?m)^hit rate +\d+\.\d%$`).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^memory limit +8 MB \(8388608 bytes\)$`).MatchString(stdout) {
		t.Fatalf("stats: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, env, "", "stats", "-o", "json")
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &st) != nil {
		t.Fatalf("stats -o json: exit %d, %q %q", code, stdout, stderr)
	}
	for _, k := range []string{"hits", "misses", "sets", "hit_rate", "memory_used_bytes", "uptime", "latency_p99"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats -o json lacks %q: %s", k, stdout)
		}
	}
	// Counters are numbers, not the strings protobuf's JSON makes of 64-bit integers.
	for _, k := range []string{"hits", "misses", "sets", "deletes", "evictions", "expirations", "entries", "memory_used_bytes", "memory_limit_bytes"} {
		if _, ok := st[k].(float64); !ok {
			t.Errorf("stats -o json: %q is %T, want a number: %s", k, st[k], stdout)
		}
	}
	if st["sets"] != 3.0 || st["memory_limit_bytes"] != float64(8<<20) {
		t.Errorf("stats -o json: sets %v, memory_limit_bytes %v; want 3 and %d", st["sets"], st["memory_limit_bytes"], 8<<20)
	}
}

// TestClientCommandsAuth: the client subcommands send the token (flag or
// CACHEE_AUTH_TOKEN) to a server started with --auth-token, and report a missing one
// as the SDK maps it.
func TestClientCommandsAuth(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	p := start(t, "--auth-token="+token)
	sock := "CACHEE_SOCKET=" + p.sock
	if _, stderr, code := run(t, []string{sock, "CACHEE_AUTH_TOKEN=" + token}, "", "set", "k", "v"); code != 0 {
		t.Fatalf("set with CACHEE_AUTH_TOKEN: exit %d: %s", code, stderr)
	}
	if out, stderr, code := run(t, []string{sock}, "", "get", "k", "--auth-token="+token); code != 0 || out != "v" {
		t.Fatalf("get with --auth-token: exit %d, %q: %s", code, out, stderr)
	}
	for _, args := range [][]string{{"get", "k"}, {"stats"}, {"del", "k"}, {"prewarm"}} {
		if _, stderr, code := run(t, []string{sock}, "", args...); code != 1 || !strings.Contains(stderr, "Unauthenticated UNAUTHENTICATED") {
			t.Fatalf("%v without a token: exit %d: %s", args, code, stderr)
		}
	}
}

func TestHTTPEndpoints(t *testing.T) {
	p := start(t)
	c := p.client()
	cx := ctx(t)
	c.Set(cx, &cacheev1.SetRequest{Key: []byte("a"), Value: make([]byte, 100)})
	c.Get(cx, &cacheev1.GetRequest{Key: []byte("a")})
	c.Get(cx, &cacheev1.GetRequest{Key: []byte("b")})

	code, body := get(t, "http://"+p.http+"/health")
	var h map[string]any
	if code != 200 || json.Unmarshal(body, &h) != nil {
		t.Fatalf("/health: %d %s", code, body)
	}
	if h["status"] != "ok" || h["entries"] != 1.0 || h["memory_limit"] != "8 MB" || h["hit_rate"] != 0.5 {
		t.Fatalf("/health: %s", body)
	}
	if used, _ := h["memory_used"].(string); !regexp.MustCompile(`^\d+(\.\d)? (B|KB|MB)$`).MatchString(used) {
		t.Fatalf("memory_used %q", used)
	}
	if up, ok := h["uptime_seconds"].(float64); !ok || up < 0 || up != float64(int64(up)) {
		t.Fatalf("uptime_seconds %v", h["uptime_seconds"])
	}

	code, body = get(t, "http://"+p.http+"/ready")
	if code != 200 || strings.TrimSpace(string(body)) != `{"ready":true}` {
		t.Fatalf("/ready: %d %s", code, body)
	}

	code, body = get(t, "http://"+p.metrics+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"cachee_hits_total 1", "cachee_misses_total 1", "cachee_hit_rate 0.5", "cachee_memory_bytes ",
		"cachee_evictions_total 0", `cachee_latency_seconds{quantile="0.5"}`, `cachee_latency_seconds{quantile="0.95"}`,
		`cachee_latency_seconds{quantile="0.99"}`,
		`grpc_server_started_total{grpc_method="Get",grpc_service="cachee.v1.CacheService",grpc_type="unary"} 2`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Set",grpc_service="cachee.v1.CacheService",grpc_type="unary"} 1`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(string(body), "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestClientLargeValue round-trips a value over gRPC's default 4 MiB message limit
// through the CLI, which must raise its receive limit.
func TestClientLargeValue(t *testing.T) {
	p := start(t, "--max-memory=64mb", "--max-value-size=8mb")
	env := []string{"CACHEE_SOCKET=" + p.sock}
	big := strings.Repeat("x", 5<<20)
	if _, stderr, code := run(t, env, big, "set", "big", "-"); code != 0 {
		t.Fatalf("set: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := run(t, env, "", "get", "big")
	if code != 0 || stdout != big {
		t.Fatalf("get: exit %d, %d bytes: %s", code, len(stdout), stderr)
	}
}
