package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

const testToken = "0123456789abcdef0123456789abcdef"

func TestLimitFlagsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bind without auth", nil, []string{"--bind=0.0.0.0"}, `refusing --bind "0.0.0.0": it is reachable beyond this host, and --auth-token (for gRPC) and --requirepass (for RESP, or --resp-compat=false) are not set`},
		{"bind all interfaces", nil, []string{"--bind="}, `refusing --bind ""`},
		{"bind without token", []string{"CACHEE_REQUIREPASS=pw"}, []string{"--bind=10.1.2.3"}, "--auth-token (for gRPC) is not set"},
		{"bind without requirepass", []string{"CACHEE_AUTH_TOKEN=" + testToken}, []string{"--bind=0.0.0.0"}, "--requirepass (for RESP, or --resp-compat=false) is not set"},
		{"short token", nil, []string{"--auth-token=secret"}, "6 characters is guessable"},
		{"token with a space", nil, []string{"--auth-token=0123456789 abcdef0123"}, "printable ASCII without spaces"},
		{"max clients", nil, []string{"--max-clients=0"}, "invalid --max-clients 0"},
		{"idle timeout", nil, []string{"--idle-timeout=-1s"}, "invalid --idle-timeout -1s"},
		{"key size zero", nil, []string{"--max-key-size=0"}, "invalid --max-key-size 0: must be at least 1 byte"},
		{"key size range", nil, []string{"--max-key-size=2mb"}, "max key size 2097152 out of range"},
		{"key size syntax", nil, []string{"--max-key-size=big"}, `invalid argument "big" for "--max-key-size"`},
		{"query buffer below a SET", nil, []string{"--max-query-buffer=64kb"}, "invalid --max-query-buffer 64kb: want 1115136"},
		{"output buffer below a GET", nil, []string{"--max-output-buffer=1mb"}, "invalid --max-output-buffer 1mb: want 1049600"},
		{"grpc message below a Set", nil, []string{"--grpc-max-msg-size=1mb"}, "invalid --grpc-max-msg-size 1mb: want 1118208"},
		{"client memory below a call", nil, []string{"--max-client-memory=1mb"}, "invalid --max-client-memory 1mb: want at least"},
		{"streams", nil, []string{"--grpc-max-concurrent-streams=-1"}, "invalid --grpc-max-concurrent-streams -1"},
		{"uids", nil, []string{"--allow-uids=root"}, `"root" is not a numeric id`},
		{"gids from env", []string{"CACHEE_ALLOW_GIDS=1,x"}, nil, "CACHEE_ALLOW_GIDS"},
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

// bearer sends an authorization header with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// TestBindBeyondLoopback: with a token and a password, cachee listens on every
// interface, and both protocols demand them there (and on the socket).
func TestBindBeyondLoopback(t *testing.T) {
	p := startProc(t, procOptions{args: []string{"--bind=0.0.0.0"},
		env: []string{"CACHEE_AUTH_TOKEN=" + testToken, "CACHEE_REQUIREPASS=resp-pw"}})
	if err := p.waitServing(); err != nil {
		t.Fatalf("%v\n%s", err, p.logs)
	}
	cx := ctx(t)
	for _, target := range []string{p.tcp, "unix://" + p.sock} {
		anon := cacheev1.NewCacheServiceClient(dial(t, target))
		_, err := anon.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")})
		wantError(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(bearer(testToken)))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		authed := cacheev1.NewCacheServiceClient(cc)
		if _, err := authed.Set(cx, &cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.Dial("tcp", p.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	for _, step := range []struct{ send, want string }{
		{"GET k\r\n", "-NOAUTH Authentication required.\r\n"},
		{"AUTH wrong\r\n", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{"AUTH resp-pw\r\n", "+OK\r\n"},
		{"GET k\r\n", "$1\r\n"},
	} {
		io.WriteString(c, step.send)
		if got, _ := r.ReadString('\n'); got != step.want {
			t.Fatalf("%q: got %q, want %q", step.send, got, step.want)
		}
	}
	// The port really listens beyond loopback.
	if !strings.Contains(p.logs.String(), `"addr":"[::]:`) { // Go reports 0.0.0.0 as [::]
		t.Fatalf("not bound to 0.0.0.0:\n%s", p.logs)
	}
}

func TestMaxClientsFlag(t *testing.T) {
	p := start(t, "--max-clients=2")
	var keep []net.Conn
	for i := range 3 {
		c, err := net.Dial("unix", p.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		keep = append(keep, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "PING\r\n")
		got, _ := bufio.NewReader(c).ReadString('\n')
		want := "+PONG\r\n"
		if i == 2 {
			want = "-ERR max number of clients reached\r\n"
		}
		if got != want {
			t.Fatalf("client %d: %q, want %q", i, got, want)
		}
	}
	// gRPC connections are counted on their own, to the same bound.
	cx := ctx(t)
	for i := range 3 {
		_, err := cacheev1.NewCacheServiceClient(dial(t, "unix://"+p.sock)).Stats(cx, &cacheev1.StatsRequest{})
		if i < 2 && err != nil {
			t.Fatalf("gRPC connection %d: %v", i, err)
		}
		if i == 2 && status.Code(err) != codes.Unavailable {
			t.Fatalf("third gRPC connection: %v, want Unavailable", err)
		}
	}
	_ = keep
}

func TestMaxKeySizeFlag(t *testing.T) {
	p := start(t, "--max-key-size=100")
	c := p.client()
	cx := ctx(t)
	if _, err := c.Set(cx, &cacheev1.SetRequest{Key: bytes.Repeat([]byte("k"), 100), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Set(cx, &cacheev1.SetRequest{Key: bytes.Repeat([]byte("k"), 101), Value: []byte("v")})
	info := wantError(t, err, codes.InvalidArgument, "KEY_TOO_LARGE")
	if info.GetMetadata()["limit"] != "100" {
		t.Fatalf("limit %q", info.GetMetadata()["limit"])
	}
	rc, err := net.Dial("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(rc, "SET %s v\r\n", strings.Repeat("k", 101))
	if got, _ := bufio.NewReader(rc).ReadString('\n'); got != "-ERR key is larger than cachee's max key size\r\n" {
		t.Fatalf("RESP: %q", got)
	}
}

// metric reads one unlabelled metric from /metrics.
func metric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	_, body := get(t, "http://"+p.metrics+"/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// logLine returns the first JSON log line with msg.
func logLine(t *testing.T, p *proc, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no %q log line:\n%s", msg, p.logs)
	return nil
}

// TestMemoryLimits: cachee sets the Go runtime's memory limit from --max-memory
// unless GOMEMLIMIT is set, and sizes the client memory budget under it.
func TestMemoryLimits(t *testing.T) {
	p := start(t, "--max-memory=64mb")
	line := logLine(t, p, "memory limits")
	goLimit, client := line["go_memory_limit"].(float64), line["client_memory"].(float64)
	if goLimit <= 0 || goLimit > 64<<20/5+14<<20 {
		t.Fatalf("go memory limit %v for --max-memory=64mb", goLimit)
	}
	if got := metric(t, p, "go_gc_gomemlimit_bytes"); got != goLimit {
		t.Fatalf("runtime limit %v, logged %v", got, goLimit)
	}
	if got := metric(t, p, "cachee_client_memory_limit_bytes"); got != client || client > goLimit/4+1 {
		t.Fatalf("client memory %v (logged %v), go limit %v", got, client, goLimit)
	}

	q := startProc(t, procOptions{args: []string{"--max-memory=64mb", "--max-client-memory=20mb"}, env: []string{"GOMEMLIMIT=123MiB"}})
	if err := q.waitServing(); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, q, "go_gc_gomemlimit_bytes"); got != 123<<20 {
		t.Fatalf("GOMEMLIMIT=123MiB: runtime limit %v", got)
	}
	if got := metric(t, q, "cachee_client_memory_limit_bytes"); got != 20<<20 {
		t.Fatalf("--max-client-memory=20mb: %v", got)
	}
	logLine(t, q, "memory limits; GOMEMLIMIT is set, so the Go runtime keeps it")
}

// TestSegmentFileSafety: the segment is created exclusively, owned by the sidecar and
// writable only by it; a file at its path that another user owns, that others may
// write, or that is not a regular file is refused and left as it was.
func TestSegmentFileSafety(t *testing.T) {
	t.Run("created", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shm")
		start(t, "--shm="+dir)
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, "cachee.seg"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Mode&0o777 != 0o644 || st.Uid != uint32(os.Geteuid()) || st.Nlink != 1 {
			t.Fatalf("segment mode %o uid %d links %d: want a regular file, 0644, ours, one link", st.Mode, st.Uid, st.Nlink)
		}
		// Nothing else was left in the directory (the temporary name was renamed).
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("directory holds %v", ents)
		}
	})

	refused := func(t *testing.T, dir, want string) {
		t.Helper()
		p := startProc(t, procOptions{args: []string{"--shm=" + dir}})
		if code := p.wait(); code != 1 {
			t.Fatalf("exit code %d, want 1\n%s", code, p.logs)
		}
		if !strings.Contains(p.logs.String(), want) {
			t.Fatalf("logs lack %q:\n%s", want, p.logs)
		}
	}
	prepare := func(t *testing.T, mode os.FileMode) (dir, seg string) {
		dir = filepath.Join(t.TempDir(), "shm")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		seg = filepath.Join(dir, "cachee.seg")
		if err := os.WriteFile(seg, []byte("planted"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(seg, mode)
		return dir, seg
	}
	unchanged := func(t *testing.T, seg string, uid int, mode os.FileMode) {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Lstat(seg, &st); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(seg)
		if string(b) != "planted" || int(st.Uid) != uid || os.FileMode(st.Mode&0o777) != mode {
			t.Fatalf("planted file changed: %q uid %d mode %o", b, st.Uid, st.Mode&0o777)
		}
	}

	t.Run("another user's file", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown")
		}
		dir, seg := prepare(t, 0o644)
		if err := os.Chown(seg, 40001, 40001); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, "is owned by uid 40001, not 0")
		unchanged(t, seg, 40001, 0o644)
	})
	t.Run("writable by others", func(t *testing.T) {
		dir, seg := prepare(t, 0o666)
		refused(t, dir, "is writable by group or others (mode 666)")
		unchanged(t, seg, os.Geteuid(), 0o666)
	})
	t.Run("writable by the group", func(t *testing.T) {
		dir, seg := prepare(t, 0o664)
		refused(t, dir, "is writable by group or others (mode 664)")
		unchanged(t, seg, os.Geteuid(), 0o664)
	})
	t.Run("symlink", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shm")
		os.Mkdir(dir, 0o755)
		target := filepath.Join(t.TempDir(), "target")
		if err := os.WriteFile(target, []byte("planted"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "cachee.seg")); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, "too many levels of symbolic links")
		unchanged(t, target, os.Geteuid(), 0o644)
	})
	t.Run("directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "shm")
		if err := os.MkdirAll(filepath.Join(dir, "cachee.seg"), 0o755); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, "cachee.seg")
	})
}

// TestSocketNotConnectableByOthers: a process of another user, outside the socket's
// group, cannot connect, even when the socket's directory lets it through.
func TestSocketNotConnectableByOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	p := start(t)
	// Open the directories above the socket so that only the socket's mode decides.
	for d := filepath.Dir(p.sock); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	out := runAs(t, 40001, 40001, p.sock)
	if !strings.Contains(out, "permission denied") {
		t.Fatalf("another user connecting: %q, want permission denied", out)
	}
	// The socket's group may connect.
	if err := os.Chown(p.sock, 0, 40002); err != nil {
		t.Fatal(err)
	}
	if out := runAs(t, 40001, 40002, p.sock); out != "connected" {
		t.Fatalf("a member of the socket's group: %q", out)
	}
}

// runAs runs "cachee stats" against sock as another user, from a copy of the binary
// that user may execute, and says "connected" if it got its answer.
func runAs(t *testing.T, uid, gid uint32, sock string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cachee-other")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cachee")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "stats", "--addr", "unix://"+sock)
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "connected"
	}
	return string(out)
}
