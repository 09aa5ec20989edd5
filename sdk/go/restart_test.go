package cachee_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
)

// selfChecking makes a value that names its key and version and ends with a checksum
// of everything before it, with a filler whose length varies with the version, so
// that a torn read (half of one version, half of another, or another key's bytes)
// cannot pass check.
func selfChecking(key string, version uint64) []byte {
	v := fmt.Appendf(nil, "%s|%d|", key, version)
	for i := range int(version%97) + 20 {
		v = append(v, byte('a'+(int(version)+i)%26))
	}
	return fmt.Appendf(v, "|%08x", crc32.ChecksumIEEE(v))
}

func checkValue(key string, v []byte) error {
	if len(v) < 9 {
		return fmt.Errorf("%s: short value %q", key, v)
	}
	body, sum := v[:len(v)-9], v[len(v)-8:]
	if v[len(v)-9] != '|' || fmt.Sprintf("%08x", crc32.ChecksumIEEE(body)) != string(sum) {
		return fmt.Errorf("%s: checksum mismatch in %q", key, v)
	}
	k, rest, _ := bytes.Cut(body, []byte("|"))
	if string(k) != key {
		return fmt.Errorf("%s: value of key %q", key, k)
	}
	ver, _, _ := bytes.Cut(rest, []byte("|"))
	n, err := strconv.ParseUint(string(ver), 10, 64)
	if err != nil || !bytes.Equal(v, selfChecking(key, n)) {
		return fmt.Errorf("%s: malformed value %q", key, v)
	}
	return nil
}

// readLoop reads keys until stop, from several goroutines, while a writer rewrites them.
// It records every value that fails its check, and every error other than the one a
// dead sidecar gives (ErrUnavailable).
type readLoop struct {
	c       *cachee.Client
	keys    []string
	stop    chan struct{}
	wg      sync.WaitGroup
	reads   atomic.Uint64
	found   atomic.Uint64
	unavail atomic.Uint64
	mu      sync.Mutex
	bad     []error
}

func startReadLoop(t *testing.T, c *cachee.Client, keys []string) *readLoop {
	l := &readLoop{c: c, keys: keys, stop: make(chan struct{})}
	for g := range 3 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			buf := make([]byte, 0, 256)
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				k := keys[rng.IntN(len(keys))]
				v, found, err := c.GetInto(context.Background(), k, buf)
				l.reads.Add(1)
				switch {
				case errors.Is(err, cachee.ErrUnavailable):
					l.unavail.Add(1)
				case err != nil:
					l.fail(fmt.Errorf("%s: %w", k, err))
				case found:
					l.found.Add(1)
					if err := checkValue(k, v); err != nil {
						l.fail(err)
					}
				}
			}
		}()
	}
	// The writer: new versions of random keys, as fast as the sidecar takes them.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		rng := rand.New(rand.NewPCG(99, 7))
		for ver := uint64(1); ; ver++ {
			select {
			case <-l.stop:
				return
			default:
			}
			k := keys[rng.IntN(len(keys))]
			if _, err := c.Set(context.Background(), k, selfChecking(k, ver)); err != nil && !errors.Is(err, cachee.ErrUnavailable) {
				l.fail(fmt.Errorf("set %s: %w", k, err))
			}
		}
	}()
	t.Cleanup(l.end)
	return l
}

func (l *readLoop) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) < 20 {
		l.bad = append(l.bad, err)
	}
}

func (l *readLoop) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *readLoop) errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bad
}

// TestSidecarKilledMidRead kills the sidecar with SIGKILL under a read loop that
// mixes shared-memory and gRPC reads with writes, restarts it, and checks that no
// read returned a torn or foreign value, the Client never crashed, failed only with
// ErrUnavailable while the sidecar was down, and went back to shared memory on the
// new segment afterwards.
func TestSidecarKilledMidRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart []string // the restarted sidecar's extra flags
	}{
		// Same file: the new writer recovers it and gives it a new generation.
		{"warm", nil},
		// Another size: the new writer retires the old file and renames a new one
		// over it.
		{"new-file", []string{"--max-memory=16mb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSidecar(t, true)
			c := dial(t, s, cachee.WithReconnectBackoff(10*time.Millisecond, 100*time.Millisecond))
			waitShm(t, c)
			cx := ctx(t)
			var keys []string
			for i := range 200 {
				k := fmt.Sprintf("restart:%d", i)
				keys = append(keys, k)
				if _, err := c.Set(cx, k, selfChecking(k, 0)); err != nil {
					t.Fatal(err)
				}
			}
			gen0, err := c.Stats(cx)
			if err != nil {
				t.Fatal(err)
			}
			l := startReadLoop(t, c, keys)
			eventually(t, "shm hits before the kill", func() bool { return c.Counters().ShmHits > 5000 })

			killed := time.Now()
			s.kill()
			eventually(t, "the Client to drop the dead sidecar's segment", func() bool {
				return !c.Counters().ShmActive && c.Counters().ShmStale >= 1
			})
			// Logged, not asserted: how long the dead sidecar's segment was still read
			// (the background check's interval, 20ms, plus scheduling).
			t.Logf("segment dropped %v after SIGKILL was sent", time.Since(killed).Round(time.Millisecond))
			eventually(t, "reads failing with ErrUnavailable", func() bool { return l.unavail.Load() > 0 })

			s.args = append(s.args, tc.restart...)
			s.restart(t)
			eventually(t, "the Client to read the new segment", func() bool {
				n := c.Counters()
				return n.ShmActive && n.ShmMaps >= 2
			})
			hits := c.Counters().ShmHits
			eventually(t, "shm hits after the restart", func() bool { return c.Counters().ShmHits > hits+5000 })
			l.end()

			for _, err := range l.errors() {
				t.Error(err)
			}
			gen1, err := c.Stats(cx)
			if err != nil {
				t.Fatal(err)
			}
			if gen1.Generation == gen0.Generation {
				t.Fatal("the restarted sidecar kept the generation")
			}
			n := c.Counters()
			t.Logf("reads %d (found %d, unavailable %d); counters %+v", l.reads.Load(), l.found.Load(), l.unavail.Load(), n)
			// A warm restart keeps what the segment held.
			if tc.restart == nil && gen1.Entries == 0 {
				t.Fatal("warm restart lost every entry")
			}
			// Every key reads the same through the new segment and over gRPC.
			viaGRPC := dial(t, s, cachee.WithoutShm())
			for _, k := range keys {
				a, fa, ea := c.Get(cx, k)
				b, fb, eb := viaGRPC.Get(cx, k)
				if ea != nil || eb != nil || fa != fb || !bytes.Equal(a, b) {
					t.Fatalf("%s: shm %v %v, grpc %v %v", k, fa, ea, fb, eb)
				}
				if fa {
					if err := checkValue(k, a); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestSidecarStalled stops the sidecar with SIGSTOP: its clock stops, so the Client
// stops reading its segment within the staleness bound, and calls that need the
// sidecar fail with ErrUnavailable after the Client's timeout instead of hanging.
// After SIGCONT the Client maps the segment again.
func TestSidecarStalled(t *testing.T) {
	s := startSidecar(t, true)
	c := dial(t, s, cachee.WithStaleness(10*time.Millisecond, 100*time.Millisecond), cachee.WithTimeout(200*time.Millisecond))
	waitShm(t, c)
	cx := context.Background() // no deadline: the Client's timeout applies
	if _, err := c.Set(cx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer s.cmd.Process.Signal(syscall.SIGCONT)
	eventually(t, "the Client to stop reading a stalled sidecar's segment", func() bool { return !c.Counters().ShmActive })
	_, _, err := c.Get(cx, "k")
	if !errors.Is(err, cachee.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get from a stalled sidecar: %v", err)
	}
	maps := c.Counters().ShmMaps
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Client to read shared memory again", func() bool {
		n := c.Counters()
		return n.ShmActive && n.ShmMaps > maps
	})
	if v, found, err := c.Get(cx, "k"); err != nil || !found || string(v) != "v" {
		t.Fatalf("after SIGCONT: %q %v %v", v, found, err)
	}
}
