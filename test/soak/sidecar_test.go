package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildCachee builds the binary without -race, whatever the tests run with: its
// memory is what is measured, and the race detector multiplies it.
func buildCachee(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "cachee")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/cachee/cachee/cmd/cachee")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building cachee: %v", err)
	}
	return bin
}

// supportsFlag reports whether cachee --help lists flag.
func supportsFlag(t testing.TB, bin, flag string) bool {
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("cachee --help: %v\n%s", err, out)
	}
	return bytes.Contains(out, []byte("--"+flag+" "))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sidecar is one cachee whose process may be killed and started again with the same
// socket and segment directory (a warm restart).
type sidecar struct {
	bin, sock, shm string
	args           []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logs    *lockedBuffer
	metrics string // host:port of /metrics
	allLogs lockedBuffer
}

func newSidecar(t testing.TB, bin string, args ...string) *sidecar {
	t.Helper()
	dir, err := os.MkdirTemp("", "cachee-soak") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	shmRoot := "/dev/shm"
	if _, err := os.Stat(shmRoot); err != nil {
		shmRoot = dir // no tmpfs: the segment lives on whatever holds dir
	}
	shm, err := os.MkdirTemp(shmRoot, "cachee-soak")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	s := &sidecar{bin: bin, sock: filepath.Join(dir, "run", "cachee.sock"), shm: filepath.Join(shm, "seg"), args: args}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("cachee logs (all incarnations):\n%s", s.allLogs.String())
		}
	})
	return s
}

func (s *sidecar) start() error {
	args := append([]string{"--socket=" + s.sock, "--shm=" + s.shm, "--port=0", "--http-port=0", "--metrics-port=0",
		"--log-format=json", "--grace-period=1s"}, s.args...)
	// Flags for every sidecar of a run, e.g. to hold another gRPC path to the same bounds.
	args = append(args, strings.Fields(os.Getenv("CACHEE_TEST_SIDECAR_ARGS"))...)
	cmd := exec.Command(s.bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CACHEE_") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	logs := &lockedBuffer{}
	cmd.Stdout = io.MultiWriter(logs, &s.allLogs)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("cachee exited while starting:\n%s", logs)
		default:
		}
		if m := servingMetrics(logs.String()); m != "" {
			s.mu.Lock()
			s.cmd, s.exited, s.logs, s.metrics = cmd, exited, logs, m
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("cachee did not serve within a minute:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// servingMetrics finds the "serving" log line and returns the metrics address.
func servingMetrics(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Msg, Metrics string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
			_, port, _ := net.SplitHostPort(line.Metrics)
			return net.JoinHostPort("127.0.0.1", port)
		}
	}
	return ""
}

// kill sends SIGKILL, as the OOM killer would, and waits for the process to go.
func (s *sidecar) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (s *sidecar) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

func (s *sidecar) segment() string { return filepath.Join(s.shm, "cachee.seg") }

// procSample is what /proc says of a process at one moment.
type procSample struct {
	at                          time.Time
	rss, hwm, anon, file, shmem int64 // bytes
	threads, fds, goroutines    int
	segmentBytes                int64 // the segment file's allocated pages (tmpfs)
}

// resident is what the memory promise counts: the process's own pages (anonymous and
// file-backed, the heap and the binary) and every page of the segment, mapped by the
// process or not.
func (p procSample) resident() int64 { return p.anon + p.file + max(p.segmentBytes, p.shmem) }

func sampleProc(pid int) (procSample, error) {
	p := procSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch name {
		case "VmRSS":
			p.rss = n << 10
		case "VmHWM":
			p.hwm = n << 10
		case "RssAnon":
			p.anon = n << 10
		case "RssFile":
			p.file = n << 10
		case "RssShmem":
			p.shmem = n << 10
		case "Threads":
			p.threads = int(n)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return p, err
	}
	p.fds = len(fds)
	return p, nil
}

// sample reads the sidecar's process, its segment and (from /metrics) its goroutines.
func (s *sidecar) sample() (procSample, error) {
	p, err := sampleProc(s.pid())
	if err != nil {
		return p, err
	}
	var st syscall.Stat_t
	if syscall.Stat(s.segment(), &st) == nil {
		p.segmentBytes = st.Blocks * 512
	}
	s.mu.Lock()
	addr := s.metrics
	s.mu.Unlock()
	if g, err := metricValue(addr, "go_goroutines"); err == nil {
		p.goroutines = int(g)
	}
	return p, nil
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

func metricValue(addr, name string) (float64, error) {
	resp, err := metricsClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s", name)
}

// redisServer is a redis-server for the L2 tier, stopped and started by the faults.
type redisServer struct {
	bin, dir string
	port     int
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
}

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("the soak needs redis-server for L2 (Debian: apt-get install redis-server): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &redisServer{bin: bin, dir: t.TempDir(), port: port}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *redisServer) start() error {
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", "")
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	for range 200 {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redis-server did not start on %s", r.addr())
}

// stop kills redis-server; it keeps nothing (no persistence), as an L2 that lost its
// data would.
func (r *redisServer) stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
}
