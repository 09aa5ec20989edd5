package cachee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// The read side passes between callers (h2.go): these tests hold it to calls that end
// every way a call can while its caller reads for others, or waits for another to
// read for it.

// waitCache is a grpc-go CacheService whose Get answers a key "wait=MS;size=N;..."
// after MS milliseconds (sooner if the call ends) with N bytes of valueFor(key), and
// whose Set stores values that Get then returns.
type waitCache struct {
	cacheev1.UnimplementedCacheServiceServer
	mu     sync.Mutex
	stored map[string][]byte
}

func (s *waitCache) Get(ctx context.Context, r *cacheev1.GetRequest) (*cacheev1.GetResponse, error) {
	s.mu.Lock()
	v, ok := s.stored[string(r.Key)]
	s.mu.Unlock()
	if ok {
		return &cacheev1.GetResponse{Found: true, Value: v}, nil
	}
	var wait, size int
	for _, f := range strings.Split(string(r.Key), ";") {
		name, val, _ := strings.Cut(f, "=")
		n, _ := strconv.Atoi(val)
		switch name {
		case "wait":
			wait = n
		case "size":
			size = n
		}
	}
	t := time.NewTimer(time.Duration(wait) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &cacheev1.GetResponse{Found: true, Value: valueFor(string(r.Key), size)}, nil
}

func (s *waitCache) Set(_ context.Context, r *cacheev1.SetRequest) (*cacheev1.SetResponse, error) {
	s.mu.Lock()
	s.stored[string(r.Key)] = r.Value
	s.mu.Unlock()
	return &cacheev1.SetResponse{Stored: true}, nil
}

// valueFor is n bytes that differ from key to key.
func valueFor(key string, n int) []byte {
	return bytes.Repeat([]byte(key), n/len(key)+1)[:n]
}

// dialWaitCache starts a waitCache on a Unix socket and connects to it.
func dialWaitCache(t *testing.T) *h2conn {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	cacheev1.RegisterCacheServiceServer(srv, &waitCache{stored: map[string][]byte{}})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	c, err := dialH2(context.Background(), "unix", sock, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

var setMethod = newH2Method("/cachee.v1.CacheService/Set", "localhost", "")

// h2Get makes a Get and returns the value found.
func h2Get(c *h2conn, ctx context.Context, deadline time.Time, key string) ([]byte, error) {
	k := []byte(key)
	call, err := c.call(ctx, deadline, getMethod, sizeBytesField(1, len(k)), func(b []byte) []byte { return appendBytesField(b, 1, k) })
	if err != nil {
		return nil, err
	}
	defer putCall(call)
	msg, err := call.result()
	if err != nil {
		return nil, err
	}
	found, v, err := decodeGetResponse(msg)
	if err == nil && !found {
		err = errors.New("not found")
	}
	return bytes.Clone(v), err
}

// idle checks that no call is left on c and nobody holds the read side for one.
func idle(t *testing.T, c *h2conn) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.calls) != 0 || c.active != 0 || c.err != nil {
		t.Fatalf("after every call ended: %d calls, %d active, error %v", len(c.calls), c.active, c.err)
	}
	if c.reader != nil && c.reader != c.helper {
		t.Fatalf("a call that ended still holds the read side")
	}
}

// Many goroutines, each call ending one way: answered (values of up to 200 KiB, which
// span frames and, all together, the connection's window), out of time, cancelled,
// or cancelled as its answer comes. Whoever holds the read side when its own call
// ends must pass it on, and every answer must reach its own caller.
func TestH2HandOffMixedCalls(t *testing.T) {
	c := dialWaitCache(t)
	sizes := []int{1, 100, 5000, 40 << 10, 200 << 10}
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 40 {
				size := sizes[rnd.IntN(len(sizes))]
				kind := rnd.IntN(10)
				wait := rnd.IntN(3)
				if kind >= 4 && kind < 8 {
					wait = 5000 // ends before its answer
				}
				key := fmt.Sprintf("wait=%d;size=%d;g%d.%d", wait, size, g, i)
				deadline := time.Now().Add(30 * time.Second)
				ctx, cancel := context.WithCancel(context.Background())
				switch kind {
				case 4, 5: // out of time
					deadline = time.Now().Add(time.Duration(1+rnd.IntN(4)) * time.Millisecond)
				case 6, 7: // cancelled while it waits
					time.AfterFunc(time.Duration(rnd.IntN(4))*time.Millisecond, cancel)
				case 8, 9: // cancelled about when its answer comes
					time.AfterFunc(time.Duration(rnd.IntN(3))*time.Millisecond, cancel)
				}
				v, err := h2Get(c, ctx, deadline, key)
				cancel()
				code := status.Code(err)
				switch {
				case err == nil && !bytes.Equal(v, valueFor(key, size)):
					t.Errorf("%s: an answer of %d bytes that is not its own", key, len(v))
				case err == nil && kind >= 4 && kind < 8:
					t.Errorf("%s: answered, though its call ended first", key)
				case err != nil && kind < 4:
					t.Errorf("%s: %v", key, err)
				case err != nil && (kind == 4 || kind == 5) && code != codes.DeadlineExceeded && code != codes.Canceled:
					// grpc-go's server resets a call whose deadline it saw pass
					// (CANCEL), which may come before the Client sees the time.
					t.Errorf("%s: %v, want DEADLINE_EXCEEDED", key, err)
				case err != nil && kind >= 6 && code != codes.Canceled:
					t.Errorf("%s: %v, want CANCELLED", key, err)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	idle(t, c)
	key := "wait=0;size=300000;last"
	if v, err := h2Get(c, context.Background(), time.Now().Add(30*time.Second), key); err != nil || !bytes.Equal(v, valueFor(key, 300000)) {
		t.Fatalf("a call after them all: %d bytes, %v", len(v), err)
	}
}

// A request larger than the server's windows, with no other call to read the
// server's window updates: the helper reads them.
func TestH2SendWaitsForWindow(t *testing.T) {
	c := dialWaitCache(t)
	key, v := []byte("big"), valueFor("big value", 3<<20)
	r := setRequest{key: key, value: v}
	call, err := c.call(context.Background(), time.Now().Add(30*time.Second), setMethod, r.size(), r.append)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := call.result()
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := decodeBoolAnswer(msg); err != nil || !stored {
		t.Fatalf("Set: %v %v", stored, err)
	}
	putCall(call)
	got, err := h2Get(c, context.Background(), time.Now().Add(30*time.Second), string(key))
	if err != nil || !bytes.Equal(got, v) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
	idle(t, c)
}

// goGetCtx is goGet with a context.
func goGetCtx(t testing.TB, c *h2conn, ctx context.Context, key string, d time.Duration) <-chan callResult {
	return startGet(t, c, ctx, key, d)
}

// waitFor waits until cond, under c.mu, holds.
func waitFor(t testing.TB, c *h2conn, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("waited in vain for " + what)
		}
	}
}

// readsFor waits until the caller of stream id holds the read side.
func readsFor(t testing.TB, c *h2conn, id uint32) {
	waitFor(t, c, fmt.Sprint("stream ", id, " to read"), func() bool { return c.reader != nil && c.reader.id == id && c.calls[id] == c.reader })
}

// waits waits until the caller of stream id waits for another to read its answer.
func waits(t testing.TB, c *h2conn, id uint32) {
	waitFor(t, c, fmt.Sprint("stream ", id, " to wait"), func() bool { return c.calls[id] != nil && c.calls[id].waiting })
}

// The reader's own call ends (cancelled, or out of time) while it has read half of a
// frame for another call: the read side passes to that call's caller, which reads the
// rest of the frame where the first left off.
func TestH2ReaderEndsMidFrame(t *testing.T) {
	for _, how := range []string{"cancelled", "out of time"} {
		t.Run(how, func(t *testing.T) {
			s := newFakeServer(t)
			c, srv := dialFake(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := time.Minute
			if how == "out of time" {
				d = 2 * time.Second
			}
			a := goGetCtx(t, c, ctx, "a", d) // stream 1
			readsFor(t, c, 1)
			b := goGet(t, c, "b", time.Minute) // stream 3
			waits(t, c, 3)

			value := bytes.Repeat([]byte("v"), 3000)
			s.answer(3, &cacheev1.GetResponse{Found: true, Value: value})
			all := bytes.Clone(s.out.Bytes())
			s.out.Reset()
			cut := bytes.Index(all, value[:100]) + 1000 // in the middle of the DATA frame
			if _, err := srv.Write(all[:cut]); err != nil {
				t.Fatal(err)
			}
			if how == "cancelled" {
				cancel()
			}
			want := codes.Canceled
			if how == "out of time" {
				want = codes.DeadlineExceeded
			}
			if err := (<-a).err; status.Code(err) != want {
				t.Fatalf("the reader's own call: %v, want %v", err, want)
			}
			readsFor(t, c, 3)
			if _, err := srv.Write(all[cut:]); err != nil {
				t.Fatal(err)
			}
			res := <-b
			if found, v, _ := decodeGetResponse(res.msg); res.err != nil || !found || !bytes.Equal(v, value) {
				t.Fatalf("the call whose frame was cut: %d bytes, %v", len(v), res.err)
			}
			idle(t, c)
		})
	}
}

// A reader alone, cancelled in the middle of its own answer: the next call's reader
// skips the rest of that answer and takes its own.
func TestH2ReaderAloneCancelledMidAnswer(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	a := goGetCtx(t, c, ctx, "a", time.Minute) // stream 1
	readsFor(t, c, 1)
	s.answer(1, &cacheev1.GetResponse{Found: true, Value: bytes.Repeat([]byte("a"), 5000)})
	all := bytes.Clone(s.out.Bytes())
	s.out.Reset()
	if _, err := srv.Write(all[:len(all)/2]); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := (<-a).err; status.Code(err) != codes.Canceled {
		t.Fatalf("%v, want CANCELLED", err)
	}
	b := goGet(t, c, "b", time.Minute) // stream 3
	readsFor(t, c, 3)
	s.answer(3, &cacheev1.GetResponse{Found: true, Value: []byte("b")})
	if _, err := srv.Write(append(all[len(all)/2:], s.out.Bytes()...)); err != nil {
		t.Fatal(err)
	}
	s.out.Reset()
	res := <-b
	if found, v, _ := decodeGetResponse(res.msg); res.err != nil || !found || string(v) != "b" {
		t.Fatalf("the next call: %q %v", v, res.err)
	}
	idle(t, c)
}

// GOAWAY read by a caller: the calls it refuses fail unprocessed, the reader's among
// them, and the connection closes once the last call has ended.
func TestH2GoAwayWhileCallerReads(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	one := goGet(t, c, "one", time.Minute) // stream 1, reads
	readsFor(t, c, 1)
	two := goGet(t, c, "two", time.Minute) // stream 3
	waits(t, c, 3)
	s.answer(1, &cacheev1.GetResponse{Found: true})
	s.send(srv)
	if res := <-one; res.err != nil {
		t.Fatal(res.err)
	}
	readsFor(t, c, 3) // handed the read side
	three := goGet(t, c, "three", time.Minute)
	waits(t, c, 5)
	s.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	s.send(srv)
	allUnavailable(t, c, two, three)
}

// allUnavailable checks that each call fails unprocessed, and that the connection's
// reading then stops.
func allUnavailable(t *testing.T, c *h2conn, rs ...<-chan callResult) {
	t.Helper()
	for _, r := range rs {
		if err := (<-r).err; status.Code(err) != codes.Unavailable {
			t.Fatalf("%v, want UNAVAILABLE", err)
		}
	}
	closedSoon(t, c.done, "the connection's reading to stop")
}

// closedSoon waits for ch to be closed.
func closedSoon(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("waited in vain for " + what)
	}
}

// The connection ends while a caller reads: every call fails at once.
func TestH2ConnectionLostWhileCallerReads(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	var rs []<-chan callResult
	for i := range 3 {
		rs = append(rs, goGet(t, c, fmt.Sprint("k", i), time.Minute))
	}
	readsFor(t, c, 1)
	waits(t, c, 5)
	srv.Close()
	allUnavailable(t, c, rs...)
	if c.usable() {
		t.Fatal("a lost connection takes calls")
	}
}

// With no call in flight the helper reads, and sees the server go away.
func TestH2GoAwayBetweenCalls(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	r := goGet(t, c, "k", time.Minute)
	s.answer(1, &cacheev1.GetResponse{})
	s.send(srv)
	if res := <-r; res.err != nil {
		t.Fatal(res.err)
	}
	s.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	s.send(srv) // returns once the helper has read it
	closedSoon(t, c.gone, "a GOAWAY between calls to be seen")
}

// A call on a connection the helper reads (it has been quiet) takes the read side
// from the helper.
func TestH2CallerTakesReadSideFromHelper(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	waitFor(t, c, "the helper to read", func() bool { return c.reader == c.helper })
	r := goGet(t, c, "k", time.Minute)
	readsFor(t, c, 1)
	s.answer(1, &cacheev1.GetResponse{Found: true, Value: []byte("v")})
	s.send(srv)
	if res := <-r; res.err != nil {
		t.Fatal(res.err)
	}
	idle(t, c)
}

// A caller waiting for another to read has no timer: the reader ends its call when
// its deadline passes, and reads on for its own.
func TestH2ReaderEndsWaitingCallsOutOfTime(t *testing.T) {
	s := newFakeServer(t)
	c, srv := dialFake(t, s)
	one := goGet(t, c, "one", time.Minute) // stream 1, reads
	readsFor(t, c, 1)
	two := goGet(t, c, "two", 100*time.Millisecond) // stream 3
	if err := (<-two).err; status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("the waiting call: %v, want DEADLINE_EXCEEDED", err)
	}
	readsFor(t, c, 1)
	s.answer(1, &cacheev1.GetResponse{Found: true, Value: []byte("1")})
	s.send(srv)
	if res := <-one; res.err != nil {
		t.Fatalf("the reader's call: %v", res.err)
	}
	idle(t, c)
}

// A request that waits for a window update which never comes ends with its deadline.
func TestH2SendWindowWaitOutOfTime(t *testing.T) {
	s := newFakeServer(t)
	s.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	c, srv := dialFake(t, s)
	r := goGet(t, c, "settings", time.Minute) // its reader takes the server's settings
	s.answer(1, &cacheev1.GetResponse{})
	s.send(srv)
	if res := <-r; res.err != nil {
		t.Fatal(res.err)
	}
	if err := (<-goGet(t, c, strings.Repeat("k", 1000), 200*time.Millisecond)).err; status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("%v, want DEADLINE_EXCEEDED", err)
	}
	idle(t, c)
}
