// Package redistest starts real redis-server processes for tests: a standalone server
// or a Redis Cluster of several masters, on free loopback ports, without persistence,
// stopped when the test ends. Tests skip when redis-server is not installed, unless
// CACHEE_REQUIRE_TOOLS is set (as `make test` sets it), which makes that a failure.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server (or a cluster) may take to come up.
const startTimeout = 30 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CACHEE_REQUIRE_TOOLS") != "" {
				t.Fatalf("%s is required (CACHEE_REQUIRE_TOOLS is set): %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// Start runs redis-server on a free loopback port with persistence off; extra
// arguments are redis-server options ("--maxmemory-policy", "allkeys-lfu").
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	need(t, "redis-server")
	s := &Server{t: t, Port: freePort(t), dir: t.TempDir()}
	s.args = append([]string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
	}, extra...)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is redis://host:port.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command("redis-server", s.args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := Command(s.Addr(), "PING")
		if err == nil && reply == "PONG" || err != nil && strings.HasPrefix(err.Error(), "NOAUTH") {
			return // up (with --requirepass it asks for a password first)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %d did not answer PING", s.Port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server at once (SIGKILL: no goodbye to clients, as a crashed or
// partitioned L2 gives none). Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGCONT) // a paused server must run to die
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing answers, as
// with an overloaded or partitioned L2. Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n masters with cluster-enabled yes and joins them with
// redis-cli --cluster create, then waits until every node reports cluster_state:ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	need(t, "redis-server", "redis-cli")
	c := &Cluster{}
	var addrs []string
	for range n {
		dir := t.TempDir()
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
			"--cluster-node-timeout", "5000")
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, s := range c.Nodes {
		for {
			info, err := Command(s.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok: %q %v", s.Addr(), info, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// URL is the cluster form of --l2 with every node as a seed.
func (c *Cluster) URL() string {
	var addrs []string
	for _, s := range c.Nodes {
		addrs = append(addrs, s.Addr())
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// freePort returns a loopback port that is free, and whose cluster bus port (port +
// 10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(30000)
		if free(p) && free(p+10000) {
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

func free(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Command sends one command over a fresh RESP2 connection and returns the reply as
// text: a simple or bulk string, an integer, "(nil)", or an error. It is for setting
// up and checking tests without the client under test.
func Command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("%s", line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "(nil)", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}
