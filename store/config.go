package store

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"
)

// Eviction policy names, as the --eviction flag takes them.
const (
	EvictionLFU  = "cachee-lfu" // W-TinyLFU with an adaptive window (the default)
	EvictionLRU  = "lru"
	EvictionNone = "noeviction" // writes fail with ErrOutOfMemory when full, as in Redis
)

// Limits on the configuration.
const (
	MinMemory = 256 << 10
	MaxMemory = 16 << 30
)

// Config configures a Store. The zero value is usable: every zero field takes its
// default (see DefaultConfig).
type Config struct {
	// Dir is the directory that holds the shared segment file (cachee.seg). Empty means
	// private memory: the store behaves the same but no other process can map it.
	Dir string

	// MaxMemory bounds everything the store keeps, in bytes: index, entries, and
	// metadata all live in one segment of this size. Default 256 MiB.
	MaxMemory int64

	// MaxKeySize and MaxValueSize bound single keys and values in bytes. Defaults
	// 64 KiB and 1 MiB.
	MaxKeySize   int
	MaxValueSize int

	// Eviction names the policy: EvictionLFU (default), EvictionLRU or EvictionNone.
	Eviction string

	// MaxEntries, when positive, also bounds the number of entries; the policy then
	// weighs every entry as one. The hit-rate simulator uses it to replay traces sized
	// in entries. Zero bounds by memory alone.
	MaxEntries int

	// Clock, when set, replaces the wall clock for expiry (tests). The store reads it
	// whenever it decides by the time (see docs/store.md, "The clock").
	Clock func() time.Time

	// Logger receives recovery and maintenance events. Default slog.Default().
	Logger *slog.Logger

	// Repeatable, when set, makes a new store's eviction decisions depend on its
	// operations alone, for the hit-rate simulator and tests. Servers leave it nil: a
	// known hash seed lets clients choose keys that collide.
	Repeatable *Repeatable
}

// Repeatable fixes what otherwise differs between two stores given the same operations:
// the hash seed, and when the policy's periodic maintenance runs. With it the background
// loop no longer drains buffered reads, adapts the window or reclaims expired entries on
// its timer; the caller runs that work with Store.Maintain where the timer would have
// (writes still drain and adapt first, as always).
type Repeatable struct {
	// Seed replaces the random key hash seed of a new segment; the sketch's counters,
	// the window tuner's sample of keys and the policy's random admissions follow from
	// it.
	Seed uint64
}

// DefaultConfig returns the configuration that the zero value stands for.
func DefaultConfig() Config {
	return Config{
		MaxMemory:    256 << 20,
		MaxKeySize:   64 << 10,
		MaxValueSize: 1 << 20,
		Eviction:     EvictionLFU,
	}
}

// WithDefaults returns c with every zero field set to what Open puts there: the
// limits the store will apply, for whoever must know them before opening it.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	c.MaxMemory = cmp.Or(c.MaxMemory, d.MaxMemory)
	c.MaxKeySize = cmp.Or(c.MaxKeySize, d.MaxKeySize)
	if c.MaxValueSize == 0 {
		// A small store keeps values to a quarter of itself.
		c.MaxValueSize = int(min(int64(d.MaxValueSize), c.MaxMemory/4))
	}
	c.Eviction = cmp.Or(c.Eviction, d.Eviction)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// Validate reports the first invalid field, with defaults applied.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MaxMemory < MinMemory || c.MaxMemory > MaxMemory:
		return fmt.Errorf("store: max memory %d out of range [%d, %d]", c.MaxMemory, MinMemory, MaxMemory)
	case c.MaxKeySize < 1 || c.MaxKeySize > maxKeyLimit:
		return fmt.Errorf("store: max key size %d out of range [1, %d]", c.MaxKeySize, maxKeyLimit)
	case c.MaxValueSize < 0 || int64(c.MaxValueSize) > c.MaxMemory/2:
		return fmt.Errorf("store: max value size %d out of range [0, %d]", c.MaxValueSize, c.MaxMemory/2)
	case c.MaxEntries < 0:
		return fmt.Errorf("store: max entries %d is negative", c.MaxEntries)
	}
	switch c.Eviction {
	case EvictionLFU, EvictionLRU, EvictionNone:
	default:
		return fmt.Errorf("store: unknown eviction policy %q (want %s, %s or %s)",
			c.Eviction, EvictionLFU, EvictionLRU, EvictionNone)
	}
	return nil
}
