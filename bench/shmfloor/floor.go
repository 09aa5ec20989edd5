package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The floor: the least a cross-process read of one key can do. One seqlock slot in a
// file that another process wrote and this one maps read-only:
//
//	0   u64 sequence (odd while the writer changes the slot)
//	8   u64 key length
//	16  u64 value length
//	24  key, padded to 8 bytes, then the value
//
// A read loads the sequence, compares the key and copies the value with aligned 8-byte
// loads, and loads the sequence again; it retries a bounded number of times. No hash,
// no index, no expiry, no liveness check, no access record: everything cachee's reader
// does beyond this is what the comparison measures.
const (
	floorFile     = "floor.seg"
	floorSize     = 4096
	floorKeyOff   = 24
	floorRetries  = 64
	floorMaxBytes = floorSize - floorKeyOff
)

// writeFloor lays the slot out in dir/floor.seg: the writer's side, run in a child
// process so that the reader maps another process's file.
func writeFloor(dir string, key, value []byte) error {
	if pad8(len(key))+len(value) > floorMaxBytes {
		return fmt.Errorf("key and value of %d bytes do not fit the %d-byte slot", len(key)+len(value), floorMaxBytes)
	}
	path := filepath.Join(dir, floorFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(floorSize); err != nil {
		return err
	}
	b, err := unix.Mmap(int(f.Fd()), 0, floorSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	seq := (*uint64)(unsafe.Pointer(&b[0]))
	atomic.StoreUint64(seq, 1)
	binary.LittleEndian.PutUint64(b[8:], uint64(len(key)))
	binary.LittleEndian.PutUint64(b[16:], uint64(len(value)))
	copy(b[floorKeyOff:], key)
	copy(b[floorKeyOff+pad8(len(key)):], value)
	atomic.StoreUint64(seq, 2)
	return nil // the mapping stays: the process lives until the reader is done
}

func pad8(n int) int { return (n + 7) &^ 7 }

// floorReader maps a slot read-only.
type floorReader struct {
	base unsafe.Pointer
}

func openFloor(dir string) (*floorReader, error) {
	f, err := os.Open(filepath.Join(dir, floorFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, floorSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &floorReader{base: unsafe.Pointer(&b[0])}, nil
}

// ld is an aligned 8-byte load at off from base. The reader keeps base in a local: a
// field would be loaded again after every atomic load.
func ld(base unsafe.Pointer, off int) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Add(base, off)))
}

var errFloorRetry = errors.New("floor: the slot kept changing")

// get appends the value to dst if the slot holds key.
func (f *floorReader) get(key, dst []byte) ([]byte, bool, error) {
	base := f.base
	for range floorRetries {
		seq := ld(base, 0)
		if seq&1 != 0 {
			continue
		}
		klen, vlen := int(ld(base, 8)), int(ld(base, 16))
		found := klen == len(key) && pad8(klen)+vlen <= floorMaxBytes && equal(base, key)
		out := dst
		if found {
			out = copyValue(base, dst, floorKeyOff+pad8(klen), vlen)
		}
		if ld(base, 0) == seq {
			return out, found, nil
		}
	}
	return dst, false, errFloorRetry
}

// equal compares the key at floorKeyOff with key, a word at a time.
func equal(base unsafe.Pointer, key []byte) bool {
	n := len(key)
	p := unsafe.Pointer(unsafe.SliceData(key))
	i := 0
	for ; i+8 <= n; i += 8 {
		if ld(base, floorKeyOff+i) != *(*uint64)(unsafe.Add(p, i)) {
			return false
		}
	}
	if i < n {
		var k uint64
		for j := n - 1; j >= i; j-- {
			k = k<<8 | uint64(*(*byte)(unsafe.Add(p, j)))
		}
		if ld(base, floorKeyOff+i)&(1<<(8*uint(n-i))-1) != k {
			return false
		}
	}
	return true
}

// copyValue appends the n bytes at the aligned offset off to dst, a word at a time.
func copyValue(base unsafe.Pointer, dst []byte, off, n int) []byte {
	l := len(dst)
	if cap(dst)-l < n {
		dst = append(dst[:cap(dst)], make([]byte, n-(cap(dst)-l))...)
	}
	dst = dst[:l+n]
	out := unsafe.Add(unsafe.Pointer(unsafe.SliceData(dst)), l)
	i := 0
	for ; i+8 <= n; i += 8 {
		*(*uint64)(unsafe.Add(out, i)) = ld(base, off+i)
	}
	if i < n {
		w := ld(base, off+i)
		for ; i < n; i++ {
			*(*byte)(unsafe.Add(out, i)) = byte(w)
			w >>= 8
		}
	}
	return dst
}
