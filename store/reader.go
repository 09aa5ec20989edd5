package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Reader reads a segment that a Store in another process writes, through a read-only
// mapping: no syscall, no lock and, given a buffer with room, no allocation per Get.
// It never writes the segment. It is safe for concurrent use.
//
// A Reader checks on every Get that the writer still serves the segment; Check does the
// costlier liveness checks (the writer holds its lock, its clock moves, the file at the
// path is still this one) and is meant to run every few tens of milliseconds.
type Reader struct {
	seg  segment
	v    view
	gen  uint64
	path string
	ino  uint64
	dev  uint64
}

// OpenReader maps dir/cachee.seg read-only and validates its header.
func OpenReader(dir string) (*Reader, error) {
	path := filepath.Join(dir, SegmentFile)
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("store: open segment: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: stat segment: %w", err)
	}
	size := uint64(st.Size)
	if st.Mode&unix.S_IFMT != unix.S_IFREG || size < MinMemory || size > MaxMemory || size%4096 != 0 {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a segment (%d bytes)", ErrFormat, path, size)
	}
	base, err := mapAt(int(f.Fd()), size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: map segment: %w", err)
	}
	r := &Reader{
		seg:  segment{mem: mem{base: base, size: size}, path: path, f: f},
		path: path,
		ino:  st.Ino,
		dev:  uint64(st.Dev), // int32 on darwin
	}
	if err := r.validate(); err != nil {
		r.seg.close()
		return nil, err
	}
	return r, nil
}

// validate checks the header against the file and derives the geometry from the size,
// so that no field of a corrupt header can send a read outside the mapping.
func (r *Reader) validate() error {
	m := &r.seg.mem
	size := m.size
	switch {
	case m.load(hdrMagic) != segmentMagic:
		return fmt.Errorf("%w: bad magic", ErrFormat)
	case m.load32(hdrVersion) != formatVersion:
		return fmt.Errorf("%w: version %d, this reader knows %d", ErrFormat, m.load32(hdrVersion), formatVersion)
	case m.load32(hdrHeaderSize) != headerSize || m.load(hdrSegSize) != size:
		return fmt.Errorf("%w: header describes another size", ErrFormat)
	}
	nbLog2, maxDepth, dirOff, arenaOff := geometry(size)
	if uint(m.load32(hdrBucketsLog2)) != nbLog2 || uint(m.load32(hdrDirMaxDepth)) != maxDepth ||
		m.load(hdrDirOffset) != dirOff || m.load(hdrArenaOffset) != arenaOff ||
		m.load(hdrArenaSize) != size-arenaOff {
		return fmt.Errorf("%w: header describes another layout", ErrFormat)
	}
	if st := m.load32(hdrState); st != stateActive {
		return fmt.Errorf("%w: state %d", ErrStale, st)
	}
	r.v = newView(*m, m.load(hdrSeed))
	r.gen = m.load(hdrGeneration)
	return nil
}

// Get appends key's value to dst. ref identifies the entry: pass the refs of hits to
// the writer (Store.RecordAccess, or the RecordAccess RPC) so that reads made here
// count in its stats and its eviction policy. A miss means the segment lacks the key
// now; the writer may still get it elsewhere (an L2), so ask it. ErrWrongType means the
// key holds a value that is not a string: ask the writer, too.
//
// Expiry follows the segment's rule: the writer's published clock decides, and this
// process's own clock is read only within a second of an entry's deadline.
func (r *Reader) Get(key, dst []byte) (value []byte, ref uint64, found bool, err error) {
	base := r.v.m.base
	if load32(base, hdrState) != stateActive || load(base, hdrGeneration) != r.gen {
		return dst, 0, false, ErrStale
	}
	if uint(len(key))-1 >= maxKeyLimit { // empty, or too long
		if len(key) == 0 {
			return dst, 0, false, ErrKeyEmpty
		}
		return dst, 0, false, ErrKeyTooLarge
	}
	out, ref, res := r.v.get(key, dst)
	switch res {
	case resHit:
		return out, ref, true, nil
	case resMiss:
		return out, 0, false, nil
	case resRetry:
		return dst, 0, false, ErrRetry
	case resNotString:
		return dst, 0, false, ErrWrongType
	}
	return dst, 0, false, ErrCorrupt
}

// Generation identifies the writer's session: it changes when a writer (re)opens the
// segment.
func (r *Reader) Generation() uint64 { return r.gen }

// Path is the segment file's path.
func (r *Reader) Path() string { return r.path }

// MaxReaderLag is the most the writer's clock may lag this process's clock while a
// Reader reads the segment. Get trusts the writer's clock for deadlines more than a
// second away (docs/segment-format.md, "Expiry"), which is right only while the lag
// stays under a second: this bound, plus the check interval.
const MaxReaderLag = 500 * time.Millisecond

// Check reports ErrStale when the segment no longer reflects a live writer: it was
// closed or replaced, the writer restarted on it, no process holds the writer's lock,
// or the writer's clock lags the wall clock by more than maxLag (at most MaxReaderLag:
// a larger maxLag counts as MaxReaderLag). A stale Reader should be closed and, once the
// writer is back, opened again. Call it at least every 100 ms while Gets are made.
func (r *Reader) Check(maxLag time.Duration) error {
	maxLag = min(maxLag, MaxReaderLag)
	m := &r.v.m
	if st := m.load32(hdrState); st != stateActive {
		return fmt.Errorf("%w: state %d", ErrStale, st)
	}
	if m.load(hdrGeneration) != r.gen {
		return fmt.Errorf("%w: writer restarted", ErrStale)
	}
	var st unix.Stat_t
	if err := unix.Stat(r.path, &st); err != nil || st.Ino != r.ino || uint64(st.Dev) != r.dev {
		return fmt.Errorf("%w: segment file replaced", ErrStale)
	}
	// Holding the lock shared succeeds only if no writer holds it.
	fd := int(r.seg.f.Fd())
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err == nil {
		_ = unix.Flock(fd, unix.LOCK_UN)
		return fmt.Errorf("%w: no writer", ErrStale)
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("store: probe writer lock: %w", err)
	}
	if lag := time.Since(time.UnixMilli(int64(m.load(hdrClock)))); lag > maxLag {
		return fmt.Errorf("%w: writer clock %v behind", ErrStale, lag.Round(time.Millisecond))
	}
	return nil
}

// Close unmaps the segment. Gets racing with Close fail safely.
func (r *Reader) Close() error { return r.seg.close() }
