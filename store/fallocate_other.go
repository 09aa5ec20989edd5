//go:build !linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// fallocate has no portable equivalent: EOPNOTSUPP makes the caller size the file
// instead, as on a Linux filesystem without fallocate.
func fallocate(*os.File, uint64) error { return unix.EOPNOTSUPP }
