package cachee

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

// Backoffs of the segment watcher after a failure that cost a mapping. A closed
// store.Reader keeps its address range reserved (so that a racing Get reads zeros, not
// a fault), so mapping and dropping a segment in a tight loop would eat address space.
const (
	minMapBackoff = 100 * time.Millisecond
	maxMapBackoff = 5 * time.Second
)

// maxCheckInterval bounds the time between two checks of a published segment, whatever
// WithStaleness asks: a reader trusts the sidecar's clock for deadlines more than a
// second away only while that clock lags by at most store.MaxReaderLag plus the time to
// the next check (docs/segment-format.md, "Expiry").
const maxCheckInterval = 100 * time.Millisecond

// segmentWatcher decides which segment, if any, Gets read. It alone opens, publishes
// and closes Readers; Gets only load the published pointer.
//
// A Reader is published only when all of these hold: the file is a segment in state
// active whose writer holds its lock, its clock is fresh, and its generation is the
// one the gRPC target reports in Stats, so that shared-memory reads and gRPC calls
// reach the same store. It is dropped as soon as Check fails (every check interval) or
// a Get sees the segment closed or re-opened (at once, through c.wake).
type segmentWatcher struct {
	c    *Client
	path string

	held *store.Reader // published
	cand *store.Reader // mapped, waiting for the sidecar to confirm its generation

	nextMap    time.Time
	mapBackoff time.Duration
	nextVerify time.Time
	verifyWait time.Duration
	lastReason string // last reason for not reading shm, logged once
}

func newSegmentWatcher(c *Client) *segmentWatcher {
	return &segmentWatcher{c: c, path: filepath.Join(c.opts.shmDir, store.SegmentFile)}
}

func (w *segmentWatcher) run(ctx context.Context) {
	defer w.c.done.Done()
	defer w.closeAll()
	t := time.NewTicker(min(w.c.opts.checkInterval, maxCheckInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.c.wake:
		}
		w.step(ctx, time.Now())
	}
}

func (w *segmentWatcher) closeAll() {
	w.c.seg.Store(nil)
	for _, r := range []*store.Reader{w.held, w.cand} {
		if r != nil {
			r.Close()
		}
	}
	w.held, w.cand = nil, nil
}

// step checks the published segment, or works toward publishing one.
func (w *segmentWatcher) step(ctx context.Context, now time.Time) {
	c := w.c
	if w.held != nil {
		err := w.held.Check(c.opts.maxLag)
		if err == nil {
			return
		}
		// Unpublish first: Gets already inside the old Reader finish on it, and
		// Close makes any still running read zeros, which they take for stale.
		c.seg.Store(nil)
		w.held.Close()
		w.held = nil
		c.ctr.stale.Add(1)
		c.log.Info("cachee: stopped reading shared memory; reading over gRPC until the sidecar is back", "reason", err)
		w.lastReason = err.Error()
	}
	if w.cand == nil {
		if now.Before(w.nextMap) {
			return
		}
		if err := store.Probe(w.c.opts.shmDir); err != nil {
			w.note(err)
			return
		}
		r, err := store.OpenReader(c.opts.shmDir)
		if err != nil {
			w.mapFailed(now, err)
			return
		}
		w.cand = r
	}
	if err := w.cand.Check(c.opts.maxLag); err != nil {
		w.cand.Close()
		w.cand = nil
		w.mapFailed(now, err)
		return
	}
	if now.Before(w.nextVerify) {
		return
	}
	if err := w.verify(ctx, w.cand.Generation()); err != nil {
		w.verifyWait = min(max(2*w.verifyWait, c.opts.checkInterval), time.Second)
		w.nextVerify = now.Add(w.verifyWait)
		w.note(err)
		return
	}
	w.held, w.cand = w.cand, nil
	w.mapBackoff, w.verifyWait = 0, 0
	w.nextMap, w.nextVerify = time.Time{}, time.Time{}
	w.lastReason = ""
	c.seg.Store(w.held)
	c.ctr.maps.Add(1)
	c.log.Info("cachee: reading shared memory", "segment", w.held.Path(), "generation", fmt.Sprintf("%016x", w.held.Generation()))
}

// verify asks the sidecar for its generation: a segment is only read when it is the
// one the sidecar at the gRPC target writes.
func (w *segmentWatcher) verify(ctx context.Context, gen uint64) error {
	ctx, cancel := context.WithTimeout(ctx, w.c.opts.timeout)
	defer cancel()
	st, err := w.c.rpc.Stats(ctx, &cacheev1.StatsRequest{})
	if err != nil {
		return fmt.Errorf("cannot confirm the segment with the sidecar: %w", fromStatus(err))
	}
	if st.GetGeneration() != gen {
		return fmt.Errorf("segment %s has generation %016x but the sidecar at %s reports %016x: not its segment (yet)",
			w.path, gen, w.c.opts.target, st.GetGeneration())
	}
	return nil
}

func (w *segmentWatcher) mapFailed(now time.Time, err error) {
	w.mapBackoff = min(max(2*w.mapBackoff, minMapBackoff), maxMapBackoff)
	w.nextMap = now.Add(w.mapBackoff)
	w.note(err)
}

// note logs why shared memory is not in use, once per distinct reason.
func (w *segmentWatcher) note(err error) {
	if msg := err.Error(); msg != w.lastReason {
		w.lastReason = msg
		w.c.log.Debug("cachee: not reading shared memory", "reason", msg)
	}
}
