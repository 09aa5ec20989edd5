package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
)

// SelfCheckingValue builds a value that proves, on its own, which key wrote it and that no byte
// of it is torn: [crc32 of key][version][payload of varying length][crc32 of all before].
// Exported for the black-box tests.
func SelfCheckingValue(key []byte, version uint64, rng *rand.Rand) []byte {
	n := 16 + rng.IntN(400)
	if rng.IntN(40) == 0 {
		n = 16 + rng.IntN(20000)
	}
	v := make([]byte, n+4)
	binary.LittleEndian.PutUint32(v, crc32.ChecksumIEEE(key))
	binary.LittleEndian.PutUint64(v[4:], version)
	for i := 12; i < n; i++ {
		v[i] = byte(version) + byte(i)
	}
	binary.LittleEndian.PutUint32(v[n:], crc32.ChecksumIEEE(v[:n]))
	return v
}

// CheckSelfCheckingValue reports what is wrong with v as a SelfCheckingValue of key, or "".
func CheckSelfCheckingValue(key, v []byte) string {
	if len(v) < 20 {
		return fmt.Sprintf("short value (%d bytes)", len(v))
	}
	n := len(v) - 4
	if crc32.ChecksumIEEE(v[:n]) != binary.LittleEndian.Uint32(v[n:]) {
		return "torn value (checksum)"
	}
	if crc32.ChecksumIEEE(key) != binary.LittleEndian.Uint32(v) {
		return "value of another key"
	}
	return ""
}
