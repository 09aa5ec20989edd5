package store

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/xxh3"
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

	idle   atomic.Bool // the clock advances at the idle rate (see background)
	idleMu sync.Mutex  // orders idle decisions with wakes
	woken  bool        // a wake since the last decision; under idleMu
	wakeCh chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

// SetOptions qualify a Set.
type SetOptions struct {
	// TTL is the time to live; zero means no expiry. Negative is ErrInvalidTTL.
	TTL time.Duration
	// ExpireAt, when not zero, is the absolute expiry (it wins over TTL). A time in the
	// past stores nothing and deletes the key, as Redis does.
	ExpireAt time.Time
	// KeepTTL keeps the expiry of the value being replaced (Redis SET KEEPTTL).
	KeepTTL bool
	// Cond makes the write conditional on the key's presence.
	Cond Condition
}

// Condition is a precondition of a write.
type Condition uint8

const (
	Always    Condition = iota
	IfAbsent            // only if the key is absent (Redis NX)
	IfPresent           // only if the key is present (Redis XX)
)

// ExpireCond qualifies Expire as Redis EXPIRE's NX, XX, GT and LT options do.
type ExpireCond uint8

const (
	ExpireAlways ExpireCond = iota
	ExpireNX                // only if the key has no expiry
	ExpireXX                // only if the key has an expiry
	ExpireGT                // only if the new expiry is later (no expiry counts as infinite)
	ExpireLT                // only if the new expiry is earlier
)

// NoExpiry is what TTL returns for a key that never expires.
const NoExpiry time.Duration = -1

// Open opens or creates the store that cfg describes. With cfg.Dir set it reuses a
// segment left there by an earlier writer of the same size (a warm restart), keeping
// its entries and dropping any a crash left half-written.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	size := uint64(cfg.MaxMemory) &^ (4096 - 1)
	var seg *segment
	var err error
	if cfg.Dir == "" {
		seg, err = mapPrivate(size)
	} else {
		seg, err = openShared(cfg.Dir, size)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:      cfg,
		log:      cfg.Logger,
		seg:      seg,
		clock:    cfg.Clock,
		rb:       newReadBuffer(),
		weighted: cfg.MaxEntries == 0,
		wakeCh:   make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	recovered := false
	if seg.existing {
		n, err := s.recover()
		if err != nil {
			s.log.Warn("segment not reusable; starting empty", "path", seg.path, "reason", err)
		} else {
			recovered = true
			s.log.Info("segment recovered", "path", seg.path, "entries", n)
		}
	}
	if !recovered {
		if err := s.layout(); err != nil {
			seg.close()
			return nil, err
		}
	}
	s.publishClock(s.nowWrite())
	seg.store32(hdrState, stateActive)
	go s.background()
	return s, nil
}

// geometry derives the layout of a segment from its size alone, so that a writer
// restarting with the same size finds the same layout.
func geometry(size uint64) (nbLog2, maxDepth uint, dirOff, arenaOff uint64) {
	est := size - headerSize
	nb := est / 256 / bucketBytes // a table is about 1/256 of the segment
	nbLog2 = uint(bits.Len64(nb)) - 1
	nbLog2 = min(max(nbLog2, 3), 8)
	// Enough directory for entries of 40 bytes at 40% table load, with one level spare.
	tables := est/40/(uint64(slotsPerBucket)<<nbLog2*2/5) + 1
	maxDepth = uint(bits.Len64(tables)) + 1
	maxDepth = min(max(maxDepth, 4), maxDirDepth)
	dirOff = headerSize
	arenaOff = (dirOff + 4<<maxDepth + cacheLine - 1) &^ (cacheLine - 1)
	return
}

func (s *Store) initView() {
	size := s.seg.size
	nbLog2, maxDepth, dirOff, arenaOff := geometry(size)
	s.v = view{m: s.seg.mem, dirOff: dirOff, maxDepth: maxDepth, nbLog2: nbLog2, lo: arenaOff, hi: size, seed: s.seed}
	// Split a table at 90% full (or sooner, if a key's window fills).
	s.idx = index{v: &s.v, maxCount: int(uint64(slotsPerBucket) << nbLog2 * 9 / 10)}
	s.al = newAllocator(&s.v.m, arenaOff, size)
	s.fixedBytes = arenaOff + minBlock
	l := lists{m: &s.v.m, weighted: s.weighted}
	switch s.cfg.Eviction {
	case EvictionLRU:
		s.pol = &lru{lists: l, evict: true}
	case EvictionNone:
		s.pol = &lru{lists: l}
	default:
		s.pol = newTinyLFU(l, &s.sk, s.tagOf, func() uint64 { return s.sk.sampleSize }, s.seed)
	}
}

// layout writes a fresh, empty segment.
func (s *Store) layout() error {
	m := &s.seg.mem
	m.store32(hdrState, stateInit)
	m.store(hdrMagic, 0)
	s.seed = random64()
	s.initView()
	// A directory left by an earlier layout of this file must not point anywhere.
	clear(m.bytes(s.v.dirOff, s.v.lo-s.v.dirOff))
	m.store(hdrIndexVer, 0)
	m.store32(hdrGlobalDepth, 0)
	s.al.reset()
	s.idx.tables, s.idx.dirIDs, s.idx.depth = nil, nil, 0
	block, payload, ok := s.allocTable()
	if !ok {
		return fmt.Errorf("store: max memory %d too small for the index", s.cfg.MaxMemory)
	}
	s.idx.tables = append(s.idx.tables, table{off: payload, block: block})
	s.idx.dirIDs = []int32{0}
	m.store32(s.v.dirOff, uint32(payload/unit))
	if err := s.initSketch(); err != nil {
		return err
	}
	s.pol.reset()
	s.pol.setMaximum(s.maximum())
	s.writeHeader(uint64(s.now().UnixMilli()))
	s.updateUsed()
	return nil
}

func (s *Store) writeHeader(created uint64) {
	m := &s.seg.mem
	m.store32(hdrVersion, formatVersion)
	m.store32(hdrHeaderSize, headerSize)
	m.store(hdrSegSize, s.seg.size)
	m.store(hdrGeneration, random64())
	m.store(hdrSeed, s.seed)
	if created != 0 {
		m.store(hdrCreated, created)
	}
	m.store32(hdrWriterPid, uint32(os.Getpid()))
	m.store32(hdrBucketsLog2, uint32(s.v.nbLog2))
	m.store(hdrDirOffset, s.v.dirOff)
	m.store32(hdrDirMaxDepth, uint32(s.v.maxDepth))
	m.store32(hdrMaxKey, uint32(s.cfg.MaxKeySize))
	m.store(hdrArenaOffset, s.v.lo)
	m.store(hdrArenaSize, s.v.hi-s.v.lo)
	m.store(hdrMaxValue, uint64(s.cfg.MaxValueSize))
	m.store(hdrMagic, segmentMagic)
}

func random64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// maximum is what the policy may hold: entries, or bytes the arena has for entries.
func (s *Store) maximum() uint64 {
	if !s.weighted {
		return uint64(s.cfg.MaxEntries)
	}
	return s.al.capacity() - s.sysBytes
}

func (s *Store) updateUsed() {
	s.used.Store(s.fixedBytes + s.sysBytes + s.entryBytes)
}

// Hash returns the hash the segment files key under, for a Reader's refs and tests.
func (s *Store) hash(key []byte) uint64 { return xxh3.HashSeed(key, s.seed) }

// tagOf is the policy's handle on an entry's key: its hash's top 32 bits.
func (s *Store) tagOf(e uint64) uint64 { return s.hashOf(e) >> 32 }

func (s *Store) hashOf(e uint64) uint64 {
	klen := w0Klen(s.v.m.load(e))
	return xxh3.HashSeed(s.v.m.bytes(e+entryHeader, uint64(klen)), s.seed)
}

// now is the writer's clock: exact.
func (s *Store) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

func (s *Store) nowWrite() int64 { return s.now().UnixMilli() }

// nowRead is the readers' clock: the one the writer publishes in the header, unless a
// test clock is set.
func (s *Store) nowRead() int64 {
	if s.clock != nil {
		return s.clock().UnixMilli()
	}
	return int64(s.v.m.load(hdrClock))
}

func (s *Store) publishClock(ms int64) {
	if int64(s.v.m.load(hdrClock)) < ms {
		s.v.m.store(hdrClock, uint64(ms))
	}
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

// Get appends the value of key to dst. It never blocks and, given a dst with room,
// never allocates.
func (s *Store) Get(key, dst []byte) ([]byte, bool, error) {
	if err := s.checkKey(key); err != nil {
		return dst, false, err
	}
	if s.closed.Load() {
		return dst, false, ErrClosed
	}
	if s.idle.Load() {
		s.wake()
	}
	h := s.hash(key)
	out, ref, res := s.v.get(h, key, dst, s.nowRead())
	switch res {
	case resHit:
		if !s.rb.hit(ref) {
			s.tryDrain()
		}
		return out, true, nil
	case resMiss:
		s.rb.miss()
		return out, false, nil
	}
	if s.closed.Load() {
		return dst, false, ErrClosed
	}
	if res == resCorrupt {
		return dst, false, ErrCorrupt
	}
	// The writer kept changing what we read (a long transaction): wait for it.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return dst, false, ErrClosed
	}
	out, ref, res = s.v.get(h, key, dst, s.nowRead())
	if res == resHit {
		s.pol.access(ref&0xffffffff*unit, ref>>32, 1)
		s.rb.countHit()
		return out, true, nil
	}
	s.rb.miss()
	return out, false, nil
}

// GetMany looks each key up as Get does and calls fn with its index, its value (valid
// only during the call) and whether it was found.
func (s *Store) GetMany(keys [][]byte, fn func(i int, value []byte, found bool, err error)) {
	var buf []byte
	for i, k := range keys {
		v, ok, err := s.Get(k, buf[:0])
		fn(i, v, ok, err)
		buf = v
	}
}

func (s *Store) tryDrain() {
	if s.mu.TryLock() {
		if !s.closed.Load() {
			s.drain()
		}
		s.mu.Unlock()
	}
}

// drain feeds buffered reads to the policy and lets it adapt, as every write does
// first. Caller holds mu.
func (s *Store) drain() {
	s.rb.drain(s.recordRef)
	s.pol.maintain()
}

// recordRef validates a slot word that a reader reported, then counts the access. A
// ref may be stale (the entry was replaced or evicted since) or, from another process,
// anything at all: only a ref that the index still holds reaches the policy.
func (s *Store) recordRef(ref uint64, n int) {
	if e, ok := s.resolveRef(ref); ok {
		s.pol.access(e, ref>>32, n)
	}
}

func (s *Store) resolveRef(ref uint64) (uint64, bool) {
	e := ref & 0xffffffff * unit
	if e < s.v.lo || e+minBlock > s.al.sentinel() {
		return 0, false
	}
	w0 := s.v.m.load(e)
	klen := w0Klen(w0)
	if w0&w0Free != 0 || w0Kind(w0) != kindEntry || klen == 0 ||
		e+w0Size(w0)*unit > s.al.sentinel() || uint64(entryHeader+klen) > w0Size(w0)*unit {
		return 0, false
	}
	h := s.hashOf(e)
	if h>>32 != ref>>32 {
		return 0, false
	}
	if _, ok := s.idx.findEntry(h, e); !ok {
		return 0, false
	}
	return e, true
}

// RecordAccess counts hits that Readers in other processes made, so that they reach the
// policy and the hit counter. refs are the values Reader.Get returned; unreported is
// the number of further hits the reader made but does not name (a reader may send a
// sample of a hot loop), which count in the statistics only.
func (s *Store) RecordAccess(refs []uint64, unreported uint64) {
	if s.idle.Load() {
		s.wake()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	for _, r := range refs {
		s.recordRef(r, 1)
	}
	s.sdk.Add(uint64(len(refs)) + unreported)
}

// Set stores value under key. It reports whether it stored (false when Cond was not
// met).
func (s *Store) Set(key, value []byte, opt SetOptions) (bool, error) {
	if err := s.checkKey(key); err != nil {
		return false, err
	}
	if err := s.checkValue(key, value); err != nil {
		return false, err
	}
	if opt.TTL < 0 {
		return false, fmt.Errorf("%w: %v", ErrInvalidTTL, opt.TTL)
	}
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false, ErrClosed
	}
	s.drain()
	return s.set(h, key, value, opt, s.tick())
}

// tick returns the clock a write judges expiry by: the readers' clock, so that the
// writer and every reader agree on what has expired. A test clock is published first.
// Caller holds mu.
func (s *Store) tick() int64 {
	if s.clock != nil {
		s.publishClock(s.nowWrite())
	} else if s.idle.Load() {
		s.wake()
	}
	return int64(s.v.m.load(hdrClock))
}

func (s *Store) expiry(opt SetOptions, now int64, old uint64) (exp int64, err error) {
	switch {
	case !opt.ExpireAt.IsZero():
		exp = opt.ExpireAt.UnixMilli()
		if exp <= 0 {
			return 0, fmt.Errorf("%w: expire at %v", ErrInvalidTTL, opt.ExpireAt)
		}
	case opt.KeepTTL:
		exp = int64(old)
	case opt.TTL > 0:
		// A TTL counts from now exactly, not from the coarse clock.
		ms := (opt.TTL + time.Millisecond - 1) / time.Millisecond
		exp = max(now, s.nowWrite()) + int64(ms)
	}
	if exp > w1ExpMask {
		return 0, fmt.Errorf("%w: expiry %d ms is beyond the year 10000", ErrInvalidTTL, exp)
	}
	return exp, nil
}

func (s *Store) expired(e uint64, now int64) bool {
	exp := int64(s.v.m.load(e+8) & w1ExpMask)
	return exp != 0 && exp <= now
}

// set is Set with mu held.
func (s *Store) set(h uint64, key, value []byte, opt SetOptions, now int64) (bool, error) {
	so, e, found := s.idx.find(h, key)
	if found && s.expired(e, now) {
		s.removeEntry(h, so, e, &s.expirations)
		found = false
	}
	switch {
	case opt.Cond == IfAbsent && found, opt.Cond == IfPresent && !found:
		return false, nil
	}
	var oldExp uint64
	if found {
		oldExp = s.v.m.load(e+8) & w1ExpMask
	}
	exp, err := s.expiry(opt, now, oldExp)
	if err != nil {
		return false, err
	}
	if exp != 0 && exp <= now {
		if found {
			s.removeEntry(h, so, e, &s.deletes)
		}
		s.sets.Add(1)
		return true, nil
	}
	units, _ := entryUnits(len(key), len(value))
	m := &s.v.m
	if found {
		if pad, ok := fitsInPlace(m.load(e), len(key), len(value)); ok {
			// The block still fits: rewrite it in place while its bucket is odd.
			s.idx.touchBucket(so, func() {
				m.store(e, w0Pack(w0Size(m.load(e)), len(key), pad, kindEntry))
				w1 := m.load(e + 8)
				m.store(e+8, w1&^w1ExpMask|uint64(exp))
				copy(m.bytes(e+entryHeader+uint64(len(key)), uint64(len(value))), value)
			})
			s.countExpiring(int64(oldExp), exp)
			s.pol.access(e, h>>32, 1)
			s.sets.Add(1)
			return true, nil
		}
	}
	if !found {
		if err := s.ensureSlot(h); err != nil {
			return false, err
		}
	}
	ne, got, err := s.allocBlock(units)
	if err != nil {
		return false, err
	}
	pad := int(got*unit) - entryHeader - len(key) - len(value)
	m.store(ne, w0Pack(got, len(key), pad, kindEntry))
	m.store(ne+8, uint64(exp))
	m.put(ne+16, 0)
	copy(m.bytes(ne+entryHeader, uint64(len(key))), key)
	copy(m.bytes(ne+entryHeader+uint64(len(key)), uint64(len(value))), value)
	// Evictions while allocating may have removed the old entry or moved its slot.
	if found {
		so, e, found = s.idx.find(h, key)
	}
	if found {
		s.idx.replace(so, ne)
		s.pol.replace(e, ne, h>>32)
		s.entryBytes -= w0Size(m.load(e)) * unit
		s.countExpiring(int64(m.load(e+8)&w1ExpMask), exp)
		s.al.release(e)
	} else {
		s.countExpiring(0, exp)
		if err := s.idx.insert(h, ne); err != nil {
			// ensureSlot made room and evictions only free slots; this is a bug, not a
			// condition, but the block must not leak.
			s.al.release(ne)
			return false, fmt.Errorf("store: index: %w", err)
		}
		s.pol.add(ne, h>>32)
		s.entries.Add(1)
	}
	s.entryBytes += got * unit
	s.sets.Add(1)
	if !s.weighted {
		s.evictToCount()
	}
	s.updateUsed()
	return true, nil
}

// fitsInPlace reports whether an entry with these lengths fits the block whose w0 is
// given, and the padding it would leave there.
func fitsInPlace(w0 uint64, klen, vlen int) (int, bool) {
	pad := int(w0Size(w0)*unit) - entryHeader - klen - vlen
	return pad, pad >= 0 && pad <= w0PadMask
}

// ensureSlot makes sure the index table that h falls in can take one more entry,
// splitting it if needed.
func (s *Store) ensureSlot(h uint64) error {
	for {
		t := s.idx.tableOf(h)
		if t.count < s.idx.maxCount && s.idx.hasRoom(t, h) {
			return nil
		}
		if !s.idx.canSplit(h) {
			// The directory is as deep as the segment allows: make room in the window.
			return s.evictFromWindow(h)
		}
		block, payload, ok := s.allocTable()
		if !ok {
			return fmt.Errorf("%w: no room to grow the index", ErrOutOfMemory)
		}
		dropped := s.idx.split(h, block, payload, s.hashOf)
		for _, e := range dropped {
			s.dropEntry(e, &s.evictions)
		}
		s.pol.setMaximum(s.maximum())
	}
}

// evictFromWindow evicts the entry in h's probe window that the policy values least.
func (s *Store) evictFromWindow(h uint64) error {
	if s.cfg.Eviction == EvictionNone {
		return fmt.Errorf("%w: index full", ErrOutOfMemory)
	}
	var victim uint64
	s.idx.forWindow(h, func(so, slot uint64) {
		if victim == 0 {
			victim = slot & 0xffffffff * unit
		}
	})
	if victim == 0 {
		return fmt.Errorf("%w: index full", ErrOutOfMemory)
	}
	vh := s.hashOf(victim)
	so, _ := s.idx.findEntry(vh, victim)
	s.removeEntry(vh, so, victim, &s.evictions)
	return nil
}

// allocTable allocates and zeroes a block for an index table.
func (s *Store) allocTable() (block, payload uint64, ok bool) {
	block, units, err := s.allocBlock(tableBlockUnits(s.v.nbLog2))
	if err != nil {
		return 0, 0, false
	}
	m := &s.v.m
	m.store(block, w0Pack(units, 0, 0, kindTable))
	m.store(block+8, 0)
	payload = tablePayload(block)
	m.store(payload-8, block)
	clear(m.bytes(payload, bucketBytes<<s.v.nbLog2))
	s.sysBytes += units * unit
	return block, payload, true
}

// initSketch sizes the sketch for the policy: MaxEntries, or what the arena could hold
// at a typical entry size, and grows it (growSketch) as entries arrive.
func (s *Store) initSketch() error {
	if s.cfg.Eviction != EvictionLFU {
		return nil
	}
	capacity := uint64(1024)
	if !s.weighted {
		capacity = uint64(s.cfg.MaxEntries)
	}
	return s.placeSketch(capacity)
}

func (s *Store) placeSketch(capacity uint64) error {
	block, units, err := s.allocBlock(sketchBlockUnits(capacity))
	if err != nil {
		return err
	}
	m := &s.v.m
	m.store(block, w0Pack(units, 0, 0, kindSketch))
	m.store(block+8, 0)
	if old := s.sk.block; old != 0 {
		s.sysBytes -= w0Size(m.load(old)) * unit
		s.al.release(old)
	}
	s.sk.init(sketchAt(m, block, capacity), block, capacity)
	s.sysBytes += units * unit
	return nil
}

// growSketch resizes the sketch to the next power of two above the number of entries
// once they outnumber it. Caller holds mu.
func (s *Store) growSketch() {
	if s.cfg.Eviction != EvictionLFU || !s.weighted {
		return
	}
	n := uint64(s.entries.Load())
	if n <= s.sk.capacity {
		return
	}
	if err := s.placeSketch(uint64(1) << bits.Len64(n-1)); err != nil {
		s.log.Debug("sketch stays small", "err", err)
	}
	s.pol.setMaximum(s.maximum())
}

// allocBlock allocates at least units units, evicting as the policy decides until they
// fit, and returns the block and its size (a little more than asked when the rest was
// too small to split off). Caller holds mu.
//
// Eviction frees a victim's block merged with its free neighbours. When that hole is
// large enough it is used at once. When memory is free overall but scattered, the hole
// around the last victim grows over its physical neighbours instead: evicting more
// policy victims, scattered as they are, would empty the cache long before two of them
// happened to sit side by side.
func (s *Store) allocBlock(units uint64) (uint64, uint64, error) {
	if off, got, ok := s.al.alloc(units); ok {
		return off, got, nil
	}
	s.pol.beginEviction()
	for {
		e, ok := s.pol.victim()
		if !ok {
			// Policies without a victim (noeviction) still drop what has expired.
			if _, n := s.sweepStep(1 << 16); n == 0 {
				return 0, 0, ErrOutOfMemory
			}
			if off, got, ok := s.al.alloc(units); ok {
				return off, got, nil
			}
			continue
		}
		hole, size := s.dropEntry(e, &s.evictions)
		if size < units && s.al.free >= units*unit {
			hole, size = s.growHole(hole, units)
		}
		if size >= units {
			off, got := s.al.take(hole, size, units)
			return off, got, nil
		}
		if off, got, ok := s.al.alloc(units); ok {
			return off, got, nil
		}
	}
}

// growHole evicts the entries that follow the free block at hole until it spans units,
// stopping at an index table, the sketch or the arena's end. It returns the free block
// that now holds hole.
func (s *Store) growHole(hole, units uint64) (uint64, uint64) {
	m := &s.v.m
	size := w0Size(m.load(hole))
	for size < units {
		next := hole + size*unit
		w0 := m.load(next)
		if w0&w0Free != 0 || w0Kind(w0) != kindEntry {
			break // a free block would have merged; anything else cannot move
		}
		hole, size = s.dropEntry(next, &s.evictions)
	}
	return hole, size
}

// dropEntry removes the entry at e from the index, the policy and the arena, counting
// it in c (evictions, expirations or deletes).
// It returns the free block, merged with its neighbours, that now holds e.
func (s *Store) dropEntry(e uint64, c *atomic.Uint64) (uint64, uint64) {
	h := s.hashOf(e)
	so, ok := s.idx.findEntry(h, e)
	if !ok {
		// Not indexed (a split could not place it): only the policy and arena hold it.
		s.pol.remove(e)
		s.entryBytes -= w0Size(s.v.m.load(e)) * unit
		s.countExpiring(int64(s.v.m.load(e+8)&w1ExpMask), 0)
		s.entries.Add(-1)
		c.Add(1)
		return s.al.release(e)
	}
	return s.removeEntry(h, so, e, c)
}

// countExpiring keeps the count of entries with an expiry as one goes from old to exp.
func (s *Store) countExpiring(old, exp int64) {
	switch {
	case old == 0 && exp != 0:
		s.expiring.Add(1)
	case old != 0 && exp == 0:
		s.expiring.Add(-1)
	}
}

func (s *Store) removeEntry(h, so, e uint64, c *atomic.Uint64) (uint64, uint64) {
	if c == &s.evictions && s.expired(e, s.nowRead()) {
		c = &s.expirations
	}
	s.countExpiring(int64(s.v.m.load(e+8)&w1ExpMask), 0)
	s.idx.remove(h, so)
	s.pol.remove(e)
	s.entryBytes -= w0Size(s.v.m.load(e)) * unit
	s.entries.Add(-1)
	c.Add(1)
	hole, size := s.al.release(e)
	s.updateUsed()
	return hole, size
}

// evictToCount evicts until the entry count is within MaxEntries.
func (s *Store) evictToCount() {
	if s.entries.Load() <= int64(s.cfg.MaxEntries) {
		return
	}
	s.pol.beginEviction()
	for s.entries.Load() > int64(s.cfg.MaxEntries) {
		e, ok := s.pol.victim()
		if !ok {
			return
		}
		s.dropEntry(e, &s.evictions)
	}
}

// Delete removes key and reports whether it was there.
func (s *Store) Delete(key []byte) (bool, error) {
	if err := s.checkKey(key); err != nil {
		return false, err
	}
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false, ErrClosed
	}
	s.drain()
	return s.delete(h, key, s.tick()), nil
}

func (s *Store) delete(h uint64, key []byte, now int64) bool {
	so, e, ok := s.idx.find(h, key)
	if !ok {
		return false
	}
	if s.expired(e, now) {
		s.removeEntry(h, so, e, &s.expirations)
		return false
	}
	s.removeEntry(h, so, e, &s.deletes)
	return true
}

// Expire sets the expiry of key to at (zero time: no expiry, as PERSIST) if cond holds,
// and reports whether it changed anything. An expiry in the past deletes the key.
func (s *Store) Expire(key []byte, at time.Time, cond ExpireCond) (bool, error) {
	if err := s.checkKey(key); err != nil {
		return false, err
	}
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false, ErrClosed
	}
	s.drain()
	return s.expire(h, key, at, cond, s.tick())
}

func (s *Store) expire(h uint64, key []byte, at time.Time, cond ExpireCond, now int64) (bool, error) {
	so, e, ok := s.idx.find(h, key)
	if !ok {
		return false, nil
	}
	if s.expired(e, now) {
		s.removeEntry(h, so, e, &s.expirations)
		return false, nil
	}
	var exp int64
	if !at.IsZero() {
		exp = at.UnixMilli()
		if exp <= 0 || exp > w1ExpMask {
			return false, fmt.Errorf("%w: expire at %v", ErrInvalidTTL, at)
		}
	}
	cur := int64(s.v.m.load(e+8) & w1ExpMask)
	inf := func(x int64) int64 {
		if x == 0 {
			return 1<<63 - 1
		}
		return x
	}
	switch cond {
	case ExpireNX:
		if cur != 0 {
			return false, nil
		}
	case ExpireXX:
		if cur == 0 {
			return false, nil
		}
	case ExpireGT:
		if inf(exp) <= inf(cur) {
			return false, nil
		}
	case ExpireLT:
		if inf(exp) >= inf(cur) {
			return false, nil
		}
	}
	if exp != 0 && exp <= now {
		s.removeEntry(h, so, e, &s.deletes)
		return true, nil
	}
	if at.IsZero() && cur == 0 {
		return false, nil
	}
	m := &s.v.m
	s.idx.touchBucket(so, func() {
		w1 := m.load(e + 8)
		m.store(e+8, w1&^w1ExpMask|uint64(exp))
	})
	s.countExpiring(cur, exp)
	return true, nil
}

// TTL returns the time key has left, NoExpiry for a key without expiry, and ok ==
// false for a missing key.
func (s *Store) TTL(key []byte) (ttl time.Duration, ok bool, err error) {
	if err := s.checkKey(key); err != nil {
		return 0, false, err
	}
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0, false, ErrClosed
	}
	ttl, ok = s.ttl(h, key, s.now())
	return ttl, ok, nil
}

func (s *Store) ttl(h uint64, key []byte, now time.Time) (time.Duration, bool) {
	_, e, ok := s.idx.find(h, key)
	if !ok {
		return 0, false
	}
	exp := int64(s.v.m.load(e+8) & w1ExpMask)
	switch {
	case exp == 0:
		return NoExpiry, true
	case exp <= now.UnixMilli():
		return 0, false
	}
	return time.UnixMilli(exp).Sub(now), true
}

// Item is one entry of SetMany.
type Item struct {
	Key, Value []byte
	Options    SetOptions
}

// SetMany stores items under one acquisition of the write lock. It returns nil if
// every item was stored, or a slice aligned with items holding each item's error.
// Items whose condition was not met get no error; stored reports them.
func (s *Store) SetMany(items []Item, stored []bool) []error {
	var errs []error
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(items))
		}
		errs[i] = err
	}
	hashes := make([]uint64, len(items))
	for i, it := range items {
		if err := s.checkKey(it.Key); err != nil {
			fail(i, err)
		} else if err := s.checkValue(it.Key, it.Value); err != nil {
			fail(i, err)
		} else if it.Options.TTL < 0 {
			fail(i, fmt.Errorf("%w: %v", ErrInvalidTTL, it.Options.TTL))
		} else {
			hashes[i] = s.hash(it.Key)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		for i := range items {
			fail(i, ErrClosed)
		}
		return errs
	}
	s.drain()
	now := s.tick()
	for i, it := range items {
		if errs != nil && errs[i] != nil {
			continue
		}
		ok, err := s.set(hashes[i], it.Key, it.Value, it.Options, now)
		if err != nil {
			fail(i, err)
		}
		if stored != nil {
			stored[i] = ok
		}
	}
	return errs
}

// Len is the number of entries, counting expired ones not yet reclaimed.
func (s *Store) Len() int { return int(s.entries.Load()) }

// Clear removes every entry.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	s.drain()
	s.clear()
}

func (s *Store) clear() {
	var es []uint64
	s.idx.forEachSlot(func(so, slot uint64) { es = append(es, slot&0xffffffff*unit) })
	for _, e := range es {
		s.dropEntry(e, &s.deletes)
	}
}

// Hottest returns up to n keys, the most valuable to keep first: what prewarm loads
// and what a sidecar publishes for others to prewarm.
func (s *Store) Hottest(n int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() || n <= 0 {
		return nil
	}
	s.drain()
	now := s.nowRead()
	// The policy orders entries by its own notion of value (recency within the
	// protected space first); rank a wider set of them by how often they were
	// requested, which is what a prewarm or a published hotset wants.
	want := min(n, s.Len())
	cands := make([]uint64, 0, min(4*want, s.Len()))
	s.pol.hottest(func(e uint64) bool {
		if !s.expired(e, now) {
			cands = append(cands, e)
		}
		return len(cands) < cap(cands)
	})
	if lfu, ok := s.pol.(*tinyLFU); ok {
		freq := make(map[uint64]uint64, len(cands))
		for _, e := range cands {
			freq[e] = lfu.sk.frequency(s.tagOf(e))
		}
		slices.SortStableFunc(cands, func(a, b uint64) int { return cmpU64(freq[b], freq[a]) })
	}
	keys := make([][]byte, 0, want)
	for _, e := range cands[:min(want, len(cands))] {
		k := s.v.m.bytes(e+entryHeader, uint64(w0Klen(s.v.m.load(e))))
		keys = append(keys, append([]byte(nil), k...))
	}
	return keys
}

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

// Clock rates. While the store is busy the readers' clock advances every millisecond,
// so expiry is exact to the millisecond; after idleAfter without an operation it
// advances every idleTick, so an idle sidecar costs almost no CPU. The first operation
// in this process after a quiet spell sets the clock itself (wake), so only readers in
// other processes ever see the coarser clock, and only until their reported hits wake
// the store.
const (
	busyTick     = time.Millisecond
	idleTick     = 25 * time.Millisecond
	idleAfter    = 100 * time.Millisecond
	maintainTick = 100 * time.Millisecond
)

// background advances the readers' clock and, every maintainTick, feeds buffered reads
// to the policy, adapts it, and reclaims expired entries.
func (s *Store) background() {
	defer close(s.done)
	t := time.NewTimer(busyTick)
	defer t.Stop()
	var lastOps uint64
	lastActive, lastMaintain := time.Now(), time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wakeCh:
		case <-t.C:
		}
		now := time.Now()
		if s.clock == nil {
			s.publishClock(now.UnixMilli())
		}
		// Deciding "idle" and waking take idleMu, so a wake that races the decision
		// (an operation under way but not counted yet) is never overwritten.
		s.idleMu.Lock()
		if ops := s.ops(); ops != lastOps || s.woken {
			lastOps, lastActive, s.woken = ops, now, false
		}
		idle := now.Sub(lastActive) > idleAfter
		s.idle.Store(idle)
		s.idleMu.Unlock()
		if now.Sub(lastMaintain) >= maintainTick {
			lastMaintain = now
			s.maintain()
		}
		t.Stop()
		select {
		case <-t.C:
		default:
		}
		if idle {
			t.Reset(idleTick)
		} else {
			t.Reset(busyTick)
		}
	}
}

// ops counts operations, for telling a busy store from an idle one.
func (s *Store) ops() uint64 {
	hits, misses := s.rb.counts()
	return hits + misses + s.sets.Load() + s.deletes.Load() + s.sdk.Load()
}

// wake brings the clock up to date after a quiet spell and returns the background loop
// to the busy rate.
func (s *Store) wake() {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if !s.idle.Load() {
		return
	}
	s.idle.Store(false)
	s.woken = true
	if s.clock == nil {
		s.publishClock(time.Now().UnixMilli())
	}
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *Store) maintain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	s.drain()
	s.pol.maintain()
	s.growSketch()
	s.sweep()
}

// Config returns the configuration the store runs with, defaults applied.
func (s *Store) Config() Config { return s.cfg }
