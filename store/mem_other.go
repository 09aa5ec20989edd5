//go:build !amd64

package store

import "unsafe"

// copyOut copies len(out) bytes starting at off out of the segment, between the two
// loads of a bucket's sequence word that make it a seqlock read. Where loads may be
// reordered with each other (arm64), only atomic loads keep the copy before the second
// sequence load: copy word by word.
func copyOut(base unsafe.Pointer, out []byte, off uint64) { copyWords(base, out, off) }
