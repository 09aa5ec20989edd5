package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// binary is the cachee binary under test, built once by TestMain (with -race when the
// tests run with it, so the server's races surface too).
var binary string

// raceEnabled is set by race_test.go when the tests run with -race.
var raceEnabled bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cachee-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cachee")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/cachee/cachee/cmd/cachee")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cachee:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startTimeout bounds how long a server may take to come up; generous for -race.
const startTimeout = 60 * time.Second

// proc is a running cachee server.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	sock     string
	tcp      string // host:port of gRPC/RESP
	http     string // host:port of /health, /ready
	metrics  string // host:port of /metrics
	logs     *lockedBuffer
	exited   chan struct{}
	exitCode int
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

// socketDir returns a short temporary directory: socket paths are limited to 107
// bytes, which t.TempDir's long names can exceed.
func socketDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "cachee")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// start runs cachee with test defaults (free ports, a private 8 MiB store, JSON logs,
// a socket in a fresh directory) overridden by args, and waits until it serves.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := startProc(t, procOptions{args: args})
	if err := p.waitServing(); err != nil {
		t.Fatalf("cachee did not start: %v\n%s", err, p.logs)
	}
	return p
}

type procOptions struct {
	sock    string   // default: in a fresh directory
	args    []string // after the test defaults, so they override them
	env     []string // added to a clean environment
	noFlags bool     // pass no test defaults as flags (env sets them instead)
}

func startProc(t *testing.T, o procOptions) *proc {
	t.Helper()
	if o.sock == "" {
		o.sock = filepath.Join(socketDir(t), "run", "cachee.sock")
	}
	var args []string
	if !o.noFlags {
		args = []string{
			"--socket=" + o.sock, "--port=0", "--http-port=0", "--metrics-port=0",
			"--max-memory=8mb", "--shm=", "--log-format=json", "--grace-period=20s",
		}
	}
	p := &proc{t: t, sock: o.sock, logs: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, append(args, o.args...)...)
	p.cmd.Env = cleanEnv(o.env...)
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("cachee logs:\n%s", p.logs)
		}
	})
	return p
}

// cleanEnv is the test's environment without CACHEE_ variables, so that a developer's
// settings cannot change what the tests see. A race-enabled binary would otherwise
// sleep a second at every exit.
func cleanEnv(extra ...string) []string {
	env := []string{"GORACE=atexit_sleep_ms=0 " + os.Getenv("GORACE")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CACHEE_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// waitServing waits for the "serving" log line and takes the bound addresses from it.
func (p *proc) waitServing() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("exited with code %d", p.exitCode)
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		for sc.Scan() {
			var line struct {
				Msg, Socket, Addr, HTTP, Metrics string
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				p.tcp = loopback(line.Addr)
				p.http = loopback(line.HTTP)
				p.metrics = loopback(line.Metrics)
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no serving line within %v", startTimeout)
}

// loopback turns a listen address such as [::]:1234 into one to dial on this machine.
func loopback(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("127.0.0.1", port)
}

// signal sends sig to the server.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.exitCode
	case <-time.After(startTimeout):
		p.t.Fatalf("cachee did not exit\n%s", p.logs)
		return -1
	}
}

// conn dials the server's socket with the generated client's transport.
func (p *proc) conn() *grpc.ClientConn {
	p.t.Helper()
	return dial(p.t, "unix://"+p.sock)
}

func dial(t *testing.T, target string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func (p *proc) client() cacheev1.CacheServiceClient {
	return cacheev1.NewCacheServiceClient(p.conn())
}

// ctx is a context bounded so that a hung call fails the test instead of hanging it.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// run runs the cachee binary to completion with env added to a clean environment.
func run(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("cachee %v did not finish", args)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}
