package cachee

import (
	"errors"

	"github.com/cachee/cachee/store"
)

// Errors of HGet, which reads shared memory alone (a key holding a string is
// ErrWrongType, as a gRPC Get of a hash is).
var (
	// ErrNoSharedMemory: the sidecar's segment is not mapped in this process, or could
	// not be read now (the sidecar is restarting, or a long write kept changing the
	// hash). The gRPC API has no hash calls yet (docs/grpc.md): read the field over
	// RESP (HGET) instead.
	ErrNoSharedMemory = errors.New("cachee: shared memory not available")
)

// HGet returns the value of field in the hash at key, read from the shared-memory
// segment: no call to the sidecar, as a shared-memory Get. found is false when the
// segment holds no such field (or no such key) now; with an L2 behind the sidecar the
// key may still exist there, which RESP's HGET would read through. A key holding a
// string is ErrWrongType; a segment that cannot answer is ErrNoSharedMemory.
func (c *Client) HGet(key, field string, dst []byte) (value []byte, found bool, err error) {
	r := c.seg.Load()
	if r == nil {
		return dst, false, ErrNoSharedMemory
	}
	v, ref, found, err := r.HGet(keyBytes(key), keyBytes(field), dst)
	switch {
	case found:
		c.acc.record(ref)
		return v, true, nil
	case err == nil:
		return v, false, nil
	case errors.Is(err, store.ErrWrongType):
		return dst, false, ErrWrongType
	}
	if kerr := c.shmError(err); kerr != nil {
		return dst, false, kerr
	}
	c.ctr.fallbacks.Add(1)
	return dst, false, ErrNoSharedMemory
}
