package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// fallocate reserves size bytes of f's filesystem for it.
func fallocate(f *os.File, size uint64) error {
	return unix.Fallocate(int(f.Fd()), 0, 0, int64(size))
}
