// Command wakeups shows the two regimes of a call made one at a time on a VM: about
// 5 µs when the client's and the server's threads hand the CPU to each other, about
// 50 µs when each wake-up has to wake an idle virtual CPU. It starts a cachee and
// times, from a goroutine locked to its thread (as the report's latency section does),
// run after run, clients that differ in small ways:
//
//   - go-redis's GET, the report's reference;
//   - a RESP GET from a client that owns its socket (outside Go's netpoller) and waits
//     in ppoll after its write;
//   - the same, reading once before it waits, as most clients do;
//   - the same as the first, with about spin ns of work between the write and the wait;
//   - the same client's MGET of one key: a little more work for the server;
//   - the Go SDK's gRPC Get.
//
// For each it prints the p50 of each run and the share of calls under 20 µs: which
// runs land in which regime.
// docs/performance.md ("Where a Get's time goes on these VMs") reads its output.
//
//	go run ./bench/wakeups -cachee bin/cachee
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/stats"
	cachee "github.com/cachee/cachee/sdk/go"
)

func main() {
	var (
		bin  = flag.String("cachee", "bin/cachee", "cachee binary")
		runs = flag.Int("runs", 3, "runs per client")
		dur  = flag.Duration("d", 2*time.Second, "length of a run")
		spin = flag.Duration("spin", 100*time.Nanosecond, "work between the write and the wait, for the third client")
	)
	flag.Parse()
	if err := run(*bin, *runs, *dur, *spin); err != nil {
		log.Fatal(err)
	}
}

func run(bin string, runs int, dur, spin time.Duration) error {
	dir, err := os.MkdirTemp("", "cachee-wakeups-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := procs.StartCachee(procs.CacheeOptions{Bin: bin, Dir: dir, MaxMemory: "64mb"})
	if err != nil {
		return err
	}
	defer c.Stop()
	ctx := context.Background()
	value := strings.Repeat("v", 100)

	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: c.Socket, PoolSize: 1, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", value, 0).Err(); err != nil {
		return err
	}
	raw, err := dialRaw(c.Socket)
	if err != nil {
		return err
	}
	defer unix.Close(raw.fd)
	sdk, err := cachee.Dial(ctx, cachee.WithTarget("unix://"+c.Socket), cachee.WithoutShm(), cachee.WithWaitReady(),
		cachee.WithTimeout(30*time.Second), cachee.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer sdk.Close()
	buf := make([]byte, 0, 256)
	work := spinFor(spin)
	clients := []struct {
		name string
		call func() error
	}{
		{"go-redis GET", func() error { return rdb.Get(ctx, "k").Err() }},
		{"own socket, ppoll: GET", func() error { return raw.do(respGet, 0) }},
		{"own socket, read then ppoll: GET", func() error { return raw.doReadFirst(respGet) }},
		{fmt.Sprintf("own socket, ppoll: GET, %v of work after the write", spin), func() error { return raw.do(respGet, work) }},
		{"own socket, ppoll: MGET of one key", func() error { return raw.do(respMget, 0) }},
		{"Go SDK gRPC Get", func() error { _, _, err := sdk.GetInto(ctx, "k", buf); return err }},
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fmt.Printf("%-50s %s\n", "client (locked thread, one call at a time)", "p50 of each run (share of calls under 20 µs)")
	results := make([][]string, len(clients))
	for r := range runs {
		for i, cl := range clients {
			q, fast, err := timeRun(cl.call, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", cl.name, err)
			}
			results[i] = append(results[i], fmt.Sprintf("%v (%.0f%%)", q.P50.Round(100*time.Nanosecond), 100*fast))
		}
		log.Printf("run %d of %d done", r+1, runs)
	}
	for i, cl := range clients {
		fmt.Printf("%-50s %s\n", cl.name, strings.Join(results[i], ", "))
	}
	return nil
}

// timeRun times calls back to back for d: their quantiles, and the share under 20 µs.
func timeRun(call func() error, d time.Duration) (stats.Quantiles, float64, error) {
	var s []time.Duration
	fast := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		t0 := time.Now()
		if err := call(); err != nil {
			return stats.Quantiles{}, 0, err
		}
		e := time.Since(t0)
		if e < 20*time.Microsecond {
			fast++
		}
		s = append(s, e)
	}
	return stats.Summarize(s), float64(fast) / float64(len(s)), nil
}

var (
	respGet  = []byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
	respMget = []byte("*2\r\n$4\r\nMGET\r\n$1\r\nk\r\n")
)

// rawConn is a RESP client on a non-blocking socket of its own, outside Go's
// netpoller: it writes a command and waits in ppoll for the reply, which it takes
// as whole once it ends in CRLF (enough for the one-line and one-value replies here).
type rawConn struct {
	fd  int
	buf []byte
}

func dialRaw(path string) (*rawConn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rawConn{fd: fd, buf: make([]byte, 4096)}, nil
}

// doReadFirst sends cmd and reads at once, waiting in ppoll only when the read finds
// nothing (as Go's netpoller and most clients do).
func (c *rawConn) doReadFirst(cmd []byte) error {
	if _, err := unix.Write(c.fd, cmd); err != nil {
		return err
	}
	for {
		n, err := unix.Read(c.fd, c.buf)
		if err == unix.EAGAIN {
			pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
			unix.Ppoll(pfd, nil, nil)
			continue
		}
		if err != nil || n == 0 {
			return fmt.Errorf("read: %d %v", n, err)
		}
		return nil
	}
}

// do sends cmd, spins for work iterations, and waits for the reply.
func (c *rawConn) do(cmd []byte, work int) error {
	if _, err := unix.Write(c.fd, cmd); err != nil {
		return err
	}
	spinN(work)
	have := 0
	for {
		pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
		if _, err := unix.Ppoll(pfd, nil, nil); err != nil && err != unix.EINTR {
			return err
		}
		n, err := unix.Read(c.fd, c.buf[have:])
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		have += n
		if b := c.buf[:have]; b[0] == '-' {
			return errors.New(strings.TrimSpace(string(b)))
		} else if len(b) > 2 && b[len(b)-2] == '\r' && b[len(b)-1] == '\n' && complete(b) {
			return nil
		}
	}
}

// complete reports whether b holds a whole reply of the kinds asked for here: a bulk
// string, or an array of one.
func complete(b []byte) bool {
	switch b[0] {
	case '$':
		return strings.Count(string(b), "\r\n") >= 2
	case '*':
		return strings.Count(string(b), "\r\n") >= 3
	}
	return true
}

var sink int

// spinN does n iterations of work the compiler keeps.
func spinN(n int) {
	for i := range n {
		sink += i
	}
}

// spinFor is how many iterations of spinN take about d.
func spinFor(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	const probe = 1 << 20
	t0 := time.Now()
	spinN(probe)
	per := float64(time.Since(t0)) / probe
	return max(1, int(float64(d)/per))
}
