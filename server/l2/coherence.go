package l2

import (
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// Coherence: L1 may hold a value from L2 only while Redis tracks that key for this
// sidecar, so that a change by anyone else reaches us as an invalidation. Three races
// could leave a stale value behind, and the state here closes each of them:
//
//  1. A read returns v1; another pod writes v2; its invalidation arrives (on the
//     connection's reader goroutine) before the reading goroutine stores v1 in L1.
//     The delete finds nothing, then v1 lands and stays. So every L2 operation on a
//     key registers first (begin), an invalidation bumps the key's sequence number,
//     and the operation fills L1 at the end only if the number is unchanged.
//  2. Two operations of this sidecar on one key cross in L2 (a read-through and a
//     write-through, or two writes). NOLOOP means our own write sends us nothing, so
//     the loser could fill L1 with a value L2 no longer has. So begin also bumps the
//     sequence, and so does an end while others are in flight, and an operation fills
//     only if the sequence is still its own and no other one is in flight: any two
//     that overlapped fill nothing, and the next read fetches the key again.
//  3. The tracking connection breaks: Redis forgets what it tracked for us, and
//     invalidations sent meanwhile are lost. So a break bumps the epoch (operations
//     that began before it fill nothing), stops the request path from using L2, and
//     L1 is flushed (if it holds anything from L2) before L2 is used again.
//
// The flush waits for the reconnection rather than happening at the break because an
// L2 that is down cannot change, so L1's copies stay right while it is down and go on
// being served (an L2 outage must not cost the hits L1 can answer); what may have changed
// unseen is only known to be possible once L2 is back. The cost is that a sidecar cut
// off from an L2 that others still write serves its copies until it reconnects or
// they reach --l1-ttl.
//
// A write also removes the key from Redis's tracking table (Redis forgets every
// tracker of a key it invalidates, and NOLOOP only spares the writer the message), so
// a write-through runs a PTTL of the key in the same MULTI/EXEC to be tracked again.

// keyState is the coherence state of a key with operations in flight.
type keyState struct {
	seq    uint64  // bumped by every begin and every invalidation of the key
	refs   int     // operations in flight
	flight *flight // the read-through in flight, which other readers of the key join
}

// op is one operation on a key, between begin and end.
type op struct {
	key   string
	ks    *keyState
	seq   uint64
	epoch uint64
}

// begin registers an operation on key. Caller holds t.mu.
func (t *Tier) begin(key string) op {
	ks := t.keys[key]
	if ks == nil {
		ks = &keyState{}
		t.keys[key] = ks
	}
	ks.seq++
	ks.refs++
	return op{key: key, ks: ks, seq: ks.seq, epoch: t.epoch}
}

// end finishes o and reports whether it may fill L1: nothing invalidated the key,
// no other operation on it started, none is still in flight, and the invalidation
// stream did not break since o began. Caller holds t.mu.
func (t *Tier) end(o op) bool {
	ok := o.ks.seq == o.seq && o.ks.refs == 1 && o.epoch == t.epoch
	if o.ks.refs > 1 {
		// Others are in flight, and may have reached L2 before this one although
		// they finish after it: none of them may fill either.
		o.ks.seq++
	}
	o.ks.refs--
	if o.ks.refs == 0 {
		delete(t.keys, o.key)
	}
	return ok
}

// invalidate handles an invalidation message: keys L2 changed, or nil for all of
// them (FLUSHALL, FLUSHDB). It runs on the connection's reader goroutine, so it
// only deletes and returns.
func (t *Tier) invalidate(keys []rueidis.RedisMessage) {
	if keys == nil {
		t.flush(flushL2Flushed)
		return
	}
	now := time.Now()
	t.m.invReceived.Add(float64(len(keys)))
	applied := 0
	t.mu.Lock()
	for i := range keys {
		k, err := keys[i].ToString()
		if err != nil {
			continue
		}
		if k == t.canaryKey {
			if sent := t.canarySent.Swap(0); sent != 0 {
				t.m.lag.Observe(now.Sub(time.Unix(0, sent)).Seconds())
			}
			continue
		}
		if ks := t.keys[k]; ks != nil {
			ks.seq++
		}
		t.neg.del(k)
		if ok, _ := t.st.Delete([]byte(k)); ok {
			applied++
		}
	}
	t.mu.Unlock()
	t.m.invApplied.Add(float64(applied))
}

// flush empties L1 of everything L2 could have changed unseen: operations in flight
// fill nothing, and L1 is cleared if it holds values from L2. why labels the metric.
func (t *Tier) flush(why string) {
	t.mu.Lock()
	t.epoch++
	t.neg.clear()
	cleared := t.dirty
	if cleared {
		t.st.Clear()
		t.dirty = false
	}
	t.mu.Unlock()
	if cleared {
		t.m.flushes.WithLabelValues(why).Inc()
		t.log.Warn("flushed L1 to stay coherent with L2", "reason", why)
	}
}

// streamBroke handles the loss of an invalidation stream. Operations in flight fill
// nothing, and negative entries go. If L1 holds values from L2, the loss matters: it is
// counted and logged, L2 leaves the request path, and the keeper reconnects, flushing
// L1 before L2 is used again (see resyncIfNeeded). A connection that closes while L1
// holds nothing from L2 lost nothing: a cluster client closes a few while it discovers
// the topology, for instance.
func (t *Tier) streamBroke(why string, err error) {
	if t.closing.Load() {
		return
	}
	t.mu.Lock()
	t.epoch++
	t.neg.clear()
	matters := t.dirty
	if matters {
		t.resync = true
	}
	t.mu.Unlock()
	if !matters {
		t.log.Debug("a tracking connection closed while L1 held nothing from L2", "reason", why, "err", err)
		t.suspect()
		return
	}
	t.m.breaks.WithLabelValues(why).Inc()
	t.log.Warn("invalidation stream broken; L1 will be flushed when L2 is back", "reason", why, "err", err)
	t.setUp(false, fmt.Errorf("invalidation stream broken (%s): %v", why, err))
	t.suspect()
}

// resyncIfNeeded flushes L1 after a break, once the tracking connection is back and
// before the request path uses L2 again.
func (t *Tier) resyncIfNeeded() {
	t.mu.Lock()
	need := t.resync
	t.resync = false
	t.mu.Unlock()
	if need {
		t.flush(flushStreamBreak)
	}
}

// connWatch is the rueidis CacheStore of each tracking connection. cachee never
// uses rueidis's own client-side cache (it never calls DoCache): this store is how it
// hears of the two events that matter, an invalidation (Delete) and the connection
// breaking (Close).
type connWatch struct{ t *Tier }

func (connWatch) Flight(string, string, time.Duration, time.Time) (rueidis.RedisMessage, rueidis.CacheEntry) {
	return rueidis.RedisMessage{}, nil
}
func (connWatch) Update(string, string, rueidis.RedisMessage) int64 { return 0 }
func (connWatch) Cancel(string, string, error)                      {}
func (w connWatch) Delete(keys []rueidis.RedisMessage)              { w.t.invalidate(keys) }
func (w connWatch) Close(err error)                                 { w.t.streamBroke(breakConnClosed, err) }

// negCacheMax bounds the negative cache: it lives outside --max-memory, so it stays
// small (about 100 bytes an entry plus the key).
const negCacheMax = 1 << 16

// negCache remembers keys L2 lacked, until their deadline. Guarded by t.mu.
type negCache struct {
	max int
	m   map[string]time.Time
}

func (n *negCache) has(key string, now time.Time) bool {
	d, ok := n.m[key]
	if ok && now.After(d) {
		delete(n.m, key)
		return false
	}
	return ok
}

func (n *negCache) add(key string, until time.Time) {
	if n.m == nil {
		n.m = make(map[string]time.Time)
	}
	if len(n.m) >= n.max {
		// Full: drop an arbitrary tenth (map order is random), expired or not.
		drop := n.max / 10
		for k := range n.m {
			delete(n.m, k)
			if drop--; drop <= 0 {
				break
			}
		}
	}
	n.m[key] = until
}

func (n *negCache) del(key string) {
	if n.m != nil {
		delete(n.m, key)
	}
}

func (n *negCache) clear() { n.m = nil }
