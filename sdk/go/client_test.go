package cachee_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachee "github.com/cachee/cachee/sdk/go"
)

// modes runs a test with shared-memory reads on and off: every operation must behave
// the same either way.
func modes(t *testing.T, s *sidecar, fn func(t *testing.T, c *cachee.Client)) {
	t.Run("shm", func(t *testing.T) {
		c := dial(t, s)
		waitShm(t, c)
		fn(t, c)
	})
	t.Run("grpc", func(t *testing.T) {
		fn(t, dial(t, s, cachee.WithoutShm()))
	})
}

func TestSetGetDelete(t *testing.T) {
	s := startSidecar(t, true)
	modes(t, s, func(t *testing.T, c *cachee.Client) {
		cx := ctx(t)
		key := "k:" + t.Name()
		if _, found, err := c.Get(cx, key); err != nil || found {
			t.Fatalf("Get before Set: found %v, %v", found, err)
		}
		if stored, err := c.Set(cx, key, []byte("v1")); err != nil || !stored {
			t.Fatalf("Set: %v %v", stored, err)
		}
		v, found, err := c.Get(cx, key)
		if err != nil || !found || string(v) != "v1" {
			t.Fatalf("Get: %q %v %v", v, found, err)
		}
		buf := make([]byte, 0, 64)
		v, found, err = c.GetInto(cx, key, buf)
		if err != nil || !found || string(v) != "v1" || &v[0] != &buf[:1][0] {
			t.Fatalf("GetInto: %q %v %v (into buf: %v)", v, found, err, len(v) > 0 && &v[0] == &buf[:1][0])
		}
		// A buffer too small is replaced, not overrun.
		v, found, err = c.GetInto(cx, key, make([]byte, 1))
		if err != nil || !found || string(v) != "v1" {
			t.Fatalf("GetInto small buffer: %q %v %v", v, found, err)
		}
		// An empty value is a hit.
		if _, err := c.Set(cx, key+":empty", nil); err != nil {
			t.Fatal(err)
		}
		if v, found, err := c.Get(cx, key+":empty"); err != nil || !found || len(v) != 0 {
			t.Fatalf("empty value: %q %v %v", v, found, err)
		}
		if deleted, err := c.Delete(cx, key); err != nil || !deleted {
			t.Fatalf("Delete: %v %v", deleted, err)
		}
		if deleted, err := c.Delete(cx, key); err != nil || deleted {
			t.Fatalf("Delete again: %v %v", deleted, err)
		}
		if _, found, err := c.Get(cx, key); err != nil || found {
			t.Fatalf("Get after Delete: %v %v", found, err)
		}
	})
}

func TestSetConditions(t *testing.T) {
	s := startSidecar(t, true)
	modes(t, s, func(t *testing.T, c *cachee.Client) {
		cx := ctx(t)
		key := "cond:" + t.Name()
		steps := []struct {
			value  string
			opt    cachee.SetOption
			stored bool
			want   string
		}{
			{"a", cachee.IfPresent, false, ""},
			{"b", cachee.IfAbsent, true, "b"},
			{"c", cachee.IfAbsent, false, "b"},
			{"d", cachee.IfPresent, true, "d"},
			{"e", cachee.NoCondition, true, "e"},
		}
		for i, st := range steps {
			stored, err := c.Set(cx, key, []byte(st.value), st.opt)
			if err != nil || stored != st.stored {
				t.Fatalf("step %d: stored %v, %v; want %v", i, stored, err, st.stored)
			}
			v, found, err := c.Get(cx, key)
			if err != nil || found != (st.want != "") || string(v) != st.want {
				t.Fatalf("step %d: Get %q %v %v; want %q", i, v, found, err, st.want)
			}
		}
	})
}

// TestTTL checks that an expired entry is a miss on both paths: the segment reader
// judges expiry by the segment's expiry rule, and then asks the sidecar.
func TestTTL(t *testing.T) {
	s := startSidecar(t, true)
	modes(t, s, func(t *testing.T, c *cachee.Client) {
		cx := ctx(t)
		key := "ttl:" + t.Name()
		if _, err := c.Set(cx, key, []byte("soon gone"), cachee.WithTTL(50*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(cx, key+":long", []byte("stays"), cachee.WithTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "expiry", func() bool {
			_, found, err := c.Get(cx, key)
			if err != nil {
				t.Fatal(err)
			}
			return !found
		})
		if v, found, err := c.Get(cx, key+":long"); err != nil || !found || string(v) != "stays" {
			t.Fatalf("long TTL: %q %v %v", v, found, err)
		}
	})
}

func TestBatch(t *testing.T) {
	s := startSidecar(t, true)
	modes(t, s, func(t *testing.T, c *cachee.Client) {
		cx := ctx(t)
		p := t.Name() + ":"
		stored, err := c.BatchSet(cx, []cachee.Item{
			{Key: p + "a", Value: []byte("1")},
			{Key: p + "b", Value: []byte("2"), TTL: time.Hour},
			{Key: p + "a", Value: []byte("3"), Condition: cachee.IfAbsent}, // a exists by then
			{Key: p + "c", Value: []byte("4"), Condition: cachee.IfPresent},
			{Key: p + "d", Value: []byte{}},
		})
		if err != nil || fmt.Sprint(stored) != "[true true false false true]" {
			t.Fatalf("BatchSet: %v %v", stored, err)
		}
		res, err := c.BatchGet(cx, []string{p + "a", p + "missing", p + "b", p + "a", p + "c", p + "d"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res {
			got = append(got, fmt.Sprintf("%v:%s", r.Found, r.Value))
		}
		if want := "true:1 false: true:2 true:1 false: true:"; strings.Join(got, " ") != want {
			t.Fatalf("BatchGet: %v, want %v", got, want)
		}
		if res, err := c.BatchGet(cx, nil); err != nil || len(res) != 0 {
			t.Fatalf("empty BatchGet: %v %v", res, err)
		}
	})
}

func TestStats(t *testing.T) {
	s := startSidecar(t, true)
	c := dial(t, s, cachee.WithoutShm())
	cx := ctx(t)
	before, err := c.Stats(cx)
	if err != nil {
		t.Fatal(err)
	}
	c.Set(cx, "s1", []byte("x"))
	c.Get(cx, "s1")
	c.Get(cx, "nope")
	c.Delete(cx, "s1")
	after, err := c.Stats(cx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Sets != before.Sets+1 || after.Hits != before.Hits+1 || after.Misses != before.Misses+1 || after.Deletes != before.Deletes+1 {
		t.Fatalf("before %+v\nafter %+v", before, after)
	}
	if after.Eviction != "cachee-lfu" || after.MemoryLimit != 16<<20 || after.Generation == 0 ||
		filepath.Base(after.SegmentPath) != "cachee.seg" || after.Uptime <= 0 {
		t.Fatalf("stats %+v", after)
	}
}

// TestErrors provokes each error the sidecar can return to a client and checks its
// sentinel, on both paths (some are found locally when reading shared memory).
func TestErrors(t *testing.T) {
	s := startSidecar(t, true)
	modes(t, s, func(t *testing.T, c *cachee.Client) {
		cx := ctx(t)
		bigKey := strings.Repeat("k", 64<<10+1)
		tooMany := make([]string, 1001)
		for i := range tooMany {
			tooMany[i] = fmt.Sprint(i)
		}
		tests := []struct {
			name string
			call func() error
			want []error
		}{
			{"get empty key", func() error { _, _, err := c.Get(cx, ""); return err }, []error{cachee.ErrKeyEmpty, cachee.ErrInvalidArgument}},
			{"get key too large", func() error { _, _, err := c.Get(cx, bigKey); return err }, []error{cachee.ErrKeyTooLarge, cachee.ErrInvalidArgument}},
			{"set empty key", func() error { _, err := c.Set(cx, "", []byte("v")); return err }, []error{cachee.ErrKeyEmpty}},
			{"set value too large", func() error { _, err := c.Set(cx, "big", make([]byte, 1<<20+1)); return err }, []error{cachee.ErrValueTooLarge, cachee.ErrInvalidArgument}},
			{"set value over the message limit", func() error { _, err := c.Set(cx, "big", make([]byte, 3<<19)); return err }, []error{cachee.ErrMessageTooLarge, cachee.ErrInvalidArgument}},
			{"set value far over the message limit", func() error { _, err := c.Set(cx, "big", make([]byte, 3<<20)); return err }, []error{cachee.ErrMessageTooLarge, cachee.ErrInvalidArgument}},
			{"set negative ttl", func() error { _, err := c.Set(cx, "k", nil, cachee.WithTTL(-time.Second)); return err }, []error{cachee.ErrInvalidTTL}},
			{"set bad condition", func() error { _, err := c.Set(cx, "k", nil, cachee.Condition(7)); return err }, []error{cachee.ErrInvalidArgument}},
			{"batch get too many", func() error { _, err := c.BatchGet(cx, tooMany); return err }, []error{cachee.ErrBatchTooLarge}},
			{"batch get empty key", func() error { _, err := c.BatchGet(cx, []string{"a", ""}); return err }, []error{cachee.ErrKeyEmpty}},
			{"batch set bad item", func() error {
				_, err := c.BatchSet(cx, []cachee.Item{{Key: "ok", Value: nil}, {Key: "", Value: nil}})
				return err
			}, []error{cachee.ErrKeyEmpty}},
			{"prewarm without source", func() error { _, err := c.Prewarm(cx); return err }, []error{cachee.ErrPrewarmNotConfigured}},
		}
		for _, tt := range tests {
			err := tt.call()
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("%s: %v is not %v", tt.name, err, w)
				}
			}
			if errors.Is(err, cachee.ErrUnavailable) {
				t.Errorf("%s: %v is ErrUnavailable", tt.name, err)
			}
		}
		// The details are there for errors.As.
		_, err := c.Set(cx, "big", make([]byte, 1<<20+1))
		if e, ok := errors.AsType[*cachee.Error](err); !ok || e.Reason != "VALUE_TOO_LARGE" || e.Metadata["field"] != "value" || e.Metadata["limit"] != fmt.Sprint(1<<20) {
			t.Errorf("value too large: %#v", err)
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("status.Code: %v", status.Code(err))
		}
		_, err = c.Set(cx, "big", make([]byte, 3<<19))
		if e, ok := errors.AsType[*cachee.Error](err); !ok || e.Reason != "MESSAGE_TOO_LARGE" || e.Metadata["limit"] != fmt.Sprint(1<<20+64<<10+4<<10) ||
			!strings.Contains(e.Message, "--max-value-size") {
			t.Errorf("message too large: %#v", err)
		}
	})
}

func TestOutOfMemory(t *testing.T) {
	// 64mb, not less: at 4mb the Go memory limit is 13 MiB, near what a -race build of
	// the sidecar holds, and in some runs the Sets were refused OVERLOADED (client
	// memory) before the store filled.
	s := startSidecar(t, false, "--eviction=noeviction", "--max-memory=64mb")
	c := dial(t, s)
	cx := ctx(t)
	val := make([]byte, 256<<10)
	var err error
	for i := 0; i < 400 && err == nil; i++ {
		_, err = c.Set(cx, fmt.Sprint("fill:", i), val)
	}
	if !errors.Is(err, cachee.ErrOutOfMemory) {
		t.Fatalf("filling a noeviction cache: %v", err)
	}
}

func TestDeadline(t *testing.T) {
	c := dial(t, shared, cachee.WithoutShm())
	cx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := c.Get(cx, "k")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	cx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Set(cx, "k", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
}

// TestUnavailable dials a socket nobody serves: Dial succeeds, calls fail fast with
// ErrUnavailable, and once a sidecar appears there the same Client works.
func TestUnavailable(t *testing.T) {
	dir, err := os.MkdirTemp("", "cachee")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "run", "cachee.sock")
	shm := filepath.Join(dir, "shm")
	c, err := cachee.Dial(ctx(t), cachee.WithTarget("unix://"+sock), cachee.WithShmDir(shm),
		cachee.WithReconnectBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A generous deadline: failing fast must not mean waiting for it.
	cx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 3 {
		if _, _, err := c.Get(cx, "k"); !errors.Is(err, cachee.ErrUnavailable) {
			t.Fatalf("Get without a sidecar: %v", err)
		}
		if cx.Err() != nil {
			t.Fatal("Get waited for the deadline")
		}
	}
	if _, err := c.Set(cx, "k", []byte("v"), cachee.IfAbsent); !errors.Is(err, cachee.ErrUnavailable) {
		t.Fatalf("Set without a sidecar: %v", err)
	}

	s, err := launch(sock, shm)
	if err != nil {
		t.Fatal(err)
	}
	defer s.kill()
	eventually(t, "reconnection", func() bool {
		_, err := c.Set(cx, "k", []byte("v"))
		return err == nil
	})
	waitShm(t, c)
	if v, found, err := c.Get(cx, "k"); err != nil || !found || string(v) != "v" {
		t.Fatalf("after the sidecar came: %q %v %v", v, found, err)
	}
}

func TestWaitReady(t *testing.T) {
	dir, err := os.MkdirTemp("", "cachee")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = cachee.Dial(cx, cachee.WithTarget("unix://"+filepath.Join(dir, "none.sock")), cachee.WithWaitReady())
	if !errors.Is(err, cachee.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial with WithWaitReady and no sidecar: %v", err)
	}
	c, err := cachee.Dial(ctx(t), cachee.WithTarget("unix://"+shared.sock), cachee.WithWaitReady())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	c, err := cachee.Dial(ctx(t), cachee.WithTarget("unix://"+shared.sock), cachee.WithShmDir(shared.shm))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close() // twice is fine
	if _, _, err := c.Get(ctx(t), "k"); !errors.Is(err, cachee.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := c.Set(ctx(t), "k", nil); !errors.Is(err, cachee.ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if c.Counters().ShmActive {
		t.Fatal("still reading shared memory after Close")
	}
}

// TestTargetFromEnv: the article's manifest gives the application CACHE_HOST and
// CACHE_PORT; Dial with no target uses them.
func TestTargetFromEnv(t *testing.T) {
	s := startSidecar(t, false)
	host, port, _ := strings.Cut(s.tcp, ":")
	t.Setenv("CACHEE_SOCKET", "")
	t.Setenv("CACHE_HOST", host)
	t.Setenv("CACHE_PORT", port)
	c, err := cachee.Dial(ctx(t), cachee.WithoutShm())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Set(ctx(t), "env", []byte("tcp")); err != nil {
		t.Fatal(err)
	}
	// The value is in s, not in the shared sidecar.
	if v, found, err := dial(t, s).Get(ctx(t), "env"); err != nil || !found || !bytes.Equal(v, []byte("tcp")) {
		t.Fatalf("%q %v %v", v, found, err)
	}
}

func TestDialInvalidOptions(t *testing.T) {
	for _, opt := range []cachee.Option{
		cachee.WithRetries(-1, 0, 0),
		cachee.WithRetries(1, time.Millisecond, -time.Millisecond),
		cachee.WithTimeout(-time.Second),
		cachee.WithStaleness(0, time.Second),
		cachee.WithFlushInterval(0),
	} {
		if _, err := cachee.Dial(ctx(t), opt); !errors.Is(err, cachee.ErrInvalidArgument) {
			t.Errorf("Dial: %v", err)
		}
	}
}
