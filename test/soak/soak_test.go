// Package soak runs cachee under mixed load while it is killed and restarted, and
// checks what clients see. `make soak` runs TestSoak for SOAK_TIME (default 10m);
// `make test` runs it for 45s. See TestSoak.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cachee "github.com/cachee/cachee/sdk/go"
)

const (
	soakMemory    = 64 << 20
	keysPerWorker = 150
	gorKeys       = 200 // keys GetOrLoad reads through
	maxLarge      = 512 << 10
)

// soakTime is SOAK_TIME, or 45s: the short version `make test` runs.
func soakTime(t *testing.T) time.Duration {
	if s := os.Getenv("SOAK_TIME"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Second {
			t.Fatalf("SOAK_TIME=%q: want a duration of at least 10s", s)
		}
		return d
	}
	return 45 * time.Second
}

// run is one soak: its clients, its model of every key, and what it counted.
type run struct {
	t      *testing.T
	sc     *sidecar
	sdk    *cachee.Client
	resp   *redis.Client
	gen    atomic.Uint64 // see model_test.go
	l2     *redisServer  // nil without L2
	stop   chan struct{}
	wg     sync.WaitGroup
	killed atomic.Int64
	l2Down atomic.Int64

	mu         sync.Mutex
	ops        map[string]int64
	errs       map[string]int64
	violations []string
	vcount     map[string]int64
	lostOnKill int64
}

func (r *run) count(op string) {
	r.mu.Lock()
	r.ops[op]++
	r.mu.Unlock()
}

func (r *run) failed(kind string) {
	r.mu.Lock()
	r.errs[kind]++
	r.mu.Unlock()
}

func (r *run) violate(kind, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vcount[kind]++
	if len(r.violations) < 50 {
		r.violations = append(r.violations, kind+": "+detail)
	}
}

// TestSoak: several workers write, read and delete keys of their own through the Go
// SDK (shared memory and gRPC) and RESP (go-redis on the socket), with values of
// mixed sizes that check themselves, and read keys through GetOrLoad; meanwhile the
// sidecar runs undisturbed for the first 40% of the time (to see that its memory,
// goroutines and descriptors stay flat), then is SIGKILLed and restarted on the same
// segment directory every few seconds. When cachee has --l2, an L2 redis-server is
// also stopped (losing its data) and started again. It fails on any value that does
// not check, is older than an acknowledged write, comes back after a delete or its
// expiry, or is missing after a write acknowledged in the same incarnation; on any
// GetOrLoad error; on unexpected error kinds; and on memory, goroutines or
// descriptors that grow.
func TestSoak(t *testing.T) {
	d := soakTime(t)
	bin := buildCachee(t)
	args := []string{fmt.Sprintf("--max-memory=%d", soakMemory), "--eviction=noeviction"}
	withL2 := supportsFlag(t, bin, "l2")
	var l2 *redisServer
	if withL2 {
		l2 = startRedis(t)
		args = append(args, "--l2=redis://"+l2.addr())
	}
	sc := newSidecar(t, bin, args...)

	baseG, baseFDs := runtime.NumGoroutine(), countFDs(t)
	r := &run{t: t, sc: sc, l2: l2, stop: make(chan struct{}),
		ops: map[string]int64{}, errs: map[string]int64{}, vcount: map[string]int64{}}
	r.gen.Store(2)
	sdk, err := cachee.Dial(context.Background(), cachee.WithTarget("unix://"+sc.sock), cachee.WithShmDir(sc.shm),
		cachee.WithTimeout(10*time.Second), cachee.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	r.sdk = sdk
	r.resp = redis.NewClient(&redis.Options{Network: "unix", Addr: sc.sock, PoolSize: 16, MaxRetries: 2,
		DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})

	start := time.Now()
	steadyEnd := start.Add(d * 2 / 5)
	end := start.Add(d)
	const workers = 6
	for w := range workers {
		r.wg.Go(func() { r.worker(w) })
	}
	for g := range 2 {
		r.wg.Go(func() { r.loader(g) })
	}
	var sidecarSamples, selfSamples []procSample
	var sampleMu sync.Mutex
	r.wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			gen := r.gen.Load()
			p, err := sc.sample()
			if err != nil || gen%2 != 0 || r.gen.Load() != gen {
				continue // between incarnations
			}
			self, _ := sampleProc(os.Getpid())
			self.goroutines = runtime.NumGoroutine()
			sampleMu.Lock()
			sidecarSamples = append(sidecarSamples, p)
			selfSamples = append(selfSamples, self)
			sampleMu.Unlock()
		}
	})
	var faults sync.WaitGroup
	faults.Go(func() { r.killLoop(steadyEnd, end) })
	if l2 != nil {
		faults.Go(func() { r.l2Loop(end) })
	}
	time.Sleep(time.Until(end))
	close(r.stop)
	faults.Wait()
	r.wg.Wait()

	// The load generator lets go of everything it held.
	r.resp.Close()
	sdk.Close()
	var leakG, leakFDs int
	for range 100 {
		runtime.GC()
		leakG, leakFDs = runtime.NumGoroutine()-baseG, countFDs(t)-baseFDs
		if leakG <= 5 && leakFDs <= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	var sum strings.Builder
	fmt.Fprintf(&sum, "\nsoak summary: %v, --max-memory=%s, --eviction=noeviction, %d workers + 2 GetOrLoad readers\n",
		d.Round(time.Second), mib(soakMemory), workers)
	var total int64
	names := sortedKeys(r.ops)
	for _, k := range names {
		total += r.ops[k]
	}
	fmt.Fprintf(&sum, "operations: %d (", total)
	for i, k := range names {
		if i > 0 {
			sum.WriteString(", ")
		}
		fmt.Fprintf(&sum, "%s %d", k, r.ops[k])
	}
	sum.WriteString(")\n")
	fmt.Fprintf(&sum, "faults injected: sidecar SIGKILL + warm restart: %d (from %v on)\n", r.killed.Load(), steadyEnd.Sub(start).Round(time.Second))
	if l2 != nil {
		fmt.Fprintf(&sum, "faults injected: L2 redis-server killed (losing its data) and restarted: %d\n", r.l2Down.Load())
	} else {
		sum.WriteString("faults injected: L2 stop/start: SKIPPED: this cachee has no --l2 flag (cachee --help); the soak starts redis-server and enables this fault by itself once it has\n")
	}
	fmt.Fprintf(&sum, "keys lost to a SIGKILL (allowed: the cache is not durable): %d\n", r.lostOnKill)
	sum.WriteString("errors by kind:")
	if len(r.errs) == 0 {
		sum.WriteString(" none")
	}
	for _, k := range sortedKeys(r.errs) {
		fmt.Fprintf(&sum, "\n  %-48s %d", k, r.errs[k])
	}
	sum.WriteString("\nviolations:")
	if len(r.vcount) == 0 {
		sum.WriteString(" none")
	}
	for _, k := range sortedKeys(r.vcount) {
		fmt.Fprintf(&sum, "\n  %-48s %d", k, r.vcount[k])
	}
	sum.WriteString("\n")

	// Memory: every sample within the promise, and the high-water mark too (it
	// counts the segment pages the process mapped, at most all of them).
	bound := int64(soakMemory)*6/5 + 32<<20
	var peak, peakHWM procSample
	for _, p := range sidecarSamples {
		if p.resident() > peak.resident() {
			peak = p
		}
		if p.hwm > peakHWM.hwm {
			peakHWM = p
		}
	}
	fmt.Fprintf(&sum, "sidecar memory: peak resident %s (anon %s + file %s + segment %s); VmHWM peak %s; promise 1.2 x max-memory + 32 MiB = %s\n",
		mib(peak.resident()), mib(peak.anon), mib(peak.file), mib(max(peak.segmentBytes, peak.shmem)), mib(peakHWM.hwm), mib(bound))
	var steady []procSample
	for _, p := range sidecarSamples {
		if p.at.After(start.Add(d*2/5*3/10)) && p.at.Before(steadyEnd) {
			steady = append(steady, p)
		}
	}
	flat := func(what string, samples []procSample, f func(procSample) int64, unit func(int64) string, slackPct, slackAbs int64) {
		if len(samples) < 6 {
			fmt.Fprintf(&sum, "%s: too few samples (%d)\n", what, len(samples))
			return
		}
		n := len(samples) / 3
		first, last := maxOf(samples[:n], f), maxOf(samples[len(samples)-n:], f)
		ok := last <= first+first*slackPct/100+slackAbs
		fmt.Fprintf(&sum, "%s: first third max %s, last third max %s (allowed +%d%% +%s)", what, unit(first), unit(last), slackPct, unit(slackAbs))
		if !ok {
			sum.WriteString("  GREW")
			r.violate("not flat", fmt.Sprintf("%s from %s to %s", what, unit(first), unit(last)))
		}
		sum.WriteString("\n")
	}
	num := func(n int64) string { return fmt.Sprint(n) }
	flat("sidecar RSS (anon+file), undisturbed", steady, func(p procSample) int64 { return p.anon + p.file }, mib, 10, 8<<20)
	flat("sidecar goroutines, undisturbed", steady, func(p procSample) int64 { return int64(p.goroutines) }, num, 20, 10)
	flat("sidecar file descriptors, undisturbed", steady, func(p procSample) int64 { return int64(p.fds) }, num, 0, 10)
	flat("load generator goroutines", selfSamples, func(p procSample) int64 { return int64(p.goroutines) }, num, 20, 20)
	flat("load generator file descriptors", selfSamples, func(p procSample) int64 { return int64(p.fds) }, num, 0, 10)
	flat("load generator RSS", selfSamples, func(p procSample) int64 { return p.rss }, mib, 25, 32<<20)
	fmt.Fprintf(&sum, "load generator after closing its clients: %+d goroutines, %+d file descriptors against before the load\n", leakG, leakFDs)
	fmt.Print(sum.String())

	if peak.resident() > bound || peakHWM.hwm > bound {
		t.Errorf("sidecar memory over the promise: resident %s, VmHWM %s, bound %s", mib(peak.resident()), mib(peakHWM.hwm), mib(bound))
	}
	if leakG > 5 || leakFDs > 2 {
		t.Errorf("the load generator kept %d goroutines and %d descriptors after closing its clients", leakG, leakFDs)
	}
	if r.killed.Load() == 0 {
		t.Error("no fault was injected")
	}
	for k := range r.errs {
		if !expectedError(k) {
			t.Errorf("unexpected error kind %q (%d)", k, r.errs[k])
		}
	}
	if len(r.violations) > 0 {
		t.Errorf("%d violations, the first ones:\n  %s", len(r.violations), strings.Join(r.violations, "\n  "))
	}
}

// killLoop kills and restarts the sidecar every 2 to 6 seconds from steadyEnd on.
func (r *run) killLoop(steadyEnd, end time.Time) {
	time.Sleep(time.Until(steadyEnd))
	for time.Now().Before(end.Add(-3 * time.Second)) {
		r.gen.Add(1) // odd: dying
		r.sc.kill()
		r.killed.Add(1)
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		if err := r.sc.start(); err != nil {
			r.violate("warm restart failed", err.Error())
			return
		}
		r.gen.Add(1) // even: a new incarnation serves
		select {
		case <-r.stop:
			return
		case <-time.After(2*time.Second + time.Duration(rand.IntN(4000))*time.Millisecond):
		}
	}
}

// l2Loop kills and restarts L2 every 3 to 8 seconds. L2 keeps nothing across that, so
// it counts as a new incarnation for what may be lost (see model_test.go).
func (r *run) l2Loop(end time.Time) {
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(3*time.Second + time.Duration(rand.IntN(5000))*time.Millisecond):
		}
		if time.Now().After(end.Add(-3 * time.Second)) {
			return
		}
		r.gen.Add(1)
		r.l2.stop()
		r.l2Down.Add(1)
		time.Sleep(100*time.Millisecond + time.Duration(rand.IntN(900))*time.Millisecond)
		if err := r.l2.start(); err != nil {
			r.violate("L2 restart failed", err.Error())
			return
		}
		r.gen.Add(1)
	}
}

// worker owns keysPerWorker keys and writes, deletes and reads them, each operation
// over a protocol picked at random, and checks every read against its model.
func (r *run) worker(w int) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	keys := make([]string, keysPerWorker)
	models := make([]keyModel, keysPerWorker)
	for i := range keys {
		keys[i] = fmt.Sprintf("soak:w%d:k%d", w, i)
		models[i].next = 1
	}
	ctx := context.Background()
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		i := rng.IntN(len(keys))
		key, m := keys[i], &models[i]
		viaRESP := rng.IntN(2) == 0
		gen0, t0 := r.gen.Load(), time.Now()
		var err error
		switch p := rng.IntN(100); {
		case p < 35: // write
			version := m.next
			m.next++
			v := makeValue(key, version, valueSize(key, version, maxLarge))
			var ttl time.Duration
			if rng.IntN(5) == 0 {
				ttl = time.Second + time.Duration(rng.IntN(2000))*time.Millisecond
			}
			if viaRESP {
				err = r.resp.Set(ctx, key, v, ttl).Err()
				r.count("resp set")
			} else {
				var opts []cachee.SetOption
				if ttl > 0 {
					opts = append(opts, cachee.WithTTL(ttl))
				}
				_, err = r.sdk.Set(ctx, key, v, opts...)
				r.count("sdk set")
			}
			t1 := time.Now()
			s := state{version: version, present: true}
			if ttl > 0 {
				s.expiresMin, s.expiresMax = t0.Add(ttl), t1.Add(ttl)
			}
			m.write(s, err == nil, gen0, r.gen.Load())
		case p < 45: // delete
			version := m.next
			m.next++
			if viaRESP {
				err = r.resp.Del(ctx, key).Err()
				r.count("resp del")
			} else {
				_, err = r.sdk.Delete(ctx, key)
				r.count("sdk delete")
			}
			m.write(state{version: version}, err == nil, gen0, r.gen.Load())
		default: // read
			var v []byte
			var found bool
			if viaRESP {
				v, err = r.resp.Get(ctx, key).Bytes()
				found = err == nil
				if errors.Is(err, redis.Nil) {
					err = nil
				}
				r.count("resp get")
			} else {
				v, found, err = r.sdk.Get(ctx, key)
				r.count("sdk get")
			}
			t1, gen1 := time.Now(), r.gen.Load()
			if err != nil {
				break
			}
			var version uint64
			if found {
				version, err = checkValue(key, v)
				if err != nil {
					r.violate(vTorn, err.Error())
					err = nil
					break
				}
			}
			kind, detail, lost := m.read(found, version, t0, t1, gen0, gen1)
			if kind != "" {
				via := "sdk"
				if viaRESP {
					via = "resp"
				}
				r.violate(kind, fmt.Sprintf("%s via %s: %s", key, via, detail))
			}
			if lost {
				r.mu.Lock()
				r.lostOnKill++
				r.mu.Unlock()
			}
		}
		if err != nil {
			r.failed(errorKind(viaRESP, err))
			time.Sleep(5 * time.Millisecond) // the sidecar may be down: do not spin
		}
	}
}

// loader reads shared keys through GetOrLoad, whose loader gives version 0 of the
// key: it must never fail, whatever happens to the sidecar, and what it returns must
// check.
func (r *run) loader(g int) {
	rng := rand.New(rand.NewPCG(uint64(g)+100, uint64(time.Now().UnixNano())))
	ctx := context.Background()
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		key := fmt.Sprintf("soak:gol:%d", rng.IntN(gorKeys))
		v, err := r.sdk.GetOrLoad(ctx, key, 2*time.Second, func(context.Context) ([]byte, error) {
			r.count("getorload load")
			return makeValue(key, 0, valueSize(key, 0, 64<<10)), nil
		})
		r.count("sdk getorload")
		if err != nil {
			r.violate("GetOrLoad returned an error", err.Error())
			continue
		}
		if ver, err := checkValue(key, v); err != nil || ver != 0 {
			r.violate(vTorn, fmt.Sprintf("GetOrLoad %s: version %d, %v", key, ver, err))
		}
		// Hits from shared memory take well under a microsecond: without a pause
		// these two would take the CPU from everything else.
		time.Sleep(200 * time.Microsecond)
	}
}

// errorKind names an error for the summary.
func errorKind(viaRESP bool, err error) string {
	if viaRESP {
		var ne net.Error
		switch {
		case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET),
			errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EPIPE),
			strings.Contains(err.Error(), "use of closed network connection"):
			return "resp: connection lost or refused"
		}
		msg := err.Error()
		if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
			msg = msg[:i]
		}
		// One kind per cause, not per connection: "read tcp 127.0.0.1:34176->...".
		return "resp: " + hostPort.ReplaceAllString(msg, "ADDR")
	}
	var e *cachee.Error
	if errors.As(err, &e) {
		if e.Reason != "" {
			return "sdk: " + e.Code.String() + " " + e.Reason
		}
		return "sdk: " + e.Code.String()
	}
	return "sdk: " + err.Error()
}

var hostPort = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// expectedError reports the error kinds a sidecar that is killed, restarted and short
// of client memory gives; any other is a failure.
func expectedError(kind string) bool {
	for _, ok := range []string{
		"resp: connection lost or refused",
		"resp: ERR client memory limit reached",
		"resp: OOM ", // noeviction with a full store
		"resp: ERR server is shutting down",
		"resp: ERR L2", // L2 down, when there is one
		"sdk: Unavailable",
		"sdk: ResourceExhausted OUT_OF_MEMORY",
		"sdk: DeadlineExceeded",
	} {
		if strings.HasPrefix(kind, ok) {
			return true
		}
	}
	return false
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func maxOf(samples []procSample, f func(procSample) int64) int64 {
	var m int64
	for _, p := range samples {
		m = max(m, f(p))
	}
	return m
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.Clip(keys)
}
