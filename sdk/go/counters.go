package cachee

import "sync/atomic"

// Counters describe what a Client has done since Dial. They are for metrics and tests;
// reading them is cheap but not free (it sums per-stripe counters).
type Counters struct {
	// ShmHits are Gets answered from the shared-memory segment.
	ShmHits uint64
	// ShmFallbacks are Gets that looked in the segment and then asked the sidecar:
	// a miss, an expired entry, a read that kept racing the writer, or a segment
	// that had gone stale.
	ShmFallbacks uint64
	// ShmContended and ShmCorrupt count the fallbacks caused by a read that ran
	// out of retries and by a segment whose bytes contradicted its format.
	ShmContended uint64
	ShmCorrupt   uint64
	// ShmMaps counts segments the Client started reading (the first one included);
	// ShmStale counts the ones it stopped reading because the sidecar stopped,
	// restarted, replaced the file or stalled.
	ShmMaps  uint64
	ShmStale uint64
	// ShmActive says whether Gets read the segment now.
	ShmActive bool

	// AccessReported are shared-memory hits reported to the sidecar; AccessDropped
	// are hits not reported (the buffer is lossy by design, and a report fails
	// while the sidecar is down).
	AccessReported uint64
	AccessDropped  uint64

	// Loads are calls of a GetOrLoad loader. SidecarErrors are sidecar failures
	// that GetOrLoad absorbed: a Get or Set that failed while the loader's value was
	// returned.
	Loads         uint64
	SidecarErrors uint64
}

// counters are the Client's live counters. Shared-memory hits are counted by the
// access buffer itself, so a hit pays for one atomic add, not two.
type counters struct {
	fallbacks, contended, corrupt atomic.Uint64
	maps, stale                   atomic.Uint64
	loads, sidecarErrors          atomic.Uint64
}

// Counters returns a snapshot of the Client's counters.
func (c *Client) Counters() Counters {
	return Counters{
		ShmHits:        c.acc.hits(),
		ShmFallbacks:   c.ctr.fallbacks.Load(),
		ShmContended:   c.ctr.contended.Load(),
		ShmCorrupt:     c.ctr.corrupt.Load(),
		ShmMaps:        c.ctr.maps.Load(),
		ShmStale:       c.ctr.stale.Load(),
		ShmActive:      c.seg.Load() != nil,
		AccessReported: c.acc.sent.Load(),
		AccessDropped:  c.acc.dropped.Load(),
		Loads:          c.ctr.loads.Load(),
		SidecarErrors:  c.ctr.sidecarErrors.Load(),
	}
}
