package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SegmentFile is the name of the segment in its directory.
const SegmentFile = "cachee.seg"

// segment is the memory a store lives in: a shared file mapping, or private memory.
type segment struct {
	mem
	path string   // "" for private memory
	f    *os.File // holds the writer's exclusive flock while open
	// existing is true when the file was already there with the size we want; its
	// contents are for recovery to judge.
	existing bool
}

func mapPrivate(size uint64) (*segment, error) {
	p, err := mapAt(-1, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("store: map %d bytes: %w", size, err)
	}
	return &segment{mem: mem{base: p, size: size}}, nil
}

// reserved holds address ranges that closed segments left mapped to zero pages (see
// unmap), by size. A range is never unmapped, since a reader may still be inside it, but
// the next segment of the same size is mapped over it, so a process that reopens
// segments (the SDK remapping after each sidecar restart) does not pile up ranges.
var reserved = struct {
	sync.Mutex
	bySize map[uint64][]unsafe.Pointer
}{bySize: map[uint64][]unsafe.Pointer{}}

// mapAt maps size bytes of fd (or anonymous memory, fd -1), over a reserved range of
// that size when there is one.
func mapAt(fd int, size uint64, prot, flags int) (unsafe.Pointer, error) {
	reserved.Lock()
	var addr unsafe.Pointer
	if rs := reserved.bySize[size]; len(rs) > 0 {
		addr = rs[len(rs)-1]
		reserved.bySize[size] = rs[:len(rs)-1]
	}
	reserved.Unlock()
	if addr != nil {
		p, err := unix.MmapPtr(fd, 0, addr, uintptr(size), prot, flags|unix.MAP_FIXED)
		if err != nil {
			// The range still holds zero pages; give it back.
			release(addr, size)
			return nil, err
		}
		return p, nil
	}
	b, err := unix.Mmap(fd, 0, int(size), prot, flags)
	if err != nil {
		return nil, err
	}
	return unsafe.Pointer(&b[0]), nil
}

func release(addr unsafe.Pointer, size uint64) {
	reserved.Lock()
	reserved.bySize[size] = append(reserved.bySize[size], addr)
	reserved.Unlock()
}

// openShared opens dir/cachee.seg for writing, creating or replacing it as needed. A
// file of another owner, or one that others may write, is refused rather than trusted.
func openShared(dir string, size uint64) (*segment, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: segment directory: %w", err)
	}
	path := filepath.Join(dir, SegmentFile)
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return createShared(path, size)
	case err != nil:
		return nil, fmt.Errorf("store: open segment: %w", err)
	}
	if err := checkOwned(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := lockExclusive(f); err != nil {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: stat segment: %w", err)
	}
	if uint64(st.Size()) != size {
		// Another size: nothing in it can be reused. Retire it so readers remap.
		retireFile(f)
		f.Close()
		return createShared(path, size)
	}
	s, err := mapShared(f, path, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.existing = true
	return s, nil
}

// createShared makes a new segment file under a temporary name, then renames it into
// place, so that readers never open a half-sized file.
func createShared(path string, size uint64) (*segment, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(path), "."+SegmentFile+"."+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: create segment: %w", err)
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	// The umask may have removed read bits that readers in other containers need.
	if err := f.Chmod(0o644); err != nil {
		return fail(fmt.Errorf("store: chmod segment: %w", err))
	}
	if err := lockExclusive(f); err != nil {
		return fail(err)
	}
	// Reserve the memory now: on tmpfs a page that cannot be allocated later would be a
	// SIGBUS in the middle of a write; here it is an error at start.
	if err := fallocate(f, size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return fail(fmt.Errorf("store: reserve %d bytes for the segment: %w", size, err))
		}
		if err := f.Truncate(int64(size)); err != nil {
			return fail(fmt.Errorf("store: size segment: %w", err))
		}
	}
	s, err := mapShared(f, path, size)
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		s.unmap()
		return fail(fmt.Errorf("store: install segment: %w", err))
	}
	return s, nil
}

func mapShared(f *os.File, path string, size uint64) (*segment, error) {
	p, err := mapAt(int(f.Fd()), size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("store: map segment: %w", err)
	}
	return &segment{mem: mem{base: p, size: size}, path: path, f: f}, nil
}

// checkOwned refuses a segment file that is not a regular file of ours, or that
// anyone else may write.
func checkOwned(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("store: stat segment: %w", err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%w: %s is not a regular file", ErrSegmentUnsafe, f.Name())
	case st.Uid != uint32(os.Geteuid()):
		return fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrSegmentUnsafe, f.Name(), st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%w: %s is writable by group or others (mode %o)", ErrSegmentUnsafe, f.Name(), st.Mode&0o777)
	}
	return nil
}

// lockExclusive takes the writer's lock. Readers probe the same lock to learn whether a
// writer is alive, holding it shared for an instant, so a busy lock is retried briefly.
func lockExclusive(f *os.File) error {
	deadline := time.Now().Add(time.Second)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("store: lock segment: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrSegmentInUse, f.Name())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// retireFile marks the header of a segment that is being replaced, so readers that
// still map it stop using it. The file is ours and locked; a header we cannot map is
// left alone (nobody can be reading a valid segment from it).
func retireFile(f *os.File) {
	b, err := unix.Mmap(int(f.Fd()), 0, headerSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return
	}
	m := mem{base: unsafe.Pointer(&b[0]), size: headerSize}
	if m.load(hdrMagic) == segmentMagic {
		m.store32(hdrState, stateRetired)
	}
	_ = unix.Munmap(b)
}

// unmap drops the mapping's memory but keeps its address range reserved with zero
// pages: a reader racing with Close then reads zeros, which fail validation, instead of
// faulting on an unmapped address.
func (s *segment) unmap() {
	if s.base == nil {
		return
	}
	if _, err := unix.MmapPtr(-1, 0, s.base, uintptr(s.size), unix.PROT_READ,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE); err == nil {
		release(s.base, s.size)
	}
	s.base = nil
}

func (s *segment) close() error {
	s.unmap()
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
