package l2

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Write and invalidation modes, as the flags take them.
const (
	WriteThrough = "through" // writes go to L2, then L1, before they are acknowledged
	WriteNone    = "none"    // writes stay in L1

	InvalidateTracking = "tracking" // RESP3 CLIENT TRACKING drops L1 copies that L2 changes
	InvalidateNone     = "none"     // L1 copies live until --l1-ttl
)

// Defaults, as the flags document them.
const (
	DefaultL1TTL          = 60 * time.Second
	DefaultTimeout        = 50 * time.Millisecond
	DefaultHotsetKey      = "cachee:hotset"
	DefaultHotsetInterval = 30 * time.Second
	DefaultHotsetSize     = 1000
	DefaultCanaryInterval = time.Second
	DefaultProbeInterval  = time.Second
	DefaultCanaryPrefix   = "cachee:canary:"
)

// Config configures a Tier. The zero value of every field but URL takes its default.
type Config struct {
	// URL is the L2 endpoint (see Endpoint).
	URL string

	// L1TTL is the longest an L2 value lives in L1; a key whose L2 TTL is shorter
	// keeps that (--l1-ttl).
	L1TTL time.Duration

	// NegativeTTL, when positive, remembers that L2 lacks a key for that long, so
	// repeated misses for it do not each cost an L2 read (--negative-ttl).
	NegativeTTL time.Duration

	// Write is WriteThrough (default) or WriteNone (--l2-write).
	Write string

	// Invalidate is InvalidateTracking (default) or InvalidateNone (--l2-invalidate).
	Invalidate string

	// Timeout bounds every L2 call on the request path: a miss never waits longer for
	// L2 (--l2-timeout).
	Timeout time.Duration

	// HotsetKey is the sorted set that running sidecars publish their hottest keys
	// into, and that prewarm reads first; "" turns publishing off (--hotset-key).
	HotsetKey string
	// HotsetInterval is how often this sidecar publishes (--hotset-interval).
	HotsetInterval time.Duration
	// HotsetSize is how many keys it publishes each time (--prewarm-keys).
	HotsetSize int

	// CanaryInterval is how often the invalidation-lag canary is written; negative
	// turns it off. The canary only runs with tracking.
	CanaryInterval time.Duration
	// ProbeInterval is how often the connection to L2 is checked while it is up.
	ProbeInterval time.Duration

	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
	// Registerer, when set, gets the tier's metrics.
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	c.L1TTL = cmp.Or(c.L1TTL, DefaultL1TTL)
	c.Write = cmp.Or(c.Write, WriteThrough)
	c.Invalidate = cmp.Or(c.Invalidate, InvalidateTracking)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.HotsetInterval = cmp.Or(c.HotsetInterval, DefaultHotsetInterval)
	c.HotsetSize = cmp.Or(c.HotsetSize, DefaultHotsetSize)
	c.CanaryInterval = cmp.Or(c.CanaryInterval, DefaultCanaryInterval)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, DefaultProbeInterval)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// Validate reports the first invalid field, with defaults applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := ParseURL(c.URL); err != nil {
		return err
	}
	switch {
	case c.L1TTL < time.Millisecond:
		return fmt.Errorf("l2: l1 ttl %v: want at least 1ms", c.L1TTL)
	case c.NegativeTTL < 0:
		return errors.New("l2: negative ttl is negative")
	case c.Write != WriteThrough && c.Write != WriteNone:
		return fmt.Errorf("l2: write mode %q: want %s or %s", c.Write, WriteThrough, WriteNone)
	case c.Invalidate != InvalidateTracking && c.Invalidate != InvalidateNone:
		return fmt.Errorf("l2: invalidate mode %q: want %s or %s", c.Invalidate, InvalidateTracking, InvalidateNone)
	case c.Timeout < 0:
		return errors.New("l2: timeout is negative")
	case c.HotsetInterval < 0:
		return errors.New("l2: hotset interval is negative")
	case c.HotsetSize < 0:
		return errors.New("l2: hotset size is negative")
	case c.ProbeInterval < 0:
		return errors.New("l2: probe interval is negative")
	}
	return nil
}
