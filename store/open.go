package store

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
)

// Open opens or creates the store that cfg describes. With cfg.Dir set it reuses a
// segment left there by an earlier writer of the same size (a warm restart), keeping
// its entries and dropping any a crash left half-written.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
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
	s.v = newView(s.seg.mem, s.seed)
	s.v.testClock, s.v.wallClock = s.clock, s.clock
	nbLog2, arenaOff := s.v.nbLog2, s.v.lo
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
	if r := s.cfg.Repeatable; r != nil {
		s.seed = r.Seed
	}
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
