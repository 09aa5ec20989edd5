// Package procs starts the servers the benchmarks measure (cachee and redis-server, each
// a child process on free ports and temporary sockets) and reads what /proc says about
// them and about the machine.
package procs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cachee is a running cachee server.
type Cachee struct {
	Cmd     *exec.Cmd
	Socket  string // Unix socket (gRPC and RESP)
	TCP     string // host:port (gRPC and RESP)
	Segment string // the segment file, "" in private memory
	Metrics string // host:port of /metrics
	RESP    bool
	Args    []string
}

// Pid is the server's process id.
func (c *Cachee) Pid() int { return c.Cmd.Process.Pid }

// CacheeOptions say how to start cachee.
type CacheeOptions struct {
	Bin       string
	Dir       string // where the socket goes
	Shm       string // segment directory; "" for private memory
	MaxMemory string // --max-memory, e.g. "64mb"
	Extra     []string
}

// StartCachee starts cachee with free ports and waits for its "serving" log line, which
// gives the addresses it bound and whether it serves RESP. Variables CACHEE_* from the
// environment are dropped, so that the machine's settings cannot change the run.
func StartCachee(o CacheeOptions) (*Cachee, error) {
	sock := filepath.Join(o.Dir, "cachee.sock")
	args := []string{"--socket=" + sock, "--shm=" + o.Shm, "--port=0", "--http-port=0", "--metrics-port=0",
		"--max-memory=" + o.MaxMemory, "--log-format=json"}
	args = append(args, o.Extra...)
	cmd := exec.Command(o.Bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CACHEE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	type serving struct {
		Msg     string
		Socket  string
		Addr    string
		Segment string
		Metrics string
		Resp    bool
	}
	ready := make(chan serving, 1)
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var line serving
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				once.Do(func() { ready <- line })
			} else if !bytes.Contains(sc.Bytes(), []byte(`"level":"INFO"`)) {
				fmt.Fprintln(os.Stderr, "cachee:", sc.Text())
			}
		}
		once.Do(func() { close(ready) })
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			cmd.Wait()
			return nil, fmt.Errorf("cachee %v exited before serving", args)
		}
		return &Cachee{Cmd: cmd, Socket: sock, TCP: line.Addr, Segment: line.Segment, Metrics: loopbackAddr(line.Metrics), RESP: line.Resp, Args: args}, nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, errors.New("cachee did not start within 30s")
	}
}

// Mallocs is the count of heap allocations a Go server has made, from
// go_memstats_mallocs_total on its /metrics at addr (host:port).
func Mallocs(addr string) (uint64, error) {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return uint64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_mallocs_total on %s/metrics", addr)
}

// loopbackAddr is a listening address (":9090", "[::]:9090") as one to dial here.
func loopbackAddr(a string) string {
	if _, port, err := net.SplitHostPort(a); err == nil {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return a
}

// Stop ends the server with SIGTERM, and SIGKILL if it has not exited in 15 s.
func (c *Cachee) Stop() {
	c.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.Cmd.Process.Kill()
		<-done
	}
}

// HasFlag reports whether `bin --help` lists flag (e.g. "--l2"): how the benchmarks
// tell which features the binary under test has.
func HasFlag(bin, flag string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("%s --help: %w", bin, err)
	}
	for _, f := range strings.Fields(string(out)) {
		f = strings.TrimRight(f, ",")
		if f == flag || strings.HasPrefix(f, flag+"=") {
			return true, nil
		}
	}
	return false, nil
}

// Redis is a running redis-server.
type Redis struct {
	Cmd    *exec.Cmd
	Addr   string // 127.0.0.1:port
	Socket string
}

// Pid is the server's process id.
func (r *Redis) Pid() int { return r.Cmd.Process.Pid }

// StartRedis starts redis-server on a free port and a socket in dir, with persistence
// off and no memory limit unless extra says otherwise.
func StartRedis(dir, name string, extra ...string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (Debian: apt-get install redis-server; `make deps` does): %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, name+".sock")
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--unixsocket", sock, "--unixsocketperm", "700", "--dir", dir, "--logfile", "", "--maxmemory", "0"}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &Redis{Cmd: cmd, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Socket: sock}
	for i := 0; ; i++ {
		c, err := net.Dial("unix", sock)
		if err == nil {
			// The socket accepts before the server has loaded; PING until it answers.
			c.Write([]byte("PING\r\n"))
			c.SetReadDeadline(time.Now().Add(time.Second))
			b := make([]byte, 7)
			n, _ := io.ReadAtLeast(c, b, 5)
			c.Close()
			if string(b[:n]) == "+PONG\r\n" {
				return r, nil
			}
		}
		if i == 200 {
			r.Stop()
			return nil, fmt.Errorf("redis-server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (it keeps nothing worth a clean shutdown).
func (r *Redis) Stop() {
	r.Cmd.Process.Kill()
	r.Cmd.Wait()
}

// RedisVersion is redis-server's version, or "unknown".
func RedisVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "unknown"
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return "unknown"
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ParseBenchmarkCSV reads the requests per second of test (e.g. "GET") from the output
// of redis-benchmark --csv.
func ParseBenchmarkCSV(out []byte, test string) (float64, error) {
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark output %q: %w", out, err)
	}
	for _, rec := range recs {
		if len(rec) >= 2 && rec[0] == test {
			if v, err := strconv.ParseFloat(rec[1], 64); err == nil && v > 0 {
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s rate in redis-benchmark output %q", test, out)
}

// CPUTime is the user plus system CPU time process pid has used, from /proc/pid/stat,
// in clock ticks of 10 ms: read it over whole runs only.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ, fixed at 100 for /proc
	return time.Duration(ut+st) * time.Second / ticksPerSecond, nil
}

// Status is the memory part of /proc/pid/status, in bytes.
type Status struct {
	VmRSS    int64 // resident pages: RssAnon + RssFile + RssShmem
	VmHWM    int64 // the peak of VmRSS
	RssAnon  int64 // private anonymous pages: the Go heap, stacks, private mappings
	RssFile  int64 // pages of mapped files: the binary, libraries
	RssShmem int64 // pages of shared memory (tmpfs, MAP_SHARED anonymous) this process has mapped and touched
}

// ReadStatus reads /proc/pid/status.
func ReadStatus(pid int) (Status, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Status{}, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Status, error) {
	var s Status
	fields := map[string]*int64{"VmRSS": &s.VmRSS, "VmHWM": &s.VmHWM, "RssAnon": &s.RssAnon,
		"RssFile": &s.RssFile, "RssShmem": &s.RssShmem}
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		p, want := fields[name]
		if !ok || !want {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return s, fmt.Errorf("status line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s, err
		}
		*p = kb << 10
		found++
	}
	if found != len(fields) {
		return s, fmt.Errorf("status: %d of %d memory fields", found, len(fields))
	}
	return s, nil
}

// FilePages is how many bytes of a file are allocated (on tmpfs: the pages it holds in
// memory), from its block count, and its size.
func FilePages(path string) (allocated, size int64, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Blocks * 512, st.Size, nil
}

// Machine describes the machine a run is on.
type Machine struct {
	CPUs     int
	CPUModel string
	MemTotal string
	Kernel   string
	Go       string
}

// ReadMachine reads the machine's description from /proc.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPUModel: "unknown", MemTotal: "unknown", Kernel: "unknown", Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(v); len(f) == 2 {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
					}
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// LoadAvg is the 1-, 5- and 15-minute load averages, from /proc/loadavg.
type LoadAvg [3]float64

// ReadLoadAvg reads /proc/loadavg; zeros if it cannot.
func ReadLoadAvg() LoadAvg {
	l, _ := readLoadAvg()
	return l
}

func readLoadAvg() (LoadAvg, error) {
	var l LoadAvg
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return LoadAvg{}, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return LoadAvg{}, fmt.Errorf("/proc/loadavg: %q", b)
	}
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return LoadAvg{}, fmt.Errorf("/proc/loadavg: %w", err)
		}
	}
	return l, nil
}

func (l LoadAvg) String() string { return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2]) }

// Counters are what the kernel counts for a process across all its threads: the
// context switches that tell how often its threads slept and were woken, and the
// read- and write-type system calls (/proc/pid/io's syscr and syscw: read, write,
// readv, writev and the like, which is how Go reads and writes sockets).
type Counters struct {
	Voluntary, Involuntary int64 // context switches
	ReadCalls, WriteCalls  int64
}

// ReadCounters sums /proc/pid/task/*/status's context switches and reads /proc/pid/io.
// Threads that exited are not counted: read it around runs short enough that a Go
// process keeps its threads (it rarely ends one).
func ReadCounters(pid int) (Counters, error) {
	var c Counters
	base := "/proc/" + strconv.Itoa(pid)
	tasks, err := os.ReadDir(base + "/task")
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(base + "/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread exited meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			name, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch name {
			case "voluntary_ctxt_switches":
				c.Voluntary += n
			case "nonvoluntary_ctxt_switches":
				c.Involuntary += n
			}
		}
	}
	b, err := os.ReadFile(base + "/io")
	if err != nil {
		return c, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch name {
		case "syscr":
			c.ReadCalls = n
		case "syscw":
			c.WriteCalls = n
		}
	}
	return c, nil
}

// Sub is the counts from o to c.
func (c Counters) Sub(o Counters) Counters {
	return Counters{c.Voluntary - o.Voluntary, c.Involuntary - o.Involuntary, c.ReadCalls - o.ReadCalls, c.WriteCalls - o.WriteCalls}
}
