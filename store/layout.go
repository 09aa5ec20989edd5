package store

// The segment's layout. docs/segment-format.md is the prose version of this file; keep
// the two in step. Every multi-byte integer is little-endian (the only byte order we
// build for) and every word that a reader in another process may load is 8-byte aligned.

const (
	// formatVersion changes whenever a reader built for an older layout could misread a
	// segment. A writer that finds another version replaces the segment.
	formatVersion = 1

	// segmentMagic opens every segment: "CACHEESG".
	segmentMagic = 0x4753454548434143

	headerSize = 4096
	unit       = 8 // offsets are stored in units of 8 bytes
	maxSegment = 1 << 35

	cacheLine = 64
)

// Header fields, as byte offsets from the start of the segment.
const (
	hdrMagic       = 0   // u64 segmentMagic
	hdrVersion     = 8   // u32 formatVersion
	hdrHeaderSize  = 12  // u32 headerSize
	hdrSegSize     = 16  // u64 size of the mapping in bytes
	hdrGeneration  = 24  // u64 random, new every time a writer opens the segment
	hdrSeed        = 32  // u64 XXH3-64 seed for keys
	hdrCreated     = 40  // i64 unix ms when the segment was first laid out
	hdrWriterPid   = 48  // u32 pid of the current writer
	hdrBucketsLog2 = 52  // u32 log2 of buckets per index table
	hdrDirOffset   = 56  // u64 byte offset of the directory
	hdrDirMaxDepth = 64  // u32 log2 of the directory's capacity
	hdrMaxKey      = 68  // u32 maximum key length the writer accepts
	hdrArenaOffset = 72  // u64 byte offset of the arena
	hdrArenaSize   = 80  // u64 bytes in the arena
	hdrMaxValue    = 88  // u64 maximum value length the writer accepts
	hdrClock       = 128 // i64 writer's clock, unix ms, published at writes and every 25 ms
	hdrIndexVer    = 192 // u64 seqlock over the directory: odd while it changes
	hdrGlobalDepth = 200 // u32 directory entries in use are 1<<depth
	hdrState       = 204 // u32 one of the state* values
)

// Segment states.
const (
	stateInit    = 0 // being laid out or recovered; readers wait
	stateActive  = 1 // a writer serves it
	stateClosed  = 2 // the writer stopped cleanly; the data may be reused by the next writer
	stateRetired = 3 // replaced by a newer segment file; readers must remap
)

// Index geometry. A bucket is one cache line: a control word and seven slots.
//
//	ctrl: bits 16..63 sequence (odd while the bucket changes), bits 0..15 the number of
//	      entries whose home is this bucket but which sit in a later bucket of the window.
//	slot: bits 32..63 tag (the hash's top 32 bits), bits 0..31 entry offset in units;
//	      0 is an empty slot.
const (
	bucketBytes    = 64
	slotsPerBucket = 7
	probeWindow    = 4 // buckets an entry may sit in, starting at its home
	ctrlSeqOne     = 1 << 16
	ctrlOvfMask    = 0xffff
	maxDirDepth    = 24
)

// Block and entry headers. Every block in the arena starts with two words:
//
//	w0: bits 0..31 size in units, 32..51 key length, 52..57 padding bytes at the end,
//	    58 free, 59..60 kind, 61..63 value type (entries; 0 is a string).
//	w1: bits 0..47 expiry (unix ms, 0 for none), 48..49 policy queue, 50 previous
//	    block is free.
//
// An entry block continues with w2 (policy links: previous in bits 0..31, next in 32..63,
// both in units) and then the key and the value, back to back. A free block uses w2 for
// its free-list links and repeats its size in its last word.
const (
	entryHeader = 24
	minBlock    = 32

	w0SizeMask  = 0xffffffff
	w0KlenShift = 32
	w0KlenMask  = 0xfffff
	w0PadShift  = 52
	w0PadMask   = 0x3f
	w0Free      = 1 << 58
	w0KindShift = 59
	w0KindMask  = 0x3
	w0TypeShift = 61 // value type of an entry; a reader reads only typeString as a string
	w0TypeMask  = 0x7

	w1ExpMask    = 1<<48 - 1
	w1QueueShift = 48
	w1QueueMask  = 0x3
	w1PrevFree   = 1 << 50

	maxKeyLimit = w0KlenMask // the key length field holds 20 bits
)

// Value types of an entry (w0's top three bits).
const (
	typeString = 0
)

// nearMillis is how close to its deadline an entry must be before a reader consults its
// own real-time clock (docs/segment-format.md, "Expiry"). Further away, the header's
// clock decides: it lags real time by less than this while the segment counts as live
// (MaxReaderLag plus the reader's check interval).
const nearMillis = 1000

// Block kinds.
const (
	kindEntry    = 0
	kindTable    = 1 // an index table (buckets); never reused for anything else
	kindSketch   = 2 // the frequency sketch; writer-only
	kindSentinel = 3 // the fixed block at the end of the arena
)

func w0Pack(sizeUnits uint64, klen, pad int, kind uint64) uint64 {
	return sizeUnits | uint64(klen)<<w0KlenShift | uint64(pad)<<w0PadShift | kind<<w0KindShift
}

func w0Size(w uint64) uint64 { return w & w0SizeMask }
func w0Klen(w uint64) int    { return int(w >> w0KlenShift & w0KlenMask) }
func w0Pad(w uint64) int     { return int(w >> w0PadShift & w0PadMask) }
func w0Kind(w uint64) uint64 { return w >> w0KindShift & w0KindMask }
func w0Type(w uint64) uint64 { return w >> w0TypeShift }

// entryUnits is the block size, in units, of an entry with these lengths, and the
// padding that rounds it up.
func entryUnits(klen, vlen int) (units uint64, pad int) {
	// klen >= 1, so n >= 25 and the rounded size is never below minBlock.
	n := entryHeader + klen + vlen
	pad = (unit - n%unit) % unit
	return uint64(n+pad) / unit, pad
}
