package store

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Store is a memory-bounded cache of byte-string keys and values that lives in one
// segment. One process writes it; any number of goroutines, and other processes that map
// the segment read-only (see Reader), read it without locks.
//
// Reads (Get, GetMany) never block. Everything else takes the store's write lock.
type Store struct {
	cfg  Config
	log  *slog.Logger
	seg  *segment
	v    view
	idx  index
	al   *allocator
	pol  policy
	sk   sketch
	rb   *readBuffer
	seed uint64

	mu     sync.Mutex
	tx     Tx // the one transaction that can run at a time (see newTx)
	closed atomic.Bool
	clock  func() time.Time // nil: wall clock

	weighted   bool   // policy weighs entries in bytes (false with MaxEntries)
	entryBytes uint64 // bytes in entry blocks
	sysBytes   uint64 // bytes in index tables and the sketch
	fixedBytes uint64 // header and directory
	sweepTable int    // expiry sweep cursor
	sweepBkt   uint64

	entries                                    atomic.Int64
	expiring                                   atomic.Int64 // entries with an expiry
	sets, deletes, evictions, expirations, sdk atomic.Uint64
	used                                       atomic.Uint64

	stop chan struct{}
	done chan struct{}
}

// hash is the hash the segment files key under (see hashKey).
func (s *Store) hash(key []byte) uint64 { return hashKey(key, s.seed) }

// tagOf is the policy's handle on an entry's key: its hash's top 32 bits.
func (s *Store) tagOf(e uint64) uint64 { return s.hashOf(e) >> 32 }

func (s *Store) hashOf(e uint64) uint64 {
	klen := w0Klen(s.v.m.load(e))
	return hashKey(s.v.m.bytes(e+entryHeader, uint64(klen)), s.seed)
}

func (s *Store) checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrKeyEmpty
	case len(key) > s.cfg.MaxKeySize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), s.cfg.MaxKeySize)
	}
	return nil
}

func (s *Store) checkValue(key, value []byte) error {
	if len(value) > s.cfg.MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(value), s.cfg.MaxValueSize)
	}
	// An entry must also fit in the arena beside the index and sketch, with room left
	// for others: never more than half of it.
	if units, _ := entryUnits(len(key), len(value)); units*unit > s.al.capacity()/2 {
		return fmt.Errorf("%w: %d bytes can never fit in %d bytes of memory", ErrValueTooLarge, len(value), s.cfg.MaxMemory)
	}
	return nil
}

// Len is the number of entries, counting expired ones not yet reclaimed.
func (s *Store) Len() int { return int(s.entries.Load()) }

// Stats are the store's counters.
type Stats struct {
	Hits, Misses uint64 // reads in this process, plus hits Readers reported
	Sets         uint64
	Deletes      uint64
	Evictions    uint64
	Expirations  uint64
	Entries      int64
	Expiring     int64 // entries with an expiry (INFO keyspace's expires)
	BytesUsed    int64 // segment bytes in use: header, directory, index, sketch, entries
	BytesLimit   int64 // the segment's size, MaxMemory rounded down to a page
	Generation   uint64
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	hits, misses := s.rb.counts()
	return Stats{
		Hits:        hits + s.sdk.Load(),
		Misses:      misses,
		Sets:        s.sets.Load(),
		Deletes:     s.deletes.Load(),
		Evictions:   s.evictions.Load(),
		Expirations: s.expirations.Load(),
		Entries:     s.entries.Load(),
		Expiring:    s.expiring.Load(),
		BytesUsed:   int64(s.used.Load()),
		BytesLimit:  int64(s.seg.size),
		Generation:  s.v.m.load(hdrGeneration),
	}
}

// SegmentPath is the segment file's path, or "" for private memory.
func (s *Store) SegmentPath() string { return s.seg.path }

// Close stops the store. A shared segment stays on disk for the next writer to reuse;
// its readers see it closed and stop reading it.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	s.seg.store32(hdrState, stateClosed)
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.seg.close()
}

// Config returns the configuration the store runs with, defaults applied.
func (s *Store) Config() Config { return s.cfg }
