package cachee_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
)

// The tests run against the real cachee binary, built once per run by TestMain (with
// -race when the tests have it, so that the sidecar's races surface too). TestMain also
// starts one shared sidecar for the examples and the tests that do not kill theirs,
// and points the environment at it (CACHEE_SOCKET, CACHEE_SHM), as a pod's manifest
// would point an application at its sidecar.

var (
	cacheeBin   string
	raceEnabled bool // set by race_test.go
	shared      *sidecar
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cachee-sdk")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cacheeBin = filepath.Join(dir, "cachee")
	args := []string{"build", "-o", cacheeBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/cachee/cachee/cmd/cachee")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cachee:", err)
		return 1
	}
	shared, err = launch(filepath.Join(dir, "run", "cachee.sock"), filepath.Join(dir, "shm"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the shared sidecar:", err)
		return 1
	}
	defer shared.kill()
	os.Setenv("CACHEE_SOCKET", shared.sock)
	os.Setenv("CACHEE_SHM", shared.shm)
	os.Unsetenv("CACHE_HOST")
	os.Unsetenv("CACHE_PORT")
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "shared sidecar's logs:\n%s\n", shared.logs)
	}
	return code
}

// startTimeout bounds how long a sidecar may take to come up; generous for -race.
const startTimeout = 60 * time.Second

// sidecar is a running cachee process.
type sidecar struct {
	sock, shm string
	args      []string
	tcp       string // host:port serving gRPC and RESP
	resp      bool   // whether this build serves RESP
	cmd       *exec.Cmd
	logs      *lockedBuffer
	exited    chan struct{}
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

// launch starts cachee on sock with its segment in shm ("" for private memory), free
// ports and a small store, and waits until it serves. The store is 16mb, the least
// --max-memory at which gRPC is promised to serve messages of the largest size: at
// 8mb, the few MiB of garbage a message of that size leaves took the Go runtime past
// its memory limit, and the sidecar refused large calls OVERLOADED until it was back.
func launch(sock, shm string, extra ...string) (*sidecar, error) {
	s := &sidecar{sock: sock, shm: shm, args: extra}
	return s, s.start()
}

// sidecarMemory is launch's --max-memory.
const sidecarMemory = "16mb"

func (s *sidecar) start() error {
	args := append([]string{
		"--socket=" + s.sock, "--shm=" + s.shm, "--port=0", "--http-port=0", "--metrics-port=0",
		"--max-memory=" + sidecarMemory, "--log-format=json", "--grace-period=5s",
	}, s.args...)
	// make test runs this package a second time with --grpc-fast-path=false, so that
	// the SDK is held to the same answers from grpc-go alone as from the fast path.
	args = append(args, strings.Fields(os.Getenv("CACHEE_TEST_SIDECAR_ARGS"))...)
	s.logs = &lockedBuffer{}
	s.exited = make(chan struct{})
	s.cmd = exec.Command(cacheeBin, args...)
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := s.exited
	go func() {
		s.cmd.Wait()
		close(exited)
	}()
	if err := s.waitServing(); err != nil {
		s.kill()
		return fmt.Errorf("%w\n%s", err, s.logs)
	}
	return nil
}

// cleanEnv is the environment without CACHEE_ variables (ours point the SDK at the
// shared sidecar; a developer's would change what the tests see). A race-enabled
// binary would otherwise sleep a second at exit.
func cleanEnv() []string {
	env := []string{"GORACE=atexit_sleep_ms=0 " + os.Getenv("GORACE")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CACHEE_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return env
}

// waitServing waits for the "serving" log line and takes the TCP address from it.
func (s *sidecar) waitServing() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("cachee exited while starting")
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
		for sc.Scan() {
			var line struct {
				Msg, Addr string
				Resp      bool
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				_, port, _ := net.SplitHostPort(line.Addr)
				s.tcp = net.JoinHostPort("127.0.0.1", port)
				s.resp = line.Resp
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no serving line within %v", startTimeout)
}

// kill ends the sidecar with SIGKILL, as the OOM killer would, and waits for it.
func (s *sidecar) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// startSidecar starts a sidecar of the test's own, killed when the test ends. shm
// makes it keep its segment in a fresh directory.
func startSidecar(t testing.TB, shm bool, extra ...string) *sidecar {
	t.Helper()
	dir, err := os.MkdirTemp("", "cachee") // short: socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	shmDir := ""
	if shm {
		shmDir = filepath.Join(dir, "shm")
	}
	s, err := launch(filepath.Join(dir, "run", "cachee.sock"), shmDir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("cachee logs:\n%s", s.logs)
		}
	})
	return s
}

// restart starts the sidecar again on the same socket and segment directory: a warm
// restart.
func (s *sidecar) restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// dial connects a Client to s, reading its segment unless opts say otherwise.
func dial(t testing.TB, s *sidecar, opts ...cachee.Option) *cachee.Client {
	t.Helper()
	base := []cachee.Option{cachee.WithTarget("unix://" + s.sock), cachee.WithShmDir(s.shm)}
	c, err := cachee.Dial(ctx(t), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ctx is bounded so that a hung call fails the test instead of hanging it.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond until it holds, failing the test after a generous bound. It
// waits for background work (a remap, a flush); it asserts nothing about time.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitShm waits until c reads shared memory.
func waitShm(t testing.TB, c *cachee.Client) {
	t.Helper()
	eventually(t, "shared-memory reads", func() bool { return c.Counters().ShmActive })
}
