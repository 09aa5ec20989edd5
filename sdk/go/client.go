package cachee

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

// maxRecvMsgSize lets a BatchGet of many large values through; gRPC's default of 4 MiB
// would fail a batch of five 1 MiB values.
const maxRecvMsgSize = 256 << 20

// Client talks to one cachee sidecar. It is safe for concurrent use; make one per
// process and share it.
type Client struct {
	opts options
	log  *slog.Logger
	cc   *grpc.ClientConn
	rpc  cacheev1.CacheServiceClient

	seg  atomic.Pointer[store.Reader] // the segment Gets read, nil when shm is off or stale
	wake chan struct{}                // nudges the segment watcher (a Get saw ErrStale)
	acc  *accessBuffer

	sf  singleflight.Group
	ctr counters

	closed    atomic.Bool
	closeOnce sync.Once
	stop      context.CancelFunc
	done      sync.WaitGroup
}

// Dial returns a Client for the sidecar and starts its background work: keeping the
// connection up, watching the shared-memory segment, reporting shared-memory hits.
//
// The sidecar is found, in order, at WithTarget's address; at unix:$CACHEE_SOCKET;
// at $CACHE_HOST:$CACHE_PORT (either may be left out: localhost, 6380), as in the
// manifest of the article the project follows; and otherwise at the default socket
// unix:///var/run/cachee/cachee.sock. The segment is looked for in WithShmDir's
// directory, else $CACHEE_SHM (set and empty turns it off), else /dev/shm/cachee.
//
// Dial does not wait for the sidecar unless WithWaitReady is given: until it answers,
// calls fail with ErrUnavailable.
func Dial(ctx context.Context, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.target == "" {
		o.target = targetFromEnv()
	}
	if !o.shmSet {
		o.shmDir = DefaultShmDir
		if d, ok := os.LookupEnv("CACHEE_SHM"); ok {
			o.shmDir = d
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.retries < 0 || o.timeout < 0 || o.retryBase < 0 || o.retryMax < 0 || o.reconnectBase < 0 || o.reconnectMax < 0 ||
		o.checkInterval <= 0 || o.maxLag <= 0 || o.flushInterval <= 0 {
		return nil, fmt.Errorf("%w: options: retries %d (%v to %v), timeout %v, reconnect %v to %v, staleness %v/%v, flush %v",
			ErrInvalidArgument, o.retries, o.retryBase, o.retryMax, o.timeout, o.reconnectBase, o.reconnectMax,
			o.checkInterval, o.maxLag, o.flushInterval)
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  o.reconnectBase,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   o.reconnectMax,
			},
			// The sidecar is local: a connection that takes longer than this is not
			// going to succeed.
			MinConnectTimeout: time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
	}
	cc, err := grpc.NewClient(o.target, append(dopts, o.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("cachee: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	c := &Client{
		opts: o,
		log:  o.logger.With("target", o.target),
		cc:   cc,
		rpc:  cacheev1.NewCacheServiceClient(cc),
		wake: make(chan struct{}, 1),
		acc:  newAccessBuffer(),
		stop: stop,
	}
	cc.Connect()
	if o.waitReady {
		if err := c.waitReady(ctx); err != nil {
			stop()
			cc.Close()
			return nil, err
		}
	}
	c.done.Add(2)
	go c.watchConn(bg)
	go c.flushLoop(bg)
	if o.shmDir != "" {
		w := newSegmentWatcher(c)
		// One step now, so that a Client made beside a running sidecar reads shared
		// memory from its first Get.
		w.step(ctx, time.Now())
		c.done.Add(1)
		go w.run(bg)
	}
	return c, nil
}

// targetFromEnv is the sidecar address when no WithTarget is given.
func targetFromEnv() string {
	if s := os.Getenv("CACHEE_SOCKET"); s != "" {
		return "unix:" + s
	}
	host, port := os.Getenv("CACHE_HOST"), os.Getenv("CACHE_PORT")
	if host != "" || port != "" {
		if host == "" {
			host = "localhost"
		}
		if port == "" {
			port = "6380"
		}
		return net.JoinHostPort(host, port)
	}
	return "unix://" + DefaultSocket
}

// waitReady waits until the connection is ready or ctx ends.
func (c *Client) waitReady(ctx context.Context) error {
	for {
		s := c.cc.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if s == connectivity.Idle {
			c.cc.Connect()
		}
		if !c.cc.WaitForStateChange(ctx, s) {
			return fmt.Errorf("%w: waiting for %s: %w", ErrUnavailable, c.opts.target, ctx.Err())
		}
	}
}

// watchConn keeps the connection up: grpc-go leaves a lost connection idle until the
// next call, so a Client reconnects here instead, with the configured backoff, and
// logs each loss and recovery once.
func (c *Client) watchConn(ctx context.Context) {
	defer c.done.Done()
	state := c.cc.GetState()
	wasReady := false
	for {
		switch state {
		case connectivity.Idle:
			c.cc.Connect()
		case connectivity.Ready:
			if !wasReady {
				c.log.Info("cachee: connected to the sidecar")
			}
			wasReady = true
		case connectivity.TransientFailure:
			if wasReady {
				c.log.Warn("cachee: lost the sidecar; reconnecting")
			}
			wasReady = false
		}
		if !c.cc.WaitForStateChange(ctx, state) {
			return
		}
		state = c.cc.GetState()
	}
}

// Close stops the background work, reports the last shared-memory hits (best effort)
// and releases the connection and the mapping. Calls made after Close fail with
// ErrClosed.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.stop()
		c.done.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout)
		c.flush(ctx, nil)
		cancel()
		if r := c.seg.Swap(nil); r != nil {
			r.Close()
		}
		err = c.cc.Close()
	})
	return err
}

// call runs one RPC with the Client's timeout and retries. retry says whether the
// call may be repeated after the sidecar became unreachable mid-call (reads and
// unconditional writes); contended reads are always retried.
func (c *Client) call(ctx context.Context, retry bool, fn func(ctx context.Context) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	caller := ctx
	if _, ok := ctx.Deadline(); !ok && c.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if c.closed.Load() {
			return ErrClosed
		}
		err = fromStatus(err)
		if caller != ctx && caller.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// The Client's own timeout ran out, not the caller's: the sidecar did
			// not answer in time, which is what ErrUnavailable stands for.
			if e, ok := err.(*Error); ok {
				e.sentinel = ErrUnavailable
			}
			return err
		}
		if attempt >= c.opts.retries || !c.retryable(err, retry) {
			return err
		}
		wait := c.backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (c *Client) retryable(err error, retry bool) bool {
	switch {
	case errors.Is(err, ErrContended):
		return true
	case errors.Is(err, ErrUnavailable):
		// While grpc-go knows the sidecar is down (its last connection attempt
		// failed), a retry would fail the same way: fail fast and let the
		// background reconnect do its work.
		return retry && c.cc.GetState() != connectivity.TransientFailure
	}
	return false
}

// backoff is the wait before retry attempt+1: exponential with full jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.retryBase << min(attempt, 16)
	if d > c.opts.retryMax || d <= 0 {
		d = c.opts.retryMax
	}
	return d/2 + rand.N(d/2+1)
}
