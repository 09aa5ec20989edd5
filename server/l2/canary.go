package l2

import (
	"context"
	"strconv"
	"time"
)

// canaryMissAfter is how long the canary's invalidation may take before the stream
// counts as broken. Far beyond any healthy lag (which is sub-millisecond on a LAN),
// so that only a stream that is really gone trips it.
const canaryMissAfter = 5 * time.Second

// canary measures invalidation lag end to end, the way another pod's write reaches
// this sidecar: every CanaryInterval it reads its canary key on the tracking
// connection (so Redis tracks it for us), then writes the current time into it over
// the aux connection, as a stranger would. The histogram observes the time from just
// before that write is sent to the moment the invalidation is handled on the tracking
// connection's reader: the write's trip to L2, Redis's push, and our handling of it.
//
// It also proves the stream alive: a connection can stay open while tracking has
// stopped working (it was turned off, or the invalidation went to a connection that
// is gone), and a canary invalidation that does not come within canaryMissAfter is
// treated as a break.
func (t *Tier) canary() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.CanaryInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		if sent := t.canarySent.Load(); sent != 0 {
			if time.Since(time.Unix(0, sent)) < canaryMissAfter {
				continue // still waiting for the last one
			}
			if t.canarySent.CompareAndSwap(sent, 0) {
				t.streamBroke(breakCanaryMissing, nil)
			}
			continue
		}
		t.CanaryOnce()
	}
}

// CanaryOnce tracks and writes the canary once (see canary); the invalidation, when
// it arrives, is observed in cachee_l2_invalidation_lag_seconds.
func (t *Tier) CanaryOnce() {
	data, aux := t.clientsNow()
	if data == nil || !t.up.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(t.cfg.Timeout, time.Second))
	defer cancel()
	if err := data.Do(ctx, data.B().Get().Key(t.canaryKey).Build()).Error(); err != nil && !isRedisNil(err) {
		return
	}
	now := time.Now()
	t.canarySent.Store(now.UnixNano())
	ttl := max(10*t.cfg.CanaryInterval, time.Minute)
	err := aux.Do(ctx, aux.B().Set().Key(t.canaryKey).Value(strconv.FormatInt(now.UnixNano(), 10)).
		Px(ttl).Build()).Error()
	if err != nil {
		t.canarySent.CompareAndSwap(now.UnixNano(), 0)
	}
}
