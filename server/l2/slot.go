package l2

import "bytes"

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM: polynomial 0x1021,
// initial value 0) of the key, or of its hash tag (the part between the first '{'
// and the next '}', when not empty), modulo 16384, as the cluster specification
// defines it.
func Slot(key []byte) uint16 {
	if i := bytes.IndexByte(key, '{'); i >= 0 {
		if j := bytes.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, b := range key {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc & 16383
}
