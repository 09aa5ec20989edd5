package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// wantError checks that err is a status with code and an ErrorInfo with reason, and
// returns the ErrorInfo.
func wantError(t *testing.T, err error, code codes.Code, reason string) *errdetails.ErrorInfo {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error %v: want code %v", err, code)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetReason() != reason || info.GetDomain() != "cachee" {
				t.Fatalf("ErrorInfo %v: want reason %s in domain cachee", info, reason)
			}
			return info
		}
	}
	t.Fatalf("error %v has no ErrorInfo", err)
	return nil
}

func TestCacheService(t *testing.T) {
	p := start(t)
	c := p.client()
	cx := ctx(t)

	get := func(key string) *cacheev1.GetResponse {
		t.Helper()
		r, err := c.Get(cx, &cacheev1.GetRequest{Key: []byte(key)})
		if err != nil {
			t.Fatalf("Get %q: %v", key, err)
		}
		return r
	}
	set := func(req *cacheev1.SetRequest) bool {
		t.Helper()
		r, err := c.Set(cx, req)
		if err != nil {
			t.Fatalf("Set %q: %v", req.Key, err)
		}
		return r.GetStored()
	}

	if r := get("absent"); r.GetFound() || len(r.GetValue()) != 0 {
		t.Fatalf("miss: %v", r)
	}
	value := bytes.Repeat([]byte{0, 1, 0xff}, 40) // binary-safe
	if !set(&cacheev1.SetRequest{Key: []byte("k"), Value: value, Ttl: durationpb.New(time.Hour)}) {
		t.Fatal("Set not stored")
	}
	if r := get("k"); !r.GetFound() || !bytes.Equal(r.GetValue(), value) {
		t.Fatalf("hit: %v", r)
	}

	// Conditions.
	if set(&cacheev1.SetRequest{Key: []byte("k"), Value: []byte("x"), Condition: cacheev1.SetCondition_SET_CONDITION_IF_ABSENT}) {
		t.Fatal("IF_ABSENT stored over a present key")
	}
	if set(&cacheev1.SetRequest{Key: []byte("new"), Value: []byte("x"), Condition: cacheev1.SetCondition_SET_CONDITION_IF_PRESENT}) {
		t.Fatal("IF_PRESENT stored an absent key")
	}
	if get("new").GetFound() {
		t.Fatal("IF_PRESENT created the key")
	}
	if !set(&cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v2"), Condition: cacheev1.SetCondition_SET_CONDITION_IF_PRESENT}) {
		t.Fatal("IF_PRESENT did not store over a present key")
	}
	if r := get("k"); string(r.GetValue()) != "v2" {
		t.Fatalf("after IF_PRESENT: %q", r.GetValue())
	}
	// An empty value is a value.
	set(&cacheev1.SetRequest{Key: []byte("empty")})
	if r := get("empty"); !r.GetFound() || len(r.GetValue()) != 0 {
		t.Fatalf("empty value: %v", r)
	}

	// Delete.
	d, err := c.Delete(cx, &cacheev1.DeleteRequest{Key: []byte("k")})
	if err != nil || !d.GetDeleted() {
		t.Fatalf("Delete: %v %v", d, err)
	}
	d, err = c.Delete(cx, &cacheev1.DeleteRequest{Key: []byte("k")})
	if err != nil || d.GetDeleted() {
		t.Fatalf("Delete of a missing key: %v %v", d, err)
	}

	// Batches.
	bs, err := c.BatchSet(cx, &cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: []byte("2"), Ttl: durationpb.New(time.Minute)},
		{Key: []byte("a"), Value: []byte("3"), Condition: cacheev1.SetCondition_SET_CONDITION_IF_ABSENT},
	}})
	if err != nil || !slices.Equal(bs.GetStored(), []bool{true, true, false}) {
		t.Fatalf("BatchSet: %v %v", bs, err)
	}
	bg, err := c.BatchGet(cx, &cacheev1.BatchGetRequest{Keys: [][]byte{[]byte("a"), []byte("zz"), []byte("b"), []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range bg.GetResults() {
		got = append(got, fmt.Sprintf("%v:%s", r.GetFound(), r.GetValue()))
	}
	if want := []string{"true:1", "false:", "true:2", "true:1"}; !slices.Equal(got, want) {
		t.Fatalf("BatchGet: %v, want %v", got, want)
	}

	// A TTL reaches the store: a 1 ms entry disappears.
	set(&cacheev1.SetRequest{Key: []byte("brief"), Value: []byte("x"), Ttl: durationpb.New(time.Millisecond)})
	for deadline := time.Now().Add(10 * time.Second); get("brief").GetFound(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("entry with a 1ms TTL never expired")
		}
	}

	// RecordAccess ignores references it does not know.
	if _, err := c.RecordAccess(cx, &cacheev1.RecordAccessRequest{Refs: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}

	st, err := c.Stats(cx, &cacheev1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetSets() < 6 || st.GetHits() == 0 || st.GetMisses() == 0 || st.GetDeletes() != 1 {
		t.Fatalf("Stats counters: %v", st)
	}
	if want := float64(st.GetHits()) / float64(st.GetHits()+st.GetMisses()); st.GetHitRate() != want {
		t.Fatalf("hit rate %v, want %v", st.GetHitRate(), want)
	}
	if st.GetMemoryLimitBytes() != 8<<20 || st.GetMemoryUsedBytes() <= 0 || st.GetEntries() < 3 {
		t.Fatalf("Stats memory/entries: %v", st)
	}
	if st.GetUptime().AsDuration() <= 0 || st.GetEviction() != "cachee-lfu" || st.GetSegmentPath() != "" {
		t.Fatalf("Stats uptime/eviction/segment: %v", st)
	}
	// Latency is sampled: after enough operations, quantiles exist and are ordered.
	for i := range 200 {
		get(fmt.Sprint("warm", i))
	}
	st, _ = c.Stats(cx, &cacheev1.StatsRequest{})
	p50, p95, p99 := st.GetLatencyP50().AsDuration(), st.GetLatencyP95().AsDuration(), st.GetLatencyP99().AsDuration()
	if p50 <= 0 || p95 < p50 || p99 < p95 {
		t.Fatalf("latency quantiles p50 %v p95 %v p99 %v", p50, p95, p99)
	}
}

func TestErrors(t *testing.T) {
	p := start(t, "--max-value-size=1kb")
	c := p.client()
	cx := ctx(t)
	bigKey := make([]byte, 64<<10+1)
	tooMany := make([][]byte, 1001)
	for i := range tooMany {
		tooMany[i] = []byte("k")
	}
	for _, tc := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
		meta   map[string]string
	}{
		{"get empty key", func() error { _, err := c.Get(cx, &cacheev1.GetRequest{}); return err },
			codes.InvalidArgument, "KEY_EMPTY", map[string]string{"field": "key"}},
		{"get key too large", func() error { _, err := c.Get(cx, &cacheev1.GetRequest{Key: bigKey}); return err },
			codes.InvalidArgument, "KEY_TOO_LARGE", map[string]string{"field": "key", "size": "65537", "limit": "65536"}},
		{"set value too large", func() error {
			_, err := c.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Value: make([]byte, 1025)})
			return err
		}, codes.InvalidArgument, "VALUE_TOO_LARGE", map[string]string{"field": "value", "size": "1025", "limit": "1024"}},
		{"set negative ttl", func() error {
			_, err := c.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Ttl: durationpb.New(-time.Second)})
			return err
		}, codes.InvalidArgument, "INVALID_TTL", map[string]string{"field": "ttl"}},
		{"set unknown condition", func() error {
			_, err := c.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Condition: 7})
			return err
		}, codes.InvalidArgument, "INVALID_FIELD", map[string]string{"field": "condition"}},
		{"delete empty key", func() error { _, err := c.Delete(cx, &cacheev1.DeleteRequest{}); return err },
			codes.InvalidArgument, "KEY_EMPTY", map[string]string{"field": "key"}},
		{"batch get too many", func() error { _, err := c.BatchGet(cx, &cacheev1.BatchGetRequest{Keys: tooMany}); return err },
			codes.InvalidArgument, "BATCH_TOO_LARGE", map[string]string{"field": "keys", "size": "1001", "limit": "1000"}},
		{"batch get bad key", func() error {
			_, err := c.BatchGet(cx, &cacheev1.BatchGetRequest{Keys: [][]byte{[]byte("a"), nil}})
			return err
		}, codes.InvalidArgument, "KEY_EMPTY", map[string]string{"field": "keys[1]"}},
		{"batch set bad item", func() error {
			_, err := c.BatchSet(cx, &cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{
				{Key: []byte("a")}, {Key: []byte("b"), Value: make([]byte, 2000)},
			}})
			return err
		}, codes.InvalidArgument, "VALUE_TOO_LARGE", map[string]string{"field": "items[1].value", "size": "2000", "limit": "1024"}},
		{"batch set unknown condition", func() error {
			_, err := c.BatchSet(cx, &cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{{Key: []byte("a")}, {Key: []byte("b"), Condition: 9}}})
			return err
		}, codes.InvalidArgument, "INVALID_FIELD", map[string]string{"field": "items[1].condition"}},
		{"prewarm without source", func() error {
			s, err := c.Prewarm(cx, &cacheev1.PrewarmRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.FailedPrecondition, "PREWARM_NOT_CONFIGURED", nil},
		{"prewarm negative keys", func() error {
			s, err := c.Prewarm(cx, &cacheev1.PrewarmRequest{Keys: -1})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.InvalidArgument, "INVALID_FIELD", map[string]string{"field": "keys"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := wantError(t, tc.call(), tc.code, tc.reason)
			for k, v := range tc.meta {
				if info.GetMetadata()[k] != v {
					t.Errorf("metadata %q = %q, want %q (all: %v)", k, info.GetMetadata()[k], v, info.GetMetadata())
				}
			}
		})
	}
	// The batch that failed validation stored nothing.
	if r, err := c.Get(cx, &cacheev1.GetRequest{Key: []byte("a")}); err != nil || r.GetFound() {
		t.Fatalf("item of a rejected batch was stored: %v %v", r, err)
	}

	// A message over the message size limit (max value + max key + slack) is refused
	// with MESSAGE_TOO_LARGE, naming the limit and the flag that raises it; one over
	// twice the limit by gRPC itself, before it is read.
	_, err := c.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Value: make([]byte, 100<<10)})
	info := wantError(t, err, codes.ResourceExhausted, "MESSAGE_TOO_LARGE")
	const limit = 1<<10 + 64<<10 + 4<<10
	if msg := status.Convert(err).Message(); info.GetMetadata()["limit"] != fmt.Sprint(limit) ||
		!strings.Contains(msg, fmt.Sprint(limit)+" bytes") || !strings.Contains(msg, "--max-value-size") {
		t.Fatalf("oversized message: %v %v: want the limit, %d bytes, and --max-value-size", err, info, limit)
	}
	_, err = c.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Value: make([]byte, 1<<20)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized message: %v, want ResourceExhausted", err)
	}
	// The server lives on.
	if _, err := c.Get(cx, &cacheev1.GetRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
}

func TestOutOfMemory(t *testing.T) {
	p := start(t, "--eviction=noeviction", "--max-memory=1mb")
	c := p.client()
	cx := ctx(t)
	value := make([]byte, 8<<10)
	for i := range 1000 { // 8 MB of values cannot fit in 1 MB
		_, err := c.Set(cx, &cacheev1.SetRequest{Key: fmt.Appendf(nil, "key-%d", i), Value: value})
		if err != nil {
			wantError(t, err, codes.ResourceExhausted, "OUT_OF_MEMORY")
			return
		}
	}
	t.Fatal("a full noeviction store kept accepting writes")
}

func TestReflectionListsServices(t *testing.T) {
	p := start(t)
	rc := reflectionpb.NewServerReflectionClient(p.conn())
	stream, err := rc.ServerReflectionInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"cachee.v1.CacheService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("services %v lack %s", names, want)
		}
	}
	// The descriptors are there too, which is what grpcurl describe and invoke need.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "cachee.v1.CacheService"},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Fatalf("file descriptor for cachee.v1.CacheService: %v %v", resp, err)
	}
}

func TestHealthService(t *testing.T) {
	p := start(t)
	h := healthpb.NewHealthClient(p.conn())
	for _, svc := range []string{"", "cachee.v1.CacheService"} {
		r, err := h.Check(ctx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(%q): %v %v", svc, r, err)
		}
	}

	probe := os.Getenv("CACHEE_HEALTH_PROBE")
	if probe == "" {
		t.Skip("CACHEE_HEALTH_PROBE unset: `make test` installs grpc-health-probe and sets it")
	}
	out, err := exec.Command(probe, "-addr", "unix://"+p.sock, "-connect-timeout", "20s", "-rpc-timeout", "20s").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SERVING") {
		t.Fatalf("grpc-health-probe: %v\n%s", err, out)
	}
}

// TestTCPServesGRPC checks the TCP port speaks gRPC too.
func TestTCPServesGRPC(t *testing.T) {
	p := start(t)
	c := cacheev1.NewCacheServiceClient(dial(t, p.tcp))
	if _, err := c.Set(ctx(t), &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("tcp")}); err != nil {
		t.Fatal(err)
	}
	// ...and the socket sees what TCP wrote: one store behind both.
	r, err := p.client().Get(ctx(t), &cacheev1.GetRequest{Key: []byte("k")})
	if err != nil || string(r.GetValue()) != "tcp" {
		t.Fatalf("%v %v", r, err)
	}
}

// TestNonGRPCConnection checks that with RESP off a connection that is not gRPC is
// closed with a log line, and that a client that sends nothing does not hold up others.
func TestNonGRPCConnection(t *testing.T) {
	p := start(t, "--resp-compat=false")
	idle, err := net.Dial("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	for _, network := range []struct{ net, addr string }{{"unix", p.sock}, {"tcp", p.tcp}} {
		c, err := net.Dial(network.net, network.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Fatalf("%s: read %q, %v; want the server to close the connection", network.net, b, err)
		}
		c.Close()
	}
	// The idle connection is still being sniffed, yet gRPC calls go through.
	if _, err := p.client().Get(ctx(t), &cacheev1.GetRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.logs.String(), "closed a connection that is not gRPC"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no log line for the closed connection")
		}
	}
}

func TestSocketFile(t *testing.T) {
	p := start(t)
	fi, err := os.Stat(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(p.sock))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o750 {
		t.Fatalf("created socket directory mode %v, want 0750", di.Mode().Perm())
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if _, err := os.Lstat(p.sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind after exit: %v", err)
	}
}
