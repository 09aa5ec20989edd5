package main_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors a new user meets first say what to do, naming the flag to change.

// TestListenErrorsNameTheFlag: a port in use names the flag that moves it; a socket
// another server answers on, or a file that is not a socket, names --socket and
// prints the path once.
func TestListenErrorsNameTheFlag(t *testing.T) {
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	base := []string{"--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=1mb", "--shm="}
	for _, flag := range []string{"--port", "--http-port", "--metrics-port"} {
		t.Run(flag, func(t *testing.T) {
			sock := filepath.Join(socketDir(t), "cachee.sock")
			args := append(append([]string{"--socket=" + sock}, base...), flag+"="+port)
			_, stderr, code := run(t, nil, "", args...)
			if code != 1 || !strings.Contains(stderr, "address already in use") ||
				!strings.Contains(stderr, "choose another with "+flag+" ") {
				t.Fatalf("exit %d, stderr %q; want exit 1 naming %s", code, stderr, flag)
			}
		})
	}

	t.Run("another server", func(t *testing.T) {
		p := start(t)
		_, stderr, code := run(t, nil, "", append([]string{"--socket=" + p.sock}, base...)...)
		if code != 1 || strings.Count(stderr, p.sock) != 1 || !strings.Contains(stderr, "another server is listening") ||
			!strings.Contains(stderr, "another --socket") {
			t.Fatalf("exit %d, stderr %q; want the path once and --socket", code, stderr)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		sock := filepath.Join(socketDir(t), "cachee.sock")
		if err := os.WriteFile(sock, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := run(t, nil, "", append([]string{"--socket=" + sock}, base...)...)
		if code != 1 || strings.Count(stderr, sock) != 1 || !strings.Contains(stderr, "give --socket another path") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestDefaultSocketNotWritable: a user who cannot create the default socket is told
// to give --socket a path of their own, or to use make run.
func TestDefaultSocketNotWritable(t *testing.T) {
	args := []string{"--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=1mb", "--shm="}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		// As another user, from a copy of the binary that user may execute.
		cmd = exec.Command(executableCopy(t), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 40001, Gid: 40001, Groups: []uint32{}}}
	} else {
		if f, err := os.CreateTemp(filepath.Dir(filepath.Dir("/var/run/cachee/cachee.sock")), ".probe"); err == nil {
			f.Close()
			os.Remove(f.Name())
			t.Skip("this user can write /var/run: the default socket is not refused")
		}
		cmd = exec.Command(binary, args...)
	}
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("%v, output %q; want exit 1", err, out)
	}
	for _, want := range []string{"/var/run/cachee/cachee.sock", "permission denied", "give --socket a path it can write", "make run"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}

// executableCopy copies the binary under test into a directory any user may enter.
func executableCopy(t *testing.T) string {
	t.Helper()
	dir := socketDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cachee")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestRESPOversizedValue: a value over --max-value-size, from redis-cli and redis-py,
// over the socket and TCP, gets an error that names the flag, not a reset (redis-cli
// used to die of SIGPIPE, still writing the value into a closed socket); the server
// goes on serving.
func TestRESPOversizedValue(t *testing.T) {
	p := start(t) // --max-memory=8mb: values up to 1 MiB
	const want = "invalid bulk length 2097152: over the limit of 1048576 bytes (--max-value-size)"
	value := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(value, bytes.Repeat([]byte("v"), 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.tcp)
	targets := map[string][]string{"socket": {"-s", p.sock}, "tcp": {"-h", host, "-p", port}}

	for name, target := range targets {
		t.Run("redis-cli/"+name, func(t *testing.T) {
			cli := tool(t, "CACHEE_REDIS_CLI", "redis-cli") // make deps installs it (Debian: redis-tools)
			f, err := os.Open(value)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd := exec.Command(cli, append(target, "-x", "SET", "big")...)
			cmd.Stdin = f
			out, _ := cmd.CombinedOutput()
			if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
				t.Fatalf("redis-cli died of %v; output %q", ws.Signal(), out)
			}
			if !strings.Contains(string(out), want) {
				t.Fatalf("redis-cli: %q, want %q", out, want)
			}
		})
	}
	py := redisPy(t)
	for name, kw := range map[string]string{"socket": "unix_socket_path=" + strconv.Quote(p.sock), "tcp": "host=" + strconv.Quote(host) + ", port=" + port} {
		t.Run("redis-py/"+name, func(t *testing.T) {
			script := "import redis\nr = redis.Redis(" + kw + ", socket_timeout=30)\n" +
				"try:\n    r.set('big', b'v' * (2 << 20))\n    print('stored')\n" +
				"except redis.ResponseError as e:\n    print('ResponseError:', e)\n"
			out, err := exec.Command(py, "-c", script).CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "ResponseError: ") || !strings.Contains(string(out), want) {
				t.Fatalf("redis-py: %v, %q; want a ResponseError naming --max-value-size", err, out)
			}
		})
	}
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: p.sock})
	defer c.Close()
	if err := c.Set(ctx(t), "small", "v", time.Minute).Err(); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
}

func missingTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CACHEE_REQUIRE_TOOLS") != "" {
		t.Fatal(why + " (CACHEE_REQUIRE_TOOLS is set)")
	}
	t.Skip(why)
}

// redisPy is a Python with redis-py: $CACHEE_REDIS_PY (make test sets it), else the
// one `make deps` installs under .tmp/redispy.
func redisPy(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CACHEE_REDIS_PY"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", ".tmp", "redispy", "bin", "python"))
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	missingTool(t, "no Python with redis-py: run make deps, or set CACHEE_REDIS_PY")
	return ""
}

// TestVersion: `cachee version` and `cachee --version` print the version, the commit
// and the Go release; a build without release flags says so rather than inventing one.
// (The release's own values are checked on the release binary, in deploy/.)
func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^cachee (devel|v?\d+\.\d+\.\d+\S*)\ncommit ([0-9a-f]{7,40}(-dirty)?|unknown)\n` +
		regexp.QuoteMeta(runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) + "\n$")
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, stderr, code := run(t, nil, "", args...)
		if code != 0 || stderr != "" || !want.MatchString(stdout) {
			t.Errorf("cachee %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}
