package main

// This file is the only one that talks to cachee. It reads hot keys straight from the
// shared-memory segment and goes to the sidecar over its Unix socket otherwise, which
// is what the Go SDK (sdk/go, being written) will do for every Go application.
//
// TODO(sdk/go): when sdk/go lands, replace this file with a wrapper of the same shape
// (newCache, Get returning the tier that answered, Set, Close) over the SDK's client,
// and delete the reader and RecordAccess plumbing below. Nothing else changes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

// tier names who answered a read.
type tier string

const (
	tierShm     tier = "shm"     // the segment, read in this process
	tierSidecar tier = "sidecar" // cachee over the socket (with an L2, often a read-through)
	tierOrigin  tier = "origin"  // neither had it: the app's own source of truth
)

// readerCheckEvery is how often the segment reader checks that its writer is alive;
// the store's Reader.Check is meant to run every few tens of milliseconds.
const readerCheckEvery = 50 * time.Millisecond

// maxPendingRefs caps the hits waiting to be reported; past it they are dropped, so a
// sidecar that stops answering RecordAccess cannot grow this process's memory.
const maxPendingRefs = 1 << 16

// accessFlushEvery bounds how long a shared-memory hit waits before the sidecar hears
// of it (for its hit rate and its eviction policy).
const accessFlushEvery = 50 * time.Millisecond

type cache struct {
	conn   *grpc.ClientConn
	client cacheev1.CacheServiceClient
	shmDir string
	log    *slog.Logger

	mu     sync.Mutex
	reader *store.Reader // nil until the segment exists, or while it is stale
	refs   []uint64      // hits to report with RecordAccess

	stop chan struct{}
	done chan struct{}
}

// newCache connects to the socket lazily (gRPC dials on first use) and, when shmDir
// is set, maps the segment as soon as it appears.
func newCache(socket, shmDir string, log *slog.Logger) (*cache, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("cachee client: %w", err)
	}
	c := &cache{
		conn:   conn,
		client: cacheev1.NewCacheServiceClient(conn),
		shmDir: shmDir,
		log:    log,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go c.maintain()
	return c, nil
}

// Get reads key from the segment when it can, else from the sidecar. found is false
// on a miss; err is set only when the sidecar could not answer (the caller then goes
// to its origin: a sidecar failure costs latency, never an error to the user).
func (c *cache) Get(ctx context.Context, key []byte, skipShm bool) (value []byte, from tier, found bool, err error) {
	if !skipShm {
		if v, ok := c.getShm(key); ok {
			return v, tierShm, true, nil
		}
	}
	resp, err := c.client.Get(ctx, &cacheev1.GetRequest{Key: key})
	if err != nil {
		return nil, tierSidecar, false, err
	}
	return resp.GetValue(), tierSidecar, resp.GetFound(), nil
}

// getShm is a lock-free read of the segment; anything but a clean hit (a miss, a read
// that kept racing the writer, a stale segment) sends the caller to the sidecar.
func (c *cache) getShm(key []byte) ([]byte, bool) {
	c.mu.Lock()
	r := c.reader
	c.mu.Unlock()
	if r == nil {
		return nil, false
	}
	v, ref, found, err := r.Get(key, nil)
	if err != nil || !found {
		return nil, false
	}
	c.mu.Lock()
	if len(c.refs) < maxPendingRefs {
		c.refs = append(c.refs, ref)
	}
	c.mu.Unlock()
	return v, true
}

// Set writes through the sidecar (the segment is read-only here).
func (c *cache) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	_, err := c.client.Set(ctx, &cacheev1.SetRequest{Key: key, Value: value, Ttl: durationpb.New(ttl)})
	return err
}

// maintain opens, checks and reopens the segment reader, and reports shared-memory
// hits to the sidecar in batches.
func (c *cache) maintain() {
	defer close(c.done)
	check := time.NewTicker(readerCheckEvery)
	defer check.Stop()
	flush := time.NewTicker(accessFlushEvery)
	defer flush.Stop()
	for {
		select {
		case <-c.stop:
			c.flushAccess()
			return
		case <-check.C:
			c.checkReader()
		case <-flush.C:
			c.flushAccess()
		}
	}
}

func (c *cache) checkReader() {
	if c.shmDir == "" {
		return
	}
	c.mu.Lock()
	r := c.reader
	c.mu.Unlock()
	if r != nil {
		// A third of a second of writer-clock lag is far beyond a live writer's, which
		// publishes its clock continually.
		if err := r.Check(300 * time.Millisecond); err == nil {
			return
		} else {
			c.log.Info("shared-memory segment stale; reopening", "err", err)
		}
		c.mu.Lock()
		c.reader = nil
		c.refs = c.refs[:0] // refs of the old segment mean nothing to the new one
		c.mu.Unlock()
		r.Close()
	}
	nr, err := store.OpenReader(c.shmDir)
	if err != nil {
		return // not there yet, or being replaced: the socket serves meanwhile
	}
	if err := nr.Check(300 * time.Millisecond); err != nil {
		nr.Close()
		return
	}
	c.mu.Lock()
	c.reader = nr
	c.mu.Unlock()
	c.log.Info("reading the shared-memory segment directly", "path", nr.Path())
}

func (c *cache) flushAccess() {
	c.mu.Lock()
	refs := c.refs
	c.refs = nil
	c.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// Lossy on purpose: a lost batch skews the hit rate a little, and retrying would
	// let a sick sidecar pile up memory here.
	if _, err := c.client.RecordAccess(ctx, &cacheev1.RecordAccessRequest{Refs: refs}); err != nil {
		c.log.Debug("record access", "err", err, "refs", len(refs))
	}
}

// Close stops the background work, reports the last hits and closes the connection.
func (c *cache) Close() error {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	r := c.reader
	c.reader = nil
	c.mu.Unlock()
	var err error
	if r != nil {
		err = r.Close()
	}
	return errors.Join(err, c.conn.Close())
}
