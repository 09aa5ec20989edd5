package resp_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// redisPyVersion is the redis-py the tests install when none is given.
const redisPyVersion = "8.1.0"

var (
	pyOnce    sync.Once
	pyPath    string
	pySkipWhy string
)

// redisPy returns a Python interpreter that can import redis: $CACHEE_REDIS_PY if set
// (CI points it at one it installed), else a virtualenv under the module's .tmp/,
// created on first use with redis-py from PyPI.
func redisPy(t *testing.T) string {
	t.Helper()
	pyOnce.Do(func() {
		if p := os.Getenv("CACHEE_REDIS_PY"); p != "" {
			pyPath = p
			return
		}
		py, err := exec.LookPath("python3")
		if err != nil {
			pySkipWhy = "python3 not found; install Python 3 or set CACHEE_REDIS_PY to a python with redis-py"
			return
		}
		root, err := moduleRoot()
		if err != nil {
			pySkipWhy = err.Error()
			return
		}
		venv := filepath.Join(root, ".tmp", "redispy-venv")
		bin := filepath.Join(venv, "bin", "python")
		check := exec.Command(bin, "-c", "import redis, sys; sys.exit(redis.__version__ != '"+redisPyVersion+"')")
		if check.Run() == nil {
			pyPath = bin
			return
		}
		if out, err := exec.Command(py, "-m", "venv", venv).CombinedOutput(); err != nil {
			pySkipWhy = "cannot create a virtualenv (python3 -m venv): " + err.Error() + ": " + string(out)
			return
		}
		if out, err := exec.Command(bin, "-m", "pip", "install", "-q", "redis=="+redisPyVersion).CombinedOutput(); err != nil {
			pySkipWhy = "cannot install redis-py from PyPI: " + err.Error() + ": " + string(out)
			return
		}
		pyPath = bin
	})
	if pyPath == "" {
		missing(t, pySkipWhy)
	}
	return pyPath
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

func TestRedisPy(t *testing.T) {
	py := redisPy(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, pass := range []string{"", "s3cret"} {
				e := startEnv(t, resp.Config{EventLoops: m.loops, RequirePass: pass}, store.Config{})
				host, port, _ := strings.Cut(e.tcp, ":")
				for _, target := range [][]string{{"tcp", host, port}, {"unix", e.unix}} {
					for _, proto := range []string{"2", "3"} {
						args := append([]string{"testdata/redispy_check.py"}, target...)
						args = append(args, proto)
						if pass != "" {
							args = append(args, pass)
						}
						out, err := exec.Command(py, args...).CombinedOutput()
						if err != nil {
							t.Errorf("redis-py %v: %v\n%s", args[1:], err, out)
						}
					}
				}
			}
		})
	}
}

// redisCLI runs redis-cli with args and stdin and returns what it printed.
func redisCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		missing(t, "redis-cli not installed (Debian: apt-get install redis-tools)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func TestRedisCLI(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		missing(t, "redis-cli not installed (Debian: apt-get install redis-tools)")
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			host, port, _ := strings.Cut(e.tcp, ":")
			for _, conn := range [][]string{{"-h", host, "-p", port}, {"-s", e.unix}} {
				cli := func(stdin string, args ...string) string {
					return redisCLI(t, stdin, append(append([]string{}, conn...), args...)...)
				}
				for _, tc := range []struct {
					stdin string
					args  []string
					want  string
				}{
					{"", []string{"PING"}, "PONG\n"},
					{"", []string{"SET", "greeting", "hello world"}, "OK\n"},
					{"", []string{"GET", "greeting"}, "hello world\n"},
					{"", []string{"--no-raw", "GET", "greeting"}, "\"hello world\"\n"},
					{"", []string{"--no-raw", "GET", "nothing"}, "(nil)\n"},
					{"", []string{"--no-raw", "INCR", "n"}, "(integer) 1\n"},
					{"", []string{"--no-raw", "MGET", "greeting", "nothing"}, "1) \"hello world\"\n2) (nil)\n"},
					{"", []string{"--no-raw", "FOO"}, "(error) ERR unknown command 'FOO', with args beginning with: \n"},
					{"", []string{"-3", "--no-raw", "HELLO", "3"}, ""},
					{"", []string{"-3", "--no-raw", "CONFIG", "GET", "save"}, "1# \"save\" => \"\"\n"},
					{"", []string{"-3", "--no-raw", "GET", "nothing"}, "(nil)\n"},
					{"SET a 1\nINCR a\nGET a\n", nil, "OK\n2\n2\n"},
					{"", []string{"--no-raw", "DBSIZE"}, "(integer) 3\n"},
					{"", []string{"--scan", "--pattern", "g*"}, "greeting\n"},
					{"", []string{"INFO", "keyspace"}, "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n"},
					{"", []string{"-x", "SET", "fromstdin"}, "OK\n"},
					{"", []string{"FLUSHALL"}, "OK\n"},
				} {
					got := cli(tc.stdin, tc.args...)
					if tc.want == "" {
						if !strings.Contains(got, "proto") {
							t.Errorf("redis-cli %v: %q", tc.args, got)
						}
						continue
					}
					if got != tc.want {
						t.Errorf("redis-cli %v (stdin %q): got %q want %q", tc.args, tc.stdin, got, tc.want)
					}
				}
				// --pipe mass insertion: raw protocol on stdin.
				var in strings.Builder
				for i := range 10000 {
					in.Write(encode("SET", "m:"+strconv.Itoa(i), strconv.Itoa(i)))
				}
				got := cli(in.String(), "--pipe")
				if !strings.Contains(got, "errors: 0, replies: 10000") {
					t.Errorf("redis-cli --pipe: %q", got)
				}
				if got := cli("", "DBSIZE"); got != "10000\n" {
					t.Errorf("dbsize after --pipe: %q", got)
				}
				cli("", "FLUSHALL")
			}
		})
	}
}
