package store

import "unsafe"

// copyOut copies len(out) bytes starting at off out of the segment, between the two
// loads of a bucket's sequence word that make it a seqlock read. On amd64 loads are not
// reordered with other loads, so a plain copy (memmove: 16-byte loads, all inside the
// bytes copied) is ordered before the second sequence load as the word loads are, and
// a torn copy is caught by that load the same way (Linux's seqlock readers on x86 copy
// the same way).
func copyOut(base unsafe.Pointer, out []byte, off uint64) {
	copy(out, unsafe.Slice((*byte)(unsafe.Add(base, off)), len(out)))
}
