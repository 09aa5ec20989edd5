package l2

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

// Tier is the L2 tier: the store (L1) in front of a central Redis (L2). It implements
// tier.Tier for the gRPC data path, tier.Prewarmer, and the asynchronous calls the
// RESP shim makes (FetchAsync, WriteAsync).
//
// Two clients talk to L2. The data client reads values and writes through; with
// tracking it runs CLIENT TRACKING ON NOLOOP on its one connection per server, so
// Redis remembers every key this sidecar read and pushes an invalidation when anyone
// else changes it (NOLOOP: not when this sidecar's own write does). The aux client,
// without tracking, does what must not register keys: hot-key discovery, the hotset
// publication, and the canary's write.
type Tier struct {
	cfg Config
	ep  Endpoint
	st  *store.Store
	log *slog.Logger
	m   *metrics

	canaryKey string

	cmu     sync.Mutex
	data    rueidis.Client // nil until the first successful connect
	aux     rueidis.Client
	clients sync.Mutex // serializes (re)creating the clients

	up      atomic.Bool
	closing atomic.Bool

	// Coherence state, under mu (see coherence.go).
	mu     sync.Mutex
	keys   map[string]*keyState
	epoch  uint64
	dirty  bool // L1 holds values from L2 since the last flush
	resync bool // the stream broke: flush L1 before using L2 again
	neg    negCache

	canarySent atomic.Int64 // unix nanos of the canary write awaiting its invalidation

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

var errDown = errors.New("l2: not connected")

// New starts a tier over st. It tries to connect for up to a second, then keeps
// trying in the background with backoff: a sidecar starts and serves its L1 whether or
// not L2 is there yet. Close stops it.
func New(cfg Config, st *store.Store) (*Tier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ep, _ := ParseURL(cfg.URL)
	var id [6]byte
	_, _ = cryptoRand(id[:])
	t := &Tier{
		cfg:       cfg,
		ep:        ep,
		st:        st,
		log:       cfg.Logger.With("l2", ep.String()),
		m:         newMetrics(cfg.Registerer),
		canaryKey: DefaultCanaryPrefix + hex.EncodeToString(id[:]),
		keys:      make(map[string]*keyState),
		neg:       negCache{max: negCacheMax},
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := t.probe(ctx)
	cancel()
	t.setUp(err == nil, err)
	t.wg.Add(1)
	go t.keep()
	if t.tracking() && cfg.CanaryInterval > 0 {
		t.wg.Add(1)
		go t.canary()
	}
	if cfg.HotsetKey != "" && cfg.HotsetSize > 0 {
		t.wg.Add(1)
		go t.publishHotset()
	}
	return t, nil
}

var cryptoRand = crand.Read

// Collectors are the tier's metrics, for a registry other than Config.Registerer
// (the server's, which exists only after the tier).
func (t *Tier) Collectors() []prometheus.Collector { return t.m.collectors() }

// Endpoint is the parsed L2 URL.
func (t *Tier) Endpoint() Endpoint { return t.ep }

// WriteThrough reports whether writes go to L2 first.
func (t *Tier) WriteThrough() bool { return t.cfg.Write == WriteThrough }

// Up reports whether L2 answers; while it does not, misses are answered without it.
func (t *Tier) Up() bool { return t.up.Load() }

func (t *Tier) tracking() bool { return t.cfg.Invalidate == InvalidateTracking }

// Close stops the background work and closes the connections. L1 stays as it is.
func (t *Tier) Close() error {
	if !t.closing.CompareAndSwap(false, true) {
		return nil
	}
	close(t.stop)
	t.wg.Wait()
	t.cmu.Lock()
	data, aux := t.data, t.aux
	t.data, t.aux = nil, nil
	t.cmu.Unlock()
	if data != nil {
		data.Close()
	}
	if aux != nil {
		aux.Close()
	}
	return nil
}

// clientsNow returns the clients, or nil ones before the first connect.
func (t *Tier) clientsNow() (data, aux rueidis.Client) {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	return t.data, t.aux
}

// connect creates the clients if they do not exist yet. A single-server client is
// kept even when its first dial fails (it redials on use); a cluster client needs the
// cluster's slot map to exist, so it is created again on the next probe.
func (t *Tier) connect() error {
	t.clients.Lock()
	defer t.clients.Unlock()
	if data, _ := t.clientsNow(); data != nil {
		return nil
	}
	opt := t.ep.options()
	opt.Dialer.Timeout = max(t.cfg.Timeout, 250*time.Millisecond)
	// A connection that goes silent is given up after this long, which also bounds
	// how long a broken invalidation stream can go unnoticed without the canary.
	opt.ConnWriteTimeout = 5 * time.Second
	dataOpt := opt
	if t.tracking() {
		dataOpt.ClientTrackingOptions = []string{"NOLOOP"}
		dataOpt.NewCacheStoreFn = func(rueidis.CacheStoreOption) rueidis.CacheStore { return connWatch{t} }
		// connWatch handles invalidations; this callback is set because rueidis starts
		// a connection's background reader only when it is. Without that reader,
		// pushes wait unread until the next reply, and an idle sidecar would never hear
		// of a change.
		dataOpt.OnInvalidations = func([]rueidis.RedisMessage) {}
		dataOpt.ClientName = "cachee-l2-data"
	} else {
		dataOpt.DisableCache = true
	}
	opt.DisableCache = true
	opt.ClientName = "cachee-l2-aux"
	data, err := rueidis.NewClient(dataOpt)
	if data == nil {
		return err
	}
	aux, aerr := rueidis.NewClient(opt)
	if aux == nil {
		data.Close()
		return aerr
	}
	t.cmu.Lock()
	t.data, t.aux = data, aux
	t.cmu.Unlock()
	return errors.Join(err, aerr)
}

// probe connects if needed and checks that every server answers on the data client,
// which also re-establishes tracking on a connection that was lost.
func (t *Tier) probe(ctx context.Context) error {
	if err := t.connect(); err != nil {
		return err
	}
	data, aux := t.clientsNow()
	if data == nil {
		return errDown
	}
	for _, c := range []rueidis.Client{data, aux} {
		nodes := map[string]rueidis.Client{"": c}
		if t.ep.Cluster {
			nodes = c.Nodes()
		}
		for addr, n := range nodes {
			if err := n.Do(ctx, n.B().Ping().Build()).Error(); err != nil {
				return fmt.Errorf("ping %s: %w", addr, err)
			}
		}
	}
	return nil
}

// setUp records whether L2 answers, logging and counting the changes.
func (t *Tier) setUp(up bool, err error) {
	was := t.up.Swap(up)
	switch {
	case up && !was:
		t.m.up.Set(1)
		t.log.Info("L2 connected", "write", t.cfg.Write, "invalidate", t.cfg.Invalidate)
	case !up && was:
		t.m.up.Set(0)
		t.log.Warn("L2 unreachable; serving L1 hits and answering misses without it", "err", err)
	case !up && err != nil:
		t.log.Debug("L2 still unreachable", "err", err)
	}
}

// suspect tells the keeper that a call on the request path failed in a way that
// may mean the connection is gone, so that it checks now instead of at its next tick.
func (t *Tier) suspect() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// keep checks L2 every ProbeInterval while it is up, and retries with exponential
// backoff (50 ms doubling to 5 s, with jitter) while it is down.
func (t *Tier) keep() {
	defer t.wg.Done()
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		wait := t.cfg.ProbeInterval
		if !t.up.Load() {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, maxBackoff)
		} else {
			backoff = minBackoff
		}
		timer := time.NewTimer(wait)
		select {
		case <-t.stop:
			timer.Stop()
			return
		case <-t.kick:
			timer.Stop()
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(t.cfg.Timeout, time.Second))
		err := t.probe(ctx)
		cancel()
		if err == nil {
			t.resyncIfNeeded()
		}
		t.setUp(err == nil, err)
	}
}

// isNetErr reports an error that is not Redis's answer: the connection failed or the
// call ran out of time.
func isNetErr(err error) bool {
	if err == nil || rueidis.IsRedisNil(err) {
		return false
	}
	_, redisErr := rueidis.IsRedisErr(err)
	return !redisErr
}

// reason names an error for the errors_total metric.
func reason(err error) string {
	switch {
	case errors.Is(err, errDown):
		return "down"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// unavailable wraps err so that the gRPC layer answers UNAVAILABLE.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", tier.ErrL2Unavailable, err)
}

func isRedisNil(err error) bool { return rueidis.IsRedisNil(err) }
