package l2

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// Value is one key's result of a read-through.
type Value struct {
	Data  []byte
	Found bool
}

// flight is a read-through of one key in flight; concurrent readers of the key wait
// for it instead of reading L2 again (singleflight).
type flight struct {
	done chan struct{}
	val  Value
	seq  uint64 // the key's sequence when it started: joinable while it is unchanged
}

// maxPipeline bounds the commands of one pipelined call: rueidis sends a larger one
// over a pooled connection of its own, which is not the tracking connection.
const maxPipeline = 1000

// Get reads key from L1, and on a miss from L2 (filling L1). It implements
// tier.Tier: an L2 that fails or is down makes a miss, not an error (counted in
// cachee_l2_errors_total), so a cold key costs at most --l2-timeout.
func (t *Tier) Get(_ context.Context, key, dst []byte) ([]byte, bool, error) {
	v, ok, err := t.st.Get(key, dst)
	if ok || err != nil {
		return v, ok, err
	}
	r := t.fetch([][]byte{key})[0]
	if !r.Found {
		return dst, false, nil
	}
	return append(dst, r.Data...), true, nil
}

// GetMany is Get for several keys; the misses share one L2 round trip.
func (t *Tier) GetMany(_ context.Context, keys [][]byte, fn func(i int, value []byte, found bool, err error)) {
	var missing [][]byte
	var at []int
	var buf []byte
	for i, k := range keys {
		v, ok, err := t.st.Get(k, buf[:0])
		buf = v
		if ok || err != nil {
			fn(i, v, ok, err)
			continue
		}
		missing = append(missing, k)
		at = append(at, i)
	}
	if len(missing) == 0 {
		return
	}
	for j, r := range t.fetch(missing) {
		fn(at[j], r.Data, r.Found, nil)
	}
}

// FetchAsync reads keys that missed L1 through from L2 on another goroutine and calls
// done with their values, in order, within about --l2-timeout. It never blocks the
// caller: the RESP event loop hands its misses over this way. keys are copied.
func (t *Tier) FetchAsync(keys [][]byte, done func([]Value)) {
	cp := make([][]byte, len(keys))
	for i, k := range keys {
		cp[i] = append([]byte(nil), k...)
	}
	go func() { done(t.fetch(cp)) }()
}

// fetch reads keys (which missed L1) through from L2: each key is read once however
// many callers want it, found values go to L1 with a TTL of --l1-ttl capped by the
// key's PTTL, and nothing waits longer than --l2-timeout. Its phases: claim the keys
// (lead a read, or join one in flight), read the led ones from L2, settle them (fill
// L1, remember misses, hand the values to joiners), then wait for the joined ones.
func (t *Tier) fetch(keys [][]byte) []Value {
	out := make([]Value, len(keys))
	data, _ := t.clientsNow()
	if !t.up.Load() || data == nil {
		t.m.errors.WithLabelValues("read", "down").Inc()
		return out
	}
	deadline := time.Now().Add(t.cfg.Timeout)
	leads, joins := t.claim(keys)
	if len(leads) > 0 {
		r := t.readL2(data, leads, deadline)
		t.settle(leads, r, out)
	}
	t.await(joins, deadline, out)
	return out
}

// lead is a key whose read this fetch makes, for itself and for whoever joins it.
type lead struct {
	i int // index in fetch's keys
	o op
	f *flight
}

// claim sorts keys into the reads this fetch leads and the reads in flight it joins
// (by index in keys). Keys that L2 lacked recently (--negative-ttl) are neither.
func (t *Tier) claim(keys [][]byte) (leads []lead, joins map[int]*flight) {
	joins = map[int]*flight{}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, k := range keys {
		key := string(k)
		if t.cfg.NegativeTTL > 0 && t.neg.has(key, now) {
			t.m.negHits.Inc()
			continue
		}
		// Join a read in flight only if nothing began or was invalidated since it
		// started: a read that began before an acknowledged write, or before another
		// pod's change reached us, may return the old value. (A key asked for twice
		// in one call joins its own first read.)
		if ks := t.keys[key]; ks != nil && ks.flight != nil && ks.flight.seq == ks.seq {
			joins[i] = ks.flight
			continue
		}
		o := t.begin(key)
		f := &flight{done: make(chan struct{}), seq: o.seq}
		o.ks.flight = f
		leads = append(leads, lead{i, o, f})
	}
	return leads, joins
}

// l2Reads are the answers to readL2, by lead.
type l2Reads struct {
	vals  []Value
	pttls []int64 // the keys' remaining TTL in ms, as PTTL answers
	bad   []bool  // the read failed: neither a value nor a miss
}

// readL2 reads the leads' keys from L2 with GET and PTTL, pipelined in batches, by the
// deadline. A failure counts as a miss; a network failure makes L2 suspect.
func (t *Tier) readL2(data rueidis.Client, leads []lead, deadline time.Time) l2Reads {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	r := l2Reads{vals: make([]Value, len(leads)), pttls: make([]int64, len(leads)), bad: make([]bool, len(leads))}
	var failed error
	for start := 0; start < len(leads); start += maxPipeline / 2 {
		batch := leads[start:min(start+maxPipeline/2, len(leads))]
		cmds := make(rueidis.Commands, 0, 2*len(batch))
		for _, l := range batch {
			cmds = append(cmds, data.B().Get().Key(l.o.key).Build(), data.B().Pttl().Key(l.o.key).Build())
		}
		t0 := time.Now()
		res := data.DoMulti(ctx, cmds...)
		t.m.readSeconds.Observe(time.Since(t0).Seconds())
		for j := range batch {
			v, err := res[2*j].AsBytes()
			switch {
			case err == nil:
				r.vals[start+j] = Value{Data: append([]byte(nil), v...), Found: true}
			case rueidis.IsRedisNil(err):
			default:
				// WRONGTYPE (L2 holds a list under the key) is a miss too: the cache
				// serves strings. A network error is a miss, counted below.
				if failed == nil || isNetErr(err) {
					failed = err
				}
				r.bad[start+j] = true
				continue
			}
			r.pttls[start+j], _ = res[2*j+1].AsInt64()
		}
	}
	t.m.reads.Add(float64(len(leads)))
	if failed != nil {
		t.m.errors.WithLabelValues("read", reason(failed)).Inc()
		if isNetErr(failed) && !errorsIsDeadline(failed) {
			t.suspect()
		}
	}
	return r
}

// settle ends the leads' reads: values go to L1 unless a write or an invalidation came
// first, misses to the negative cache, and every value to out and to the joiners.
func (t *Tier) settle(leads []lead, r l2Reads, out []Value) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for j, l := range leads {
		v := r.vals[j]
		ok := t.end(l.o)
		if l.o.ks.flight == l.f { // a later read may have taken the key's place
			l.o.ks.flight = nil
		}
		switch {
		case r.bad[j]:
		case v.Found && !ok:
			t.m.fillsSkipped.Inc()
		case v.Found && r.pttls[j] != -2: // -2: expired between GET and PTTL
			t.fillLocked(l.o.key, v.Data, r.pttls[j])
		case !v.Found:
			t.m.misses.Inc()
			if ok && t.cfg.NegativeTTL > 0 {
				t.neg.add(l.o.key, now.Add(t.cfg.NegativeTTL))
			}
		}
		l.f.val = v
		close(l.f.done)
		out[l.i] = v
	}
}

// await waits, until the deadline, for the reads in flight that fetch joined, and puts
// their values in out; past the deadline the rest get what has arrived.
func (t *Tier) await(joins map[int]*flight, deadline time.Time, out []Value) {
	if len(joins) == 0 {
		return
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for i, f := range joins {
		select {
		case <-f.done:
			out[i] = f.val
		case <-timer.C:
			t.m.errors.WithLabelValues("read", "timeout").Inc()
			// Expired: the rest get what has already arrived, without waiting.
			for j, g := range joins {
				select {
				case <-g.done:
					out[j] = g.val
				default:
				}
			}
			return
		}
	}
}

// fillLocked stores a value read from L2 in L1 with a TTL of --l1-ttl, capped by
// pttl, the key's remaining TTL in L2 in ms (-1: none). Caller holds t.mu.
func (t *Tier) fillLocked(key string, v []byte, pttl int64) {
	ttl := t.cfg.L1TTL
	if pttl >= 0 {
		if pttl == 0 {
			// Expires this millisecond: store nothing, and drop what L1 held (a
			// write-through of an expiring value gets no invalidation).
			t.st.Delete([]byte(key))
			return
		}
		ttl = min(ttl, time.Duration(pttl)*time.Millisecond)
	}
	if _, err := t.st.Set([]byte(key), v, storeTTL(ttl)); err != nil {
		// Too large for L1, or L1 full under noeviction: the caller still gets the value.
		t.m.fillsSkipped.Inc()
		t.st.Delete([]byte(key))
		return
	}
	t.dirty = true
	t.m.fills.Inc()
}
