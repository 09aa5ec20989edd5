package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// Conformance fixtures: segments written by this package's own writer and then, where a
// case needs it, patched the way a crash, another writer or a hostile file would leave
// them, together with the result docs/segment-format.md requires of every reader for
// each lookup. Every reader of the segment (Go here, Rust in sdk/shm, and whatever binds
// or mirrors them) runs every case. Everything is fixed (seed, generation, clocks), so
// the output is the same bytes on every run.

// Expected results of a fixture case.
const (
	FixtureHit      = "hit"        // the value and the ref given
	FixtureMiss     = "miss"       // the segment does not hold the key, or it has expired
	FixtureWrongTyp = "wrong_type" // an entry of another value type: ask the sidecar
	FixtureRetry    = "retry"      // bounded retries ran out (a writer mid-change): ask the sidecar
	FixtureCorrupt  = "corrupt"    // the bytes contradict the format while nothing changes them
	FixtureStale    = "stale"      // the segment is not active (at open or at the lookup)
	FixtureFormat   = "format"     // not a segment this reader can read (at open)
)

// FixtureBytes is a byte string in the fixtures' JSON: Hex decoded and, when Len is
// set, repeated and cut to Len bytes (long keys and values stay short in the file).
type FixtureBytes struct {
	Hex string `json:"hex"`
	Len int    `json:"len,omitempty"`
}

// Bytes decodes b.
func (b FixtureBytes) Bytes() ([]byte, error) {
	p, err := hex.DecodeString(b.Hex)
	if err != nil {
		return nil, err
	}
	if b.Len == 0 {
		return p, nil
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("fixture bytes: len %d of an empty pattern", b.Len)
	}
	out := make([]byte, b.Len)
	for i := range out {
		out[i] = p[i%len(p)]
	}
	return out, nil
}

// FixtureSegment is one segment file: Name/cachee.seg under the fixture directory.
type FixtureSegment struct {
	Name       string `json:"name"`
	Why        string `json:"why"`
	Size       int    `json:"size"`       // bytes in the file
	Generation string `json:"generation"` // the header's generation, as 0x%016x
	ClockMs    int64  `json:"clock_ms"`   // the header's clock
	Data       []byte `json:"-"`
}

// FixtureCase is one lookup and what a reader must answer.
type FixtureCase struct {
	Name    string       `json:"name"`
	Why     string       `json:"why"`
	Segment string       `json:"segment"`
	Key     FixtureBytes `json:"key"`
	// NowMs is the reader's own real-time clock for this lookup (the Expiry rule reads
	// it near a deadline); readers let tests inject it.
	NowMs  int64         `json:"now_ms"`
	Expect string        `json:"expect"`
	Value  *FixtureBytes `json:"value,omitempty"` // on a hit
	Ref    string        `json:"ref,omitempty"`   // on a hit: the slot word, 0x%016x
}

// Fixed inputs of the fixtures.
const (
	fixtureSeed     = 0x9e3779b97f4a7c15
	fixtureClock    = 1767225600000 // 2026-01-01T00:00:00Z, the header clock readers see
	fixtureStoreNow = fixtureClock - 10_000
	fixturePid      = 4242
	fixtureGenBase  = 0x0123456789ab0000
)

// fixtureBuilder writes one segment with the store's own writer, into private memory.
type fixtureBuilder struct {
	s     *Store
	refs  map[string]fixtureSlot
	err   error
	cases []FixtureCase
	name  string
}

// fixtureSlot is where a key ended up.
type fixtureSlot struct {
	slot, entry, ref, home uint64
}

func newFixtureBuilder(name string, size int64) (*fixtureBuilder, error) {
	// LRU: no part of its state depends on anything but the operations (TinyLFU's
	// sketch and window tuner are seeded at layout). The store's clock stands still well
	// before the header clock the readers get, so that nothing expires while it is
	// written and the background sweep has nothing to do.
	s, err := Open(Config{
		MaxMemory: size,
		Eviction:  EvictionLRU,
		Clock:     func() time.Time { return time.UnixMilli(fixtureStoreNow) },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.seed, s.v.seed = fixtureSeed, fixtureSeed
	s.v.m.store(hdrSeed, fixtureSeed)
	s.mu.Unlock()
	return &fixtureBuilder{s: s, refs: map[string]fixtureSlot{}, name: name}, nil
}

// set stores key; expiry is unix ms, 0 for none.
func (b *fixtureBuilder) set(key string, value []byte, expiry int64) {
	if b.err != nil {
		return
	}
	opt := SetOptions{}
	if expiry != 0 {
		opt.ExpireAt = time.UnixMilli(expiry)
	}
	if _, err := b.s.Set([]byte(key), value, opt); err != nil {
		b.err = fmt.Errorf("fixture %s: set %q: %w", b.name, key, err)
	}
}

func (b *fixtureBuilder) del(key string) {
	if b.err != nil {
		return
	}
	if ok, err := b.s.Delete([]byte(key)); err != nil || !ok {
		b.err = fmt.Errorf("fixture %s: delete %q: %v %v", b.name, key, ok, err)
	}
}

// locate records where key sits, for cases that patch it or expect its ref.
func (b *fixtureBuilder) locate(key string) fixtureSlot {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hash([]byte(key))
	so, e, ok := s.idx.find(h, []byte(key))
	if !ok && b.err == nil {
		b.err = fmt.Errorf("fixture %s: %q is not in the index", b.name, key)
	}
	t := s.idx.tableOf(h)
	home := t.off + h>>(64-s.v.nbLog2)*bucketBytes
	fs := fixtureSlot{slot: so, entry: e, home: home}
	if ok {
		fs.ref = s.v.m.load(so)
	}
	b.refs[key] = fs
	return fs
}

// homeOf is the byte offset of the home bucket of a key that need not be stored.
func (b *fixtureBuilder) homeOf(key string) uint64 {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hash([]byte(key))
	return s.idx.tableOf(h).off + h>>(64-s.v.nbLog2)*bucketBytes
}

// hit adds a case expecting key's value; the ref is where the key was found.
func (b *fixtureBuilder) hit(name, why, key string, value FixtureBytes, now int64) {
	fs := b.locate(key)
	b.cases = append(b.cases, FixtureCase{Name: name, Why: why, Segment: b.name, Key: text(key),
		NowMs: now, Expect: FixtureHit, Value: &value, Ref: fmt.Sprintf("0x%016x", fs.ref)})
}

func (b *fixtureBuilder) expect(name, why string, key FixtureBytes, now int64, res string) {
	b.cases = append(b.cases, FixtureCase{Name: name, Why: why, Segment: b.name, Key: key, NowMs: now, Expect: res})
}

// finish copies the segment out with the header fields that would otherwise vary
// (generation, pid, clock) fixed, and state active.
func (b *fixtureBuilder) finish(gen uint64, why string) (FixtureSegment, error) {
	s := b.s
	defer s.Close()
	if b.err != nil {
		return FixtureSegment{}, b.err
	}
	s.mu.Lock()
	data := append([]byte(nil), s.v.m.bytes(0, s.seg.size)...)
	s.mu.Unlock()
	put64(data, hdrGeneration, gen)
	put64(data, hdrClock, fixtureClock)
	put32(data, hdrWriterPid, fixturePid)
	put32(data, hdrState, stateActive)
	return FixtureSegment{Name: b.name, Why: why, Size: len(data), Generation: fmt.Sprintf("0x%016x", gen),
		ClockMs: fixtureClock, Data: data}, nil
}

func put64(b []byte, off, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
func put32(b []byte, off uint64, v uint32) {
	binary.LittleEndian.PutUint32(b[off:], v)
}
func get64(b []byte, off uint64) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

func text(s string) FixtureBytes { return FixtureBytes{Hex: hex.EncodeToString([]byte(s))} }

func raw(p []byte) FixtureBytes { return FixtureBytes{Hex: hex.EncodeToString(p)} }

// pattern is n bytes that never repeat within 251 (a prime), so a value copied from the
// wrong offset never matches.
func pattern(n int) FixtureBytes {
	p := make([]byte, 251)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	if n <= len(p) {
		return raw(p[:n])
	}
	return FixtureBytes{Hex: hex.EncodeToString(p), Len: n}
}

func (fb FixtureBytes) mustBytes() []byte {
	p, err := fb.Bytes()
	if err != nil {
		panic(err)
	}
	return p
}

// MakeFixtures writes every fixture segment in memory and returns them with their
// cases, in a fixed order.
func MakeFixtures() ([]FixtureSegment, []FixtureCase, error) {
	fs := &fixtureSet{gen: fixtureGenBase}
	for _, mk := range []func(*fixtureSet) error{
		fixtureData, fixtureMidWrite, fixtureCorruptEntries, fixtureCorruptIndex, fixtureHeaders,
	} {
		if err := mk(fs); err != nil {
			return nil, nil, err
		}
	}
	return fs.segs, fs.cases, nil
}

type fixtureSet struct {
	segs  []FixtureSegment
	cases []FixtureCase
	gen   uint64
}

// add finishes b's segment, applies patch to its bytes and keeps it with b's cases.
func (fs *fixtureSet) add(b *fixtureBuilder, why string, patch func(data []byte)) (FixtureSegment, error) {
	fs.gen++
	seg, err := b.finish(fs.gen, why)
	if err != nil {
		return seg, err
	}
	if patch != nil {
		patch(seg.Data)
	}
	fs.segs = append(fs.segs, seg)
	fs.cases = append(fs.cases, b.cases...)
	return seg, nil
}

// variant keeps a patched copy of base under another name, with one case: key read at
// the header clock gives expect.
func (fs *fixtureSet) variant(base FixtureSegment, name, why, key, expect string, patch func(data []byte)) {
	seg := base
	seg.Name, seg.Why = name, why
	seg.Data = append([]byte(nil), base.Data...)
	patch(seg.Data)
	seg.Size = len(seg.Data)
	fs.segs = append(fs.segs, seg)
	fs.cases = append(fs.cases, FixtureCase{Name: name, Why: why, Segment: name, Key: text(key),
		NowMs: fixtureClock, Expect: expect})
}

// fixtureData is the segment of lookups that succeed: hits of every alignment, misses,
// expiry on both sides of every boundary, the longest key and value, a deleted key and
// entries of other value types.
func fixtureData(fs *fixtureSet) error {
	b, err := newFixtureBuilder("data", MinMemory)
	if err != nil {
		return err
	}
	c := int64(fixtureClock)
	cfg := b.s.Config()
	b.set("user:42", []byte("hello"), 0)
	b.hit("hit", "a key and its value", "user:42", text("hello"), c)
	b.set("empty", nil, 0)
	b.hit("hit-empty-value", "a value of no bytes is a hit, not a miss", "empty", raw(nil), c)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	b.set("bytes", all, 0)
	b.hit("hit-every-byte", "a value holding every byte value", "bytes", raw(all), c)
	// The value starts right after the key, so these put its first byte at every offset
	// within a word and end it at every offset.
	for i, kv := range alignedCases() {
		b.set(kv.key, pattern(kv.vlen).mustBytes(), 0)
		b.hit(fmt.Sprintf("hit-align-%02d", i), fmt.Sprintf("a %d-byte key and a %d-byte value: the value starts %d bytes into a word",
			len(kv.key), kv.vlen, (entryHeader+len(kv.key))%unit), kv.key, pattern(kv.vlen), c)
	}
	b.expect("miss", "a key the segment never held", text("user:43"), c, FixtureMiss)
	b.expect("miss-prefix", "a prefix of a stored key", text("user:4"), c, FixtureMiss)
	b.expect("miss-longer", "a stored key with a byte more", text("user:420"), c, FixtureMiss)

	maxKey := FixtureBytes{Hex: hex.EncodeToString([]byte("k")), Len: cfg.MaxKeySize}
	b.set(string(maxKey.mustBytes()), []byte("longest key"), 0)
	longest := b.locate(string(maxKey.mustBytes()))
	b.cases = append(b.cases, FixtureCase{Name: "hit-max-key", Why: "a key of the header's max_key bytes",
		Segment: b.name, Key: maxKey, NowMs: c, Expect: FixtureHit, Value: ptr(text("longest key")),
		Ref: fmt.Sprintf("0x%016x", longest.ref)})
	b.expect("miss-key-over-max", "a key one byte over max_key cannot be in the segment",
		FixtureBytes{Hex: maxKey.Hex, Len: cfg.MaxKeySize + 1}, c, FixtureMiss)
	b.set("max-value", pattern(cfg.MaxValueSize).mustBytes(), 0)
	b.hit("hit-max-value", "a value of the header's max_value bytes", "max-value", pattern(cfg.MaxValueSize), c)

	b.set("deleted", []byte("gone"), 0)
	b.del("deleted")
	b.expect("miss-deleted", "a key stored and then deleted", text("deleted"), c, FixtureMiss)
	b.set("replaced", []byte("first value"), 0)
	b.set("replaced", pattern(40).mustBytes(), 0)
	b.hit("hit-replaced", "a key stored twice reads the second value", "replaced", pattern(40), c)

	b.set("expired", []byte("old"), c-5000)
	b.expect("expired", "expiry before the header clock", text("expired"), c, FixtureMiss)
	b.expect("expired-reader-behind", "expiry before the header clock is expired even when the reader's own clock is earlier still",
		text("expired"), c-6000, FixtureMiss)
	b.set("expires-at-clock", []byte("now"), c)
	b.expect("expired-at-clock", "expiry equal to the header clock has expired", text("expires-at-clock"), c, FixtureMiss)
	b.set("near", []byte("soon"), c+500)
	b.hit("near-before", "expiry within NEAR_MS of the clock, read before it by the reader's clock", "near", text("soon"), c+499)
	b.expect("near-at", "expiry within NEAR_MS of the clock, read at it by the reader's clock: expired, though the header clock is earlier",
		text("near"), c+500, FixtureMiss)
	b.set("near-edge", []byte("edge"), c+nearMillis)
	b.hit("near-edge-before", "expiry exactly NEAR_MS after the clock is near: the reader's clock decides", "near-edge", text("edge"), c+nearMillis-1)
	b.expect("near-edge-at", "expiry exactly NEAR_MS after the clock is near: the reader's clock decides",
		text("near-edge"), c+nearMillis, FixtureMiss)
	b.set("far", []byte("later"), c+nearMillis+1)
	b.hit("far-now", "expiry more than NEAR_MS after the clock", "far", text("later"), c)
	b.hit("far-reader-ahead", "expiry more than NEAR_MS after the clock is live whatever the reader's clock says", "far",
		text("later"), c+5000)
	b.set("ttl", []byte("live"), c+3_600_000)
	b.hit("hit-with-ttl", "an entry with a distant expiry", "ttl", text("live"), c)

	for _, vt := range []uint64{1, 4, 7} {
		key := fmt.Sprintf("typed-%d", vt)
		b.set(key, []byte("not a string"), 0)
		b.locate(key)
		b.expect("value-type-"+fmt.Sprint(vt), fmt.Sprintf("an entry of value type %d (w0 bits 61..63) is never returned as a string", vt),
			text(key), c, FixtureWrongTyp)
	}
	refs := b.refs
	_, err = fs.add(b, "entries a reader finds, misses and expires", func(data []byte) {
		for _, vt := range []uint64{1, 4, 7} {
			e := refs[fmt.Sprintf("typed-%d", vt)].entry
			put64(data, e, get64(data, e)|vt<<w0TypeShift)
		}
	})
	return err
}

// fixtureMidWrite holds a bucket and then the whole index mid-change, as a writer that
// died inside a store leaves them: lookups that touch them run out of retries, and
// lookups elsewhere are unaffected.
func fixtureMidWrite(fs *fixtureSet) error {
	b, err := newFixtureBuilder("mid-write", MinMemory)
	if err != nil {
		return err
	}
	c := int64(fixtureClock)
	b.set("user:42", []byte("hello"), 0)
	odd := b.locate("user:42").home
	// Another stored key, and an absent one, whose home is elsewhere, and an absent key
	// whose home is the odd bucket (absence can only be proved by a stable bucket).
	other := b.findKey("other-", func(k string) bool { return b.homeOf(k) != odd })
	b.set(other, []byte("unaffected"), 0)
	b.expect("mid-write", "the key's bucket has an odd sequence (a writer mid-change)", text("user:42"), c, FixtureRetry)
	b.expect("mid-write-absent", "a key absent from a bucket with an odd sequence is not a miss", text(b.findKey("absent-",
		func(k string) bool { return b.homeOf(k) == odd })), c, FixtureRetry)
	b.hit("mid-write-elsewhere", "a key in a stable bucket beside an odd one", other, text("unaffected"), c)
	b.expect("mid-write-elsewhere-miss", "an absent key whose bucket is stable", text(b.findKey("absent-",
		func(k string) bool { return b.homeOf(k) != odd })), c, FixtureMiss)
	seg, err := fs.add(b, "one bucket mid-change", func(data []byte) {
		put64(data, odd, get64(data, odd)+ctrlSeqOne)
	})
	if err != nil {
		return err
	}
	fs.variant(seg, "mid-split", "the index version is odd (a table split or transaction under way)", "user:42",
		FixtureRetry, func(data []byte) { put64(data, hdrIndexVer, get64(data, hdrIndexVer)|1) })
	return nil
}

// findKey returns the first of prefix0, prefix1, ... that ok accepts.
func (b *fixtureBuilder) findKey(prefix string, ok func(string) bool) string {
	for i := 0; ; i++ {
		if k := fmt.Sprint(prefix, i); ok(k) {
			return k
		}
	}
}

// fixtureCorruptEntries holds slots and entry headers that contradict the format while
// their bucket is stable: each lookup that meets one is corrupt, and only that one.
func fixtureCorruptEntries(fs *fixtureSet) error {
	b, err := newFixtureBuilder("corrupt-entries", MinMemory)
	if err != nil {
		return err
	}
	c := int64(fixtureClock)
	type bad struct {
		key, why string
		patch    func(data []byte, at fixtureSlot)
	}
	size := uint64(b.s.seg.size)
	dirOff := b.s.v.dirOff
	bads := []bad{
		{"slot-outside-arena", "a slot that points into the directory", func(d []byte, at fixtureSlot) {
			put64(d, at.slot, at.ref&^0xffffffff|dirOff/unit)
		}},
		{"slot-past-end", "a slot that points past the end of the segment", func(d []byte, at fixtureSlot) {
			put64(d, at.slot, at.ref|0xffffffff)
		}},
		{"entry-free", "a slot that points at a free block", func(d []byte, at fixtureSlot) {
			put64(d, at.entry, get64(d, at.entry)|w0Free)
		}},
		{"entry-kind", "a slot that points at an index table's block", func(d []byte, at fixtureSlot) {
			put64(d, at.entry, get64(d, at.entry)|kindTable<<w0KindShift)
		}},
		{"entry-size", "an entry whose size runs past the end of the segment", func(d []byte, at fixtureSlot) {
			put64(d, at.entry, get64(d, at.entry)&^w0SizeMask|(size/unit))
		}},
		{"entry-key-length", "an entry whose key length does not fit its size", func(d []byte, at fixtureSlot) {
			put64(d, at.entry, get64(d, at.entry)|w0KlenMask<<w0KlenShift)
		}},
	}
	at := map[string]fixtureSlot{}
	for _, x := range bads {
		b.set(x.key, []byte("value"), 0)
		at[x.key] = b.locate(x.key)
		b.expect("corrupt-"+x.key, x.why, text(x.key), c, FixtureCorrupt)
	}
	b.set("good", []byte("intact"), 0)
	b.hit("corrupt-entries-good", "an intact entry beside corrupt ones", "good", text("intact"), c)
	_, err = fs.add(b, "slots and entry headers that contradict the format", func(data []byte) {
		for _, x := range bads {
			x.patch(data, at[x.key])
		}
	})
	return err
}

// fixtureCorruptIndex holds a directory that contradicts the format: every lookup is
// corrupt.
func fixtureCorruptIndex(fs *fixtureSet) error {
	b, err := newFixtureBuilder("corrupt-depth", MinMemory)
	if err != nil {
		return err
	}
	maxDepth, dirOff, hi := uint32(b.s.v.maxDepth), b.s.v.dirOff, b.s.v.hi
	b.set("user:42", []byte("hello"), 0)
	b.expect("corrupt-depth", "global_depth beyond dir_max_depth", text("user:42"), fixtureClock, FixtureCorrupt)
	seg, err := fs.add(b, "global_depth beyond dir_max_depth", func(data []byte) {
		put32(data, hdrGlobalDepth, maxDepth+1)
	})
	if err != nil {
		return err
	}
	seg.Data = append([]byte(nil), seg.Data...)
	put32(seg.Data, hdrGlobalDepth, 0)
	for _, v := range []struct {
		name, why string
		units     uint32
	}{
		{"corrupt-directory", "a directory entry that points past the end of the segment", 0xffffffff},
		{"corrupt-directory-header", "a directory entry that points into the header", 1},
		{"corrupt-directory-overrun", "a directory entry whose table runs past the end of the segment", uint32((hi - cacheLine) / unit)},
		{"corrupt-directory-unaligned", "a directory entry that is not 64-byte aligned",
			binary.LittleEndian.Uint32(seg.Data[dirOff:]) + 1},
	} {
		fs.variant(seg, v.name, v.why, "user:42", FixtureCorrupt, func(data []byte) {
			binary.LittleEndian.PutUint32(data[dirOff:], v.units)
		})
	}
	return nil
}

// fixtureHeaders holds segments whose header a reader must refuse, each a copy of one
// good segment with one thing changed, so that a reader that skips a check finds the key.
func fixtureHeaders(fs *fixtureSet) error {
	b, err := newFixtureBuilder("good", MinMemory)
	if err != nil {
		return err
	}
	b.set("user:42", []byte("hello"), 0)
	b.hit("good", "the segment the header cases are made from", "user:42", text("hello"), fixtureClock)
	seg, err := fs.add(b, "the segment the header cases are made from", nil)
	if err != nil {
		return err
	}
	size := uint64(seg.Size)
	for _, v := range []struct {
		name, why, expect string
		patch             func(d []byte)
	}{
		{"closed", "state closed: the writer stopped", FixtureStale, func(d []byte) { put32(d, hdrState, stateClosed) }},
		{"retired", "state retired: a new file replaced this one", FixtureStale, func(d []byte) { put32(d, hdrState, stateRetired) }},
		{"init", "state init: a writer is laying out or recovering the segment", FixtureStale, func(d []byte) { put32(d, hdrState, stateInit) }},
		{"bad-magic", "another magic", FixtureFormat, func(d []byte) { put64(d, hdrMagic, segmentMagic^1) }},
		{"no-magic", "the magic not written yet (a header being laid out)", FixtureFormat, func(d []byte) { put64(d, hdrMagic, 0) }},
		{"bad-version", "format version 2", FixtureFormat, func(d []byte) { put32(d, hdrVersion, formatVersion+1) }},
		{"bad-header-size", "a header_size other than 4096", FixtureFormat, func(d []byte) { put32(d, hdrHeaderSize, headerSize*2) }},
		{"bad-size-field", "segment_size other than the file's size", FixtureFormat, func(d []byte) { put64(d, hdrSegSize, size*2) }},
		{"bad-buckets", "buckets_log2 other than the size gives", FixtureFormat, func(d []byte) {
			put32(d, hdrBucketsLog2, binary.LittleEndian.Uint32(d[hdrBucketsLog2:])+1)
		}},
		{"bad-max-depth", "dir_max_depth other than the size gives", FixtureFormat, func(d []byte) {
			put32(d, hdrDirMaxDepth, binary.LittleEndian.Uint32(d[hdrDirMaxDepth:])+1)
		}},
		{"bad-dir-offset", "dir_offset other than the size gives", FixtureFormat, func(d []byte) { put64(d, hdrDirOffset, 0) }},
		{"bad-arena-offset", "arena_offset other than the size gives", FixtureFormat, func(d []byte) {
			put64(d, hdrArenaOffset, get64(d, hdrArenaOffset)+cacheLine)
		}},
		{"bad-arena-size", "arena_size other than segment_size - arena_offset", FixtureFormat, func(d []byte) {
			put64(d, hdrArenaSize, get64(d, hdrArenaSize)+cacheLine)
		}},
	} {
		fs.variant(seg, v.name, v.why, "user:42", v.expect, v.patch)
	}

	// A segment twice the size cut to the first half: a valid header that describes
	// another size; and a file shorter than a header.
	b, err = newFixtureBuilder("truncated", 2*MinMemory)
	if err != nil {
		return err
	}
	b.set("user:42", []byte("hello"), 0)
	b.expect("truncated", "the first half of a segment: the header describes another size", text("user:42"), fixtureClock, FixtureFormat)
	big, err := fs.add(b, "the first half of a segment", nil)
	if err != nil {
		return err
	}
	fs.segs[len(fs.segs)-1].Data = big.Data[:MinMemory]
	fs.segs[len(fs.segs)-1].Size = MinMemory
	fs.variant(big, "truncated-header", "a file shorter than a header", "user:42", FixtureFormat, func([]byte) {})
	last := &fs.segs[len(fs.segs)-1]
	last.Data = last.Data[:100]
	last.Size = len(last.Data)
	return nil
}

type alignedCase struct {
	key  string
	vlen int
}

// alignedCases are keys of 1, 3, 8 and 13 bytes with values of lengths around word
// boundaries, so that values start and end at every offset within a word.
func alignedCases() []alignedCase {
	var out []alignedCase
	for ki, klen := range []int{1, 3, 8, 13} {
		for vi, vlen := range []int{1, 7, 8, 9, 15, 16, 17, 31} {
			key := fmt.Sprintf("%c%c%011d", 'A'+vi, 'a'+ki, vlen)
			out = append(out, alignedCase{key: key[:klen], vlen: vlen})
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// FixtureLayout is the format's constants as this package defines them, and the
// geometry it derives for a range of sizes, for readers in other languages to check
// their own copies against.
func FixtureLayout() map[string]any {
	type geo struct {
		Size        uint64 `json:"size"`
		BucketsLog2 uint   `json:"buckets_log2"`
		DirMaxDepth uint   `json:"dir_max_depth"`
		DirOffset   uint64 `json:"dir_offset"`
		ArenaOffset uint64 `json:"arena_offset"`
	}
	var geos []geo
	for _, size := range []uint64{MinMemory, 2 * MinMemory, 1 << 20, 3 << 20, 64 << 20, 100 << 20,
		256 << 20, 1 << 30, 5<<30 + 4096, MaxMemory} {
		nb, depth, dir, arena := geometry(size)
		geos = append(geos, geo{size, nb, depth, dir, arena})
	}
	return map[string]any{
		"magic":            fmt.Sprintf("0x%016x", uint64(segmentMagic)),
		"version":          formatVersion,
		"header_size":      headerSize,
		"unit":             unit,
		"min_size":         MinMemory,
		"max_size":         MaxMemory,
		"page_multiple":    4096,
		"segment_file":     SegmentFile,
		"bucket_bytes":     bucketBytes,
		"slots_per_bucket": slotsPerBucket,
		"probe_window":     probeWindow,
		"ctrl_seq_one":     ctrlSeqOne,
		"ctrl_ovf_mask":    ctrlOvfMask,
		"entry_header":     entryHeader,
		"min_block":        minBlock,
		"max_key_limit":    maxKeyLimit,
		"max_read_retries": maxReadRetries,
		"near_ms":          nearMillis,
		"max_lag_ms":       MaxReaderLag.Milliseconds(),
		"header": map[string]int{
			"magic": hdrMagic, "version": hdrVersion, "header_size": hdrHeaderSize, "segment_size": hdrSegSize,
			"generation": hdrGeneration, "hash_seed": hdrSeed, "created": hdrCreated, "writer_pid": hdrWriterPid,
			"buckets_log2": hdrBucketsLog2, "dir_offset": hdrDirOffset, "dir_max_depth": hdrDirMaxDepth,
			"max_key": hdrMaxKey, "arena_offset": hdrArenaOffset, "arena_size": hdrArenaSize,
			"max_value": hdrMaxValue, "clock": hdrClock, "index_version": hdrIndexVer,
			"global_depth": hdrGlobalDepth, "state": hdrState,
		},
		"states": map[string]int{"init": stateInit, "active": stateActive, "closed": stateClosed, "retired": stateRetired},
		"w0": map[string]any{
			"size_mask": w0SizeMask, "klen_shift": w0KlenShift, "klen_mask": w0KlenMask,
			"pad_shift": w0PadShift, "pad_mask": w0PadMask, "free_bit": 58, "kind_shift": w0KindShift,
			"kind_mask": w0KindMask, "value_type_shift": w0TypeShift,
		},
		"kinds":     map[string]int{"entry": kindEntry, "table": kindTable, "sketch": kindSketch, "sentinel": kindSentinel},
		"w1_expiry": fmt.Sprintf("0x%x", uint64(w1ExpMask)),
		"geometry":  geos,
	}
}
