package cachee

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
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

	fast *fastPath // Get, Set and Delete's own transport; nil when not used

	closed    atomic.Bool
	closeOnce sync.Once
	stop      context.CancelFunc
	done      sync.WaitGroup
}

// Dial returns a Client for the sidecar and starts its background work: keeping the
// connection up, watching the shared-memory segment, reporting shared-memory hits.
//
// The sidecar is found, in order, at WithTarget's address; at unix:$CACHEE_SOCKET;
// at $CACHE_HOST:$CACHE_PORT (either may be left out: localhost, 6380), the variables
// a pod spec sets for cache clients; and otherwise at the default socket
// unix:///var/run/cachee/cachee.sock. The segment is looked for in WithShmDir's
// directory, else $CACHEE_SHM (set and empty turns it off), else /dev/shm/cachee. The
// token is WithAuthToken's, else $CACHEE_AUTH_TOKEN's. Every cachee SDK resolves these
// the same way (docs/sdk-contract.md).
//
// Dial does not wait for the sidecar unless WithWaitReady is given: until it answers,
// calls fail with ErrUnavailable.
func Dial(ctx context.Context, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	o.target = resolveTarget(o.target, os.Getenv)
	o.shmDir = resolveShmDir(o.shmDir, o.shmSet, os.LookupEnv)
	// Options given for grpc-go (interceptors, say) must see every call, so the
	// Client's own transport is only used without them.
	useFast := len(o.dialOptions) == 0
	token := resolveToken(o.token, os.Getenv)
	if token != "" {
		o.dialOptions = append(o.dialOptions, grpc.WithPerRPCCredentials(bearerToken(token)))
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
				Multiplier: reconnectMultiplier,
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
	if useFast {
		c.fast = newFastPath(o.target, token)
	}
	if o.waitReady {
		if err := c.waitReady(ctx); err != nil {
			stop()
			cc.Close()
			return nil, err
		}
		c.fast.connect(ctx)
	}
	c.done.Add(2)
	go c.watchConn(bg)
	go c.flushLoop(bg)
	if c.fast != nil {
		c.done.Add(1)
		go c.fast.keep(bg, &c.done, c.backoff)
	}
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
		c.fast.close()
		err = c.cc.Close()
	})
	return err
}

// An rpc is one of the calls that Client.call makes and retries (Prewarm and
// RecordAccess are never retried, so they are not rpcs).
type rpc struct {
	name string // the proto method
	// safe: sending it again after a failure that may have followed its effect (a
	// connection lost mid-call) leaves the same state. A conditional write is not
	// safe, since its second attempt could see its own first one.
	safe bool
}

var (
	rpcGet        = rpc{"Get", true}
	rpcBatchGet   = rpc{"BatchGet", true}
	rpcStats      = rpc{"Stats", true}
	rpcDelete     = rpc{"Delete", true}
	rpcSet        = rpc{"Set", true}
	rpcSetIf      = rpc{"Set", false}
	rpcBatchSet   = rpc{"BatchSet", true}
	rpcBatchSetIf = rpc{"BatchSet", false}
)

// call runs one RPC with the Client's timeout and the contract's retries.
func (c *Client) call(ctx context.Context, r rpc, fn func(ctx context.Context) error) error {
	return c.retry(ctx, r, true, func(ctx context.Context, _ time.Time) error { return fn(ctx) })
}

// retry runs the attempts of one call: fn makes an attempt before deadline (zero for
// none). With derive, ctx carries the Client's timeout when the caller's has no
// deadline (grpc-go takes a call's deadline from its context); without, only the
// deadline does, which spares a context and its timer per call.
func (c *Client) retry(ctx context.Context, r rpc, derive bool, fn func(ctx context.Context, deadline time.Time) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	caller := ctx
	deadline, has := ctx.Deadline()
	own := !has && c.opts.timeout > 0 // the deadline is the Client's, not the caller's
	if own {
		deadline = time.Now().Add(c.opts.timeout)
		if derive {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
	}
	for attempt := 0; ; attempt++ {
		err := fn(ctx, deadline)
		if err == nil {
			return nil
		}
		if c.closed.Load() {
			return ErrClosed
		}
		e := fromStatus(err).(*Error)
		if own && caller.Err() == nil && e.Code == codes.DeadlineExceeded {
			// The Client's own timeout ran out, not the caller's: the sidecar did
			// not answer in time, which is what ErrUnavailable stands for.
			e.sentinel = ErrUnavailable
			return e
		}
		knownDown := c.cc.GetState() == connectivity.TransientFailure
		if attempt >= c.opts.retries || !mayRetry(r.safe, e, knownDown) {
			return e
		}
		wait := c.backoff(attempt)
		if !deadline.IsZero() && time.Until(deadline) <= wait {
			return e
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return e
		case <-t.C:
		}
	}
}

// mayRetry is the SDK contract's retry rule (docs/sdk-contract.md, section 5) for a
// call that failed with e. Refusals the sidecar made before applying anything are
// always retried; a lost connection only for calls that are safe to repeat, and not
// while the sidecar is known to be down (grpc-go's last connection attempt failed): a
// retry would fail the same way, so the call fails fast while the background
// reconnect does its work.
func mayRetry(safe bool, e *Error, knownDown bool) bool {
	switch {
	case e.Code == codes.Unavailable && (e.Reason == reasonName(cacheev1.ErrorReason_ERROR_REASON_OVERLOADED) ||
		e.Reason == reasonName(cacheev1.ErrorReason_ERROR_REASON_SHUTTING_DOWN)):
		return true
	case e.Code == codes.Aborted && e.Reason == reasonName(cacheev1.ErrorReason_ERROR_REASON_READ_CONTENDED):
		return true
	case e.Code == codes.Unavailable && e.Reason == "":
		return safe && !knownDown
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
