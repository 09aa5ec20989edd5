package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// memoryMax is MEMORY_MAX (bytes, for a measurement at another size), or 256 MiB, the
// default --max-memory.
func memoryMax(t *testing.T) int64 {
	if s := os.Getenv("MEMORY_MAX"); s != "" {
		var n int64
		if _, err := fmt.Sscan(s, &n); err != nil || n < 8<<20 {
			t.Fatalf("MEMORY_MAX=%q: want bytes, at least 8 MiB", s)
		}
		return n
	}
	return 256 << 20
}

// TestMemoryBound holds cachee to its memory promise: with --max-memory=M, the
// process's resident memory (its anonymous and file pages, plus every page of the
// segment) stays below 1.2 x M + 32 MiB under everything at once: RESP clients
// writing and reading values up to the largest allowed, pipelines that are never
// read, slow readers of large replies, gRPC connections setting, getting and
// batch-getting large values, and hundreds of idle connections of both protocols.
// Clients are refused (OVERLOADED, disconnected) as the limits bite; that is the
// point.
func TestMemoryBound(t *testing.T) {
	m := memoryMax(t)
	dur := 20 * time.Second
	if s := os.Getenv("MEMORY_TIME"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		dur = d
	}
	bin := buildCachee(t)
	sc := newSidecar(t, bin, fmt.Sprintf("--max-memory=%d", m))
	maxValue := int(min(1<<20, m/4))
	big := make([]byte, maxValue)
	for i := range big {
		big[i] = byte(rand.IntN(256))
	}

	var (
		mu   sync.Mutex
		errs = map[string]int{}
		ops  = map[string]int{}
		// A refused client backs off a little, as a real one would, instead of
		// spinning on the CPU the sidecar needs.
		failed = func(kind string) { mu.Lock(); errs[kind]++; mu.Unlock(); time.Sleep(2 * time.Millisecond) }
		did    = func(op string) { mu.Lock(); ops[op]++; mu.Unlock() }
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	ctx := context.Background()

	// RESP writers and readers of large values.
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: sc.sock, PoolSize: 32, MaxRetries: -1,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	defer rc.Close()
	if err := rc.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatalf("storing the large value the readers ask for: %v", err)
	}
	for w := range 32 {
		wg.Go(func() {
			for i := 0; running(); i++ {
				k := fmt.Sprintf("m:r%d:%d", w, i%50)
				n := maxValue/4 + rand.IntN(maxValue*3/4)
				if err := rc.Set(ctx, k, big[:n], 0).Err(); err != nil {
					failed("resp set: " + short(err))
				} else {
					did("resp set")
				}
				if err := rc.Get(ctx, k).Err(); err != nil && err != redis.Nil {
					failed("resp get: " + short(err))
				} else {
					did("resp get")
				}
			}
		})
	}
	// Pipelines of GETs of the largest value that are never read.
	for range 8 {
		wg.Go(func() {
			req := []byte("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
			for running() {
				c, err := net.Dial("unix", sc.sock)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				for running() {
					c.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := c.Write(req); err != nil {
						break // disconnected at its output limit, or stuck: start over
					}
				}
				c.Close()
				did("unread pipeline")
			}
		})
	}
	// Slow readers of large replies.
	for range 4 {
		wg.Go(func() {
			for running() {
				c, err := net.Dial("unix", sc.sock)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				fmt.Fprintf(c, "*9\r\n$4\r\nMGET\r\n%s", strings.Repeat("$3\r\nbig\r\n", 8))
				r := bufio.NewReaderSize(c, 1024)
				buf := make([]byte, 1024)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for running() {
					if _, err := io.ReadFull(r, buf); err != nil {
						break
					}
					time.Sleep(time.Millisecond)
				}
				c.Close()
				did("slow MGET reader")
			}
		})
	}
	// gRPC connections, each with several calls in flight.
	for g := range 16 {
		cc, err := grpc.NewClient("unix://"+sc.sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		c := cacheev1.NewCacheServiceClient(cc)
		for w := range 4 {
			wg.Go(func() {
				for i := 0; running(); i++ {
					k := []byte(fmt.Sprintf("m:g%d:%d:%d", g, w, i%20))
					cx, cancel := context.WithTimeout(ctx, 30*time.Second)
					var err error
					var op string
					switch i % 3 {
					case 0:
						op = "grpc set"
						_, err = c.Set(cx, &cacheev1.SetRequest{Key: k, Value: big[:maxValue/2+rand.IntN(maxValue/2)]})
					case 1:
						op = "grpc get"
						_, err = c.Get(cx, &cacheev1.GetRequest{Key: k})
					default:
						op = "grpc batchget"
						keys := [][]byte{k, []byte("big")}
						for j := range 6 {
							keys = append(keys, []byte(fmt.Sprintf("m:g%d:%d:%d", g, w, j)))
						}
						_, err = c.BatchGet(cx, &cacheev1.BatchGetRequest{Keys: keys})
					}
					cancel()
					if err != nil {
						st := status.Convert(err)
						failed(fmt.Sprintf("%s: %v %s", op, st.Code(), reasonOf(st)))
					} else {
						did(op)
					}
				}
			})
		}
	}
	// Idle connections of both protocols.
	var idle []net.Conn
	for range 300 {
		c, err := net.Dial("unix", sc.sock)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "PING\r\n")
		idle = append(idle, c)
	}
	// Each gRPC connection is charged GRPCConnCost (96 KiB) while it is open: at
	// --max-memory=64mb the client budget is 6 MiB, of which these and the 16 busy
	// ones take 3.4 MiB.
	for range 20 {
		cc, err := grpc.NewClient("unix://"+sc.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		cacheev1.NewCacheServiceClient(cc).Stats(ctx, &cacheev1.StatsRequest{})
	}

	bound := m*6/5 + 32<<20
	var peak procSample
	var samples int
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		p, err := sc.sample()
		if err != nil {
			t.Fatalf("sampling cachee: %v (did it die?)", err)
		}
		samples++
		if p.resident() > peak.resident() {
			peak = p
		}
		time.Sleep(10 * time.Millisecond)
	}
	final, err := sc.sample()
	if err != nil {
		t.Fatalf("sampling cachee at the end: %v (did it die?)", err)
	}
	sc.mu.Lock()
	addr := sc.metrics
	sc.mu.Unlock()
	pressured, _ := metricValue(addr, "cachee_memory_pressure_total")
	close(stop)
	for _, c := range idle {
		c.Close()
	}
	wg.Wait()

	var sum strings.Builder
	fmt.Fprintf(&sum, "\nmemory under load: --max-memory=%s for %v, %d samples every 10ms\n", mib(m), dur, samples)
	fmt.Fprintf(&sum, "peak resident %s = anon %s + file %s + segment %s (RssShmem %s mapped of it); VmHWM %s; promise %s\n",
		mib(peak.resident()), mib(peak.anon), mib(peak.file), mib(max(peak.segmentBytes, peak.shmem)), mib(peak.shmem), mib(final.hwm), mib(bound))
	fmt.Fprintf(&sum, "limits in force: %s; memory pressure began %.0f times\n", limitsLine(sc.allLogs.String()), pressured)
	sum.WriteString("operations:")
	for _, k := range sortedKeys(ops) {
		fmt.Fprintf(&sum, " %s %d;", k, ops[k])
	}
	sum.WriteString("\nrefused or failed:")
	for _, k := range sortedKeys(errs) {
		fmt.Fprintf(&sum, "\n  %-64s %d", k, errs[k])
	}
	fmt.Println(sum.String())
	if peak.resident() > bound || final.hwm > bound {
		t.Errorf("over the promise: peak resident %s, VmHWM %s, bound %s", mib(peak.resident()), mib(final.hwm), mib(bound))
	}
	if ops["resp set"] == 0 || ops["grpc set"] == 0 {
		t.Errorf("the load did not get through: %v", ops)
	}
}

func short(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, ":\r\n"); i > 0 && !strings.HasPrefix(s, "ERR") {
		s = s[:i]
	}
	if len(s) > 48 {
		s = s[:48]
	}
	return s
}

// reasonOf is a status's ErrorInfo reason or, without one (a connection that broke),
// the start of its message, so that the summary says what went wrong.
func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if r, ok := d.(interface{ GetReason() string }); ok {
			return r.GetReason()
		}
	}
	m := st.Message()
	return m[:min(len(m), 60)]
}

// limitsLine is the "memory limits" log line of the first incarnation.
func limitsLine(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"msg":"memory limits`) {
			return line
		}
	}
	return "(not logged)"
}
