package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Probe says, without mapping anything, whether dir holds a segment that a live writer
// serves: a regular file whose header has the magic and the active state, and whose
// lock a writer holds. A reader that waits for a writer (a sidecar down or restarting)
// polls Probe rather than mapping the file each time. It returns nil, an error wrapping
// ErrFormat (not a segment) or ErrStale (not active, or no writer), or the error that
// opening or reading the file met.
func Probe(dir string) error {
	path := filepath.Join(dir, SegmentFile)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: %s is not a regular file", ErrFormat, path)
	}
	var hdr [hdrState + 4]byte
	if n, err := unix.Pread(fd, hdr[:], 0); err != nil || n != len(hdr) {
		return fmt.Errorf("%w: %s: short header", ErrFormat, path)
	}
	if binary.LittleEndian.Uint64(hdr[hdrMagic:]) != segmentMagic {
		return fmt.Errorf("%w: %s: bad magic", ErrFormat, path)
	}
	if s := binary.LittleEndian.Uint32(hdr[hdrState:]); s != stateActive {
		return fmt.Errorf("%w: %s: state %d, not active", ErrStale, path, s)
	}
	// A shared lock succeeds only when no writer holds the exclusive one.
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err == nil {
		_ = unix.Flock(fd, unix.LOCK_UN)
		return fmt.Errorf("%w: %s: no writer holds it", ErrStale, path)
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("store: probe writer lock of %s: %w", path, err)
	}
	return nil
}
