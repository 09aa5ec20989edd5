package main

// This file is the only one that talks to cachee, through the Go SDK: hot keys are read
// straight from the shared-memory segment, everything else goes to the sidecar over its
// Unix socket (and, when the sidecar has an L2, through it to Redis).

import (
	"context"
	"errors"
	"log/slog"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
)

// tier names who answered a read.
type tier string

const (
	tierShm     tier = "shm"     // the segment, read in this process
	tierSidecar tier = "sidecar" // cachee over the socket (with an L2, often a read-through)
	tierOrigin  tier = "origin"  // neither had it: the app's own source of truth
)

type cache struct {
	shm    *cachee.Client // reads the segment first
	socket *cachee.Client // always asks the sidecar (?via=socket)
}

// newCache connects to the sidecar's socket lazily (calls fail fast until it serves)
// and, when shmDir is set, maps the segment as soon as it appears.
func newCache(socket, shmDir string, log *slog.Logger) (*cache, error) {
	target := "unix://" + socket
	shm, err := cachee.Dial(context.Background(), cachee.WithTarget(target), cachee.WithShmDir(shmDir),
		cachee.WithLogger(log), cachee.WithTimeout(time.Second))
	if err != nil {
		return nil, err
	}
	direct, err := cachee.Dial(context.Background(), cachee.WithTarget(target), cachee.WithoutShm(),
		cachee.WithLogger(log), cachee.WithTimeout(time.Second))
	if err != nil {
		shm.Close()
		return nil, err
	}
	return &cache{shm: shm, socket: direct}, nil
}

// Get reads key from the segment when it can, else from the sidecar. found is false
// on a miss; err is set only when the sidecar could not answer (the caller then goes
// to its origin: a sidecar failure costs latency, never an error to the user).
func (c *cache) Get(ctx context.Context, key []byte, skipShm bool) (value []byte, from tier, found bool, err error) {
	cl := c.shm
	if skipShm {
		cl = c.socket
	}
	v, found, src, err := cl.GetWithSource(ctx, string(key), nil)
	if src == cachee.SourceShm {
		return v, tierShm, found, err
	}
	return v, tierSidecar, found, err
}

// Set writes through the sidecar (the segment is read-only here).
func (c *cache) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	_, err := c.shm.Set(ctx, string(key), value, cachee.WithTTL(ttl))
	return err
}

// Close reports the last shared-memory hits and closes both clients.
func (c *cache) Close() error {
	return errors.Join(c.shm.Close(), c.socket.Close())
}
