package l2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

// Prewarm batches: keys per pipelined GET/PTTL round trip, and keys sampled per SCAN.
const (
	prewarmBatch = 200
	scanCount    = 1000
	// The LFU source samples this many keys per key wanted (at least lfuMinSample,
	// at most lfuMaxSample) with SCAN, and ranks them by OBJECT FREQ: a few tens of
	// milliseconds for 10,000 keys on a LAN, within a 500 ms prewarm.
	lfuSample    = 10
	lfuMinSample = 10000
	lfuMaxSample = 100000
)

// source is where a prewarm reads: this tier's own clients (whose reads are
// tracked, so what it loads stays coherent), or another --prewarm-source.
type source struct {
	ep        Endpoint
	data, aux rueidis.Client
	tracked   bool
}

// Prewarm implements tier.Prewarmer: it loads up to opts.Keys of the source's
// hottest keys into L1 within ctx's deadline. Hot keys come from, in order, the
// hotset that running sidecars publish (--hotset-key); OBJECT FREQ of a SCAN sample
// when L2 evicts by LFU; and a plain SCAN sample. Values come in pipelined batches of
// GET and PTTL; keys already in L1 are skipped. A source that cannot be reached is an
// error wrapping tier.ErrPrewarmSource; running out of time returns the counts so
// far with ctx's error.
func (t *Tier) Prewarm(ctx context.Context, opts tier.PrewarmOptions, progress func(tier.PrewarmCounts)) (c tier.PrewarmCounts, err error) {
	start := time.Now()
	defer func() {
		c.Elapsed = time.Since(start)
		t.m.prewarmSeconds.Set(c.Elapsed.Seconds())
		t.m.prewarmKeys.WithLabelValues("loaded").Add(float64(c.Loaded))
		t.m.prewarmKeys.WithLabelValues("skipped").Add(float64(c.Skipped))
		t.m.prewarmKeys.WithLabelValues("failed").Add(float64(c.Failed))
		outcome := "done"
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			outcome = "timeout"
		case err != nil:
			outcome = "failed"
		}
		t.m.prewarmRuns.WithLabelValues(outcome).Inc()
	}()
	src, closeSrc, err := t.source(ctx, opts.Source)
	if err != nil {
		return c, err
	}
	defer closeSrc()
	keys, err := t.hotKeys(ctx, src, opts.Keys)
	if err != nil {
		if ctx.Err() != nil {
			return c, ctx.Err()
		}
		return c, fmt.Errorf("%w: %s: %w", tier.ErrPrewarmSource, src.ep, err)
	}
	c.Requested = int64(len(keys))
	for start := 0; start < len(keys); start += prewarmBatch {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		if err := t.load(ctx, src, keys[start:min(start+prewarmBatch, len(keys))], &c); err != nil {
			return c, err
		}
		progress(c)
	}
	return c, ctx.Err()
}

// source opens the prewarm source: this tier's clients when url is empty or names
// L2's servers (with or without its credentials), new untracked clients otherwise
// (closed by the returned func).
func (t *Tier) source(ctx context.Context, url string) (source, func(), error) {
	ep := t.ep
	if url != "" {
		var err error
		if ep, err = ParseURL(url); err != nil {
			return source{}, nil, fmt.Errorf("%w: %w", tier.ErrPrewarmSource, err)
		}
	}
	if ep.SameServers(t.ep) {
		data, aux := t.clientsNow()
		if !t.up.Load() || data == nil {
			return source{}, nil, fmt.Errorf("%w: %s: %w", tier.ErrPrewarmSource, ep, errDown)
		}
		return source{ep: ep, data: data, aux: aux, tracked: t.tracking()}, func() {}, nil
	}
	opt := ep.options()
	opt.DisableCache = true
	if d, ok := ctx.Deadline(); ok {
		opt.Dialer.Timeout = time.Until(d)
	}
	c, err := rueidis.NewClient(opt)
	if err == nil {
		err = c.Do(ctx, c.B().Ping().Build()).Error()
	}
	if err != nil {
		if c != nil {
			c.Close()
		}
		return source{}, nil, fmt.Errorf("%w: %s: %w", tier.ErrPrewarmSource, ep, err)
	}
	return source{ep: ep, data: c, aux: c}, c.Close, nil
}

// hotKeys returns up to n keys, hottest first, from the sources in order.
func (t *Tier) hotKeys(ctx context.Context, src source, n int) ([]string, error) {
	seen := make(map[string]bool, n)
	var keys []string
	add := func(ks []string) {
		for _, k := range ks {
			if len(keys) < n && !seen[k] && !t.internal(k) {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if t.cfg.HotsetKey != "" {
		ks, err := src.aux.Do(ctx, src.aux.B().Zrevrange().Key(t.cfg.HotsetKey).Start(0).Stop(int64(n-1)).Build()).AsStrSlice()
		if err != nil && !rueidis.IsRedisNil(err) {
			if isNetErr(err) {
				return nil, err
			}
			t.log.Debug("prewarm: no hotset", "key", t.cfg.HotsetKey, "err", err)
		}
		add(ks)
	}
	if len(keys) < n && t.lfu(ctx, src) {
		ks, err := t.byFrequency(ctx, src, min(max(n*lfuSample, lfuMinSample), lfuMaxSample))
		if err != nil && isNetErr(err) {
			return nil, err
		}
		add(ks)
	}
	if len(keys) < n {
		ks, err := t.scan(ctx, src, n-len(keys), seen)
		if err != nil && (len(keys) == 0 || ctx.Err() == nil) {
			return keys, err
		}
		add(ks)
	}
	return keys, nil
}

// internal reports the tier's own keys, which prewarm does not load.
func (t *Tier) internal(k string) bool {
	return k == t.cfg.HotsetKey || strings.HasPrefix(k, DefaultCanaryPrefix)
}

// nodes are the clients of each server of a source (one, or the cluster's nodes).
func (t *Tier) nodes(src source) []rueidis.Client {
	if !src.ep.Cluster {
		return []rueidis.Client{src.aux}
	}
	var ns []rueidis.Client
	for _, c := range src.aux.Nodes() {
		ns = append(ns, c)
	}
	return ns
}

// lfu reports whether L2 evicts by LFU, when its OBJECT FREQ counters mean
// something. A server that refuses CONFIG GET (managed services) counts as no.
func (t *Tier) lfu(ctx context.Context, src source) bool {
	for _, n := range t.nodes(src) {
		m, err := n.Do(ctx, n.B().ConfigGet().Parameter("maxmemory-policy").Build()).AsStrMap()
		if err != nil {
			return false
		}
		if !strings.Contains(m["maxmemory-policy"], "lfu") {
			return false
		}
	}
	return true
}

// scan samples up to n keys with SCAN on every server, skipping those in seen.
func (t *Tier) scan(ctx context.Context, src source, n int, seen map[string]bool) ([]string, error) {
	var keys []string
	for _, node := range t.nodes(src) {
		var cursor uint64
		for len(keys) < n {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Count(scanCount).Build()).AsScanEntry()
			if err != nil {
				return keys, err
			}
			for _, k := range e.Elements {
				if len(keys) < n && !seen[k] && !t.internal(k) {
					keys = append(keys, k)
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return keys, nil
}

// byFrequency samples up to sample keys with SCAN and ranks them by OBJECT FREQ,
// most frequent first.
func (t *Tier) byFrequency(ctx context.Context, src source, sample int) ([]string, error) {
	keys, err := t.scan(ctx, src, sample, nil)
	if err != nil {
		return nil, err
	}
	freq := make(map[string]int64, len(keys))
	for start := 0; start < len(keys); start += maxPipeline {
		batch := keys[start:min(start+maxPipeline, len(keys))]
		cmds := make(rueidis.Commands, len(batch))
		for i, k := range batch {
			cmds[i] = src.aux.B().ObjectFreq().Key(k).Build()
		}
		for i, r := range src.aux.DoMulti(ctx, cmds...) {
			f, err := r.AsInt64()
			if err != nil && isNetErr(err) {
				return nil, err
			}
			freq[batch[i]] = f
		}
	}
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(freq[b], freq[a]) })
	return keys, nil
}

// load fetches one batch with pipelined GET and PTTL and stores what it finds,
// counting into c. Keys L1 already holds are skipped without a round trip.
func (t *Tier) load(ctx context.Context, src source, keys []string, c *tier.PrewarmCounts) error {
	present := make([]bool, len(keys))
	t.st.Update(func(tx *store.Tx) error {
		for i, k := range keys {
			present[i] = tx.Exists([]byte(k))
		}
		return nil
	})
	var want []string
	for i, k := range keys {
		if present[i] {
			c.Skipped++
		} else {
			want = append(want, k)
		}
	}
	if len(want) == 0 {
		return nil
	}
	var ops []op
	if src.tracked {
		t.mu.Lock()
		for _, k := range want {
			ops = append(ops, t.begin(k))
		}
		t.mu.Unlock()
	}
	cmds := make(rueidis.Commands, 0, 2*len(want))
	for _, k := range want {
		cmds = append(cmds, src.data.B().Get().Key(k).Build(), src.data.B().Pttl().Key(k).Build())
	}
	res := src.data.DoMulti(ctx, cmds...)
	t.m.reads.Add(float64(len(want)))
	t.mu.Lock()
	defer t.mu.Unlock()
	var netErr error
	for i, k := range want {
		fill := true
		if src.tracked {
			fill = t.end(ops[i])
		}
		v, err := res[2*i].AsBytes()
		switch {
		case rueidis.IsRedisNil(err):
			c.Skipped++ // gone from the source since it was listed
			continue
		case err != nil:
			c.Failed++
			if isNetErr(err) && netErr == nil {
				netErr = err
			}
			continue
		case !fill:
			c.Skipped++ // changed while in flight; the next read fetches it
			continue
		}
		pttl, _ := res[2*i+1].AsInt64()
		if pttl == -2 || pttl == 0 {
			c.Skipped++
			continue
		}
		ttl := t.cfg.L1TTL
		if pttl > 0 {
			ttl = min(ttl, time.Duration(pttl)*time.Millisecond)
		}
		if _, err := t.st.Set([]byte(k), v, storeTTL(ttl)); err != nil {
			c.Failed++
			continue
		}
		if src.tracked {
			t.dirty = true
		}
		c.Loaded++
	}
	if netErr != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: %s: %w", tier.ErrPrewarmSource, src.ep, netErr)
	}
	return nil
}

// publishHotset writes this sidecar's hottest keys into the hotset every
// HotsetInterval, for sidecars that start later to prewarm from. Scores are the
// publication's Unix time plus a fraction below one that falls with the key's rank,
// so the set orders keys by how recently some sidecar found them hot, and by rank
// within one publication. Entries older than three intervals are trimmed, the set is
// capped at ten publications' worth, and it expires three intervals after the last
// publication, so it empties once no sidecar runs.
func (t *Tier) publishHotset() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.HotsetInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		if err := t.PublishHotset(); err != nil {
			t.log.Debug("hotset publication failed", "err", err)
		}
	}
}

// PublishHotset publishes now (see publishHotset); tests and shutdown call it.
func (t *Tier) PublishHotset() error {
	_, aux := t.clientsNow()
	if aux == nil || !t.up.Load() {
		t.m.hotsetPublished.WithLabelValues("down").Inc()
		return errDown
	}
	hot := t.st.Hottest(t.cfg.HotsetSize)
	if len(hot) == 0 {
		return nil
	}
	now := time.Now()
	base := float64(now.Unix())
	zadd := aux.B().Zadd().Key(t.cfg.HotsetKey).ScoreMember()
	for i, k := range hot {
		zadd = zadd.ScoreMember(base+float64(len(hot)-i)/float64(len(hot)+1), string(k))
	}
	keep := 3 * t.cfg.HotsetInterval
	ctx, cancel := context.WithTimeout(context.Background(), max(t.cfg.Timeout, time.Second))
	defer cancel()
	res := aux.DoMulti(ctx,
		zadd.Build(),
		aux.B().Zremrangebyscore().Key(t.cfg.HotsetKey).Min("-inf").Max(fmt.Sprint(now.Add(-keep).Unix())).Build(),
		aux.B().Zremrangebyrank().Key(t.cfg.HotsetKey).Start(0).Stop(int64(-10*t.cfg.HotsetSize-1)).Build(),
		aux.B().Pexpire().Key(t.cfg.HotsetKey).Milliseconds(keep.Milliseconds()).Build(),
	)
	for _, r := range res {
		if err := r.Error(); err != nil {
			t.m.hotsetPublished.WithLabelValues("failed").Inc()
			return err
		}
	}
	t.m.hotsetPublished.WithLabelValues("ok").Inc()
	return nil
}
