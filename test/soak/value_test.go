package soak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
)

// A self-checking value names its key (by hash) and its version, carries its own
// length, and ends with a CRC-32C of everything before it, over a filler that
// differs from version to version: a torn read (parts of two versions, or of another
// key's value, or a value cut short) cannot pass check.
//
//	"SOAK" | version (8) | length (4) | key hash (8) | filler | CRC-32C (4)
const (
	valueMagic  = "SOAK"
	valueHeader = 4 + 8 + 4 + 8
	minValue    = valueHeader + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func keyHash(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()
}

// valueSize is the length of key's value at version: mostly small, now and then
// large (up to maxLarge), as a cache of mixed objects sees.
func valueSize(key string, version uint64, maxLarge int) int {
	r := rand.New(rand.NewPCG(keyHash(key), version))
	switch p := r.IntN(100); {
	case p < 2 && maxLarge > 64<<10:
		return 64<<10 + r.IntN(maxLarge-64<<10)
	case p < 20:
		return 4<<10 + r.IntN(28<<10)
	default:
		return minValue + r.IntN(2<<10)
	}
}

func makeValue(key string, version uint64, size int) []byte {
	size = max(size, minValue)
	v := make([]byte, size)
	copy(v, valueMagic)
	binary.LittleEndian.PutUint64(v[4:], version)
	binary.LittleEndian.PutUint32(v[12:], uint32(size))
	binary.LittleEndian.PutUint64(v[16:], keyHash(key))
	x := keyHash(key) ^ version*0x9e3779b97f4a7c15
	for i := valueHeader; i < size-4; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = byte(x)
	}
	binary.LittleEndian.PutUint32(v[size-4:], crc32.Checksum(v[:size-4], castagnoli))
	return v
}

var errTorn = errors.New("torn or wrong value")

// checkValue returns the version of v, a value read for key, or errTorn.
func checkValue(key string, v []byte) (uint64, error) {
	if len(v) < minValue || string(v[:4]) != valueMagic {
		return 0, fmt.Errorf("%w: %s: %d bytes, no header", errTorn, key, len(v))
	}
	n := len(v)
	if got := binary.LittleEndian.Uint32(v[12:]); int(got) != n {
		return 0, fmt.Errorf("%w: %s: %d bytes, header says %d", errTorn, key, n, got)
	}
	if crc32.Checksum(v[:n-4], castagnoli) != binary.LittleEndian.Uint32(v[n-4:]) {
		return 0, fmt.Errorf("%w: %s: checksum mismatch", errTorn, key)
	}
	if binary.LittleEndian.Uint64(v[16:]) != keyHash(key) {
		return 0, fmt.Errorf("%w: %s: the value of another key", errTorn, key)
	}
	return binary.LittleEndian.Uint64(v[4:]), nil
}
