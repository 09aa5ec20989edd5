package cachee

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"
	"unsafe"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

// keyBytes views a string key as bytes without copying. The segment reader only
// reads it.
func keyBytes(key string) []byte { return unsafe.Slice(unsafe.StringData(key), len(key)) }

// Get returns the value stored under key; found is false for a missing or expired key.
// It reads the shared-memory segment when it can and asks the sidecar otherwise (a
// miss in the segment may still be a hit in the sidecar's L2). A found key may hold an
// empty value, returned as a nil or empty slice.
func (c *Client) Get(ctx context.Context, key string) (value []byte, found bool, err error) {
	value, found, _, err = c.get(ctx, key, nil, false)
	return value, found, err
}

// GetInto is Get that writes the value into buf, from its start, and returns
// buf[:len(value)]; it allocates only when buf is too small. A hit in shared memory
// makes no syscall, takes no lock and allocates nothing.
func (c *Client) GetInto(ctx context.Context, key string, buf []byte) (value []byte, found bool, err error) {
	value, found, _, err = c.get(ctx, key, buf[:0], true)
	return value, found, err
}

// Source says which path answered a Get.
type Source uint8

const (
	// SourceShm: the shared-memory segment, read in this process.
	SourceShm Source = iota + 1
	// SourceSidecar: the sidecar over gRPC (which may itself have read its L2).
	SourceSidecar
)

func (s Source) String() string {
	switch s {
	case SourceShm:
		return "shm"
	case SourceSidecar:
		return "sidecar"
	}
	return "none"
}

// GetWithSource is GetInto that also says which path answered, for applications that
// report latency per tier.
func (c *Client) GetWithSource(ctx context.Context, key string, buf []byte) (value []byte, found bool, src Source, err error) {
	return c.get(ctx, key, buf[:0], true)
}

func (c *Client) get(ctx context.Context, key string, dst []byte, into bool) ([]byte, bool, Source, error) {
	if r := c.seg.Load(); r != nil {
		v, ref, found, err := r.Get(keyBytes(key), dst)
		if found {
			c.acc.record(ref)
			return v, true, SourceShm, nil
		}
		if err != nil {
			if kerr := c.shmError(err); kerr != nil {
				return dst, false, SourceShm, kerr
			}
		}
		c.ctr.fallbacks.Add(1)
	}
	k := keyBytes(key)
	var value []byte
	var found bool
	err := c.retry(ctx, rpcGet, c.fast == nil, func(ctx context.Context, deadline time.Time) error {
		return c.fastCall(ctx, deadline, methodGet, sizeBytesField(1, len(k)),
			func(b []byte) []byte { return appendBytesField(b, 1, k) },
			func(msg []byte) error {
				ok, v, err := decodeGetResponse(msg)
				found, value = ok, v
				if ok && into {
					value = append(dst, v...)
				} else if ok {
					value = append([]byte(nil), v...) // msg is the transport's
				}
				return err
			},
			func(ctx context.Context) error {
				resp, err := c.rpc.Get(ctx, &cacheev1.GetRequest{Key: []byte(key)})
				found, value = resp.GetFound(), resp.GetValue()
				if found && into {
					value = append(dst, value...)
				}
				return err
			})
	})
	if err != nil || !found {
		return dst, false, SourceSidecar, err
	}
	return value, true, SourceSidecar, nil
}

// shmError handles an error from the segment reader: the ones about the key go back to
// the caller, as the sidecar would have answered them; the others mean "ask the
// sidecar" and are only counted.
func (c *Client) shmError(err error) error {
	switch {
	case errors.Is(err, store.ErrStale):
		// The sidecar closed or re-opened the segment: have the watcher drop it now
		// rather than at its next tick.
		select {
		case c.wake <- struct{}{}:
		default:
		}
	case errors.Is(err, store.ErrRetry):
		c.ctr.contended.Add(1)
	case errors.Is(err, store.ErrCorrupt):
		c.ctr.corrupt.Add(1)
	case errors.Is(err, store.ErrKeyEmpty):
		return localError(codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_KEY_EMPTY, "key")
	case errors.Is(err, store.ErrKeyTooLarge):
		return localError(codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_KEY_TOO_LARGE, "key")
	}
	return nil
}

// Condition makes a Set depend on whether the key is present.
type Condition int32

const (
	// NoCondition writes unconditionally.
	NoCondition Condition = iota
	// IfAbsent writes only if the key is absent (Redis SET NX).
	IfAbsent
	// IfPresent writes only if the key is present (Redis SET XX).
	IfPresent
)

func (c Condition) applySet(o *setOptions) { o.cond = c }

func (c Condition) proto() cacheev1.SetCondition {
	switch c {
	case IfAbsent:
		return cacheev1.SetCondition_SET_CONDITION_IF_ABSENT
	case IfPresent:
		return cacheev1.SetCondition_SET_CONDITION_IF_PRESENT
	case NoCondition:
		return cacheev1.SetCondition_SET_CONDITION_UNSPECIFIED
	}
	return cacheev1.SetCondition(c) // the sidecar answers INVALID_FIELD
}

// SetOption is an option of Set: WithTTL, or a Condition (IfAbsent, IfPresent).
type SetOption interface{ applySet(*setOptions) }

type setOptions struct {
	ttl  time.Duration
	cond Condition
}

type ttlOption time.Duration

func (t ttlOption) applySet(o *setOptions) { o.ttl = time.Duration(t) }

// WithTTL makes the entry expire after d (rounded up to the millisecond). Zero means
// no expiry; negative is ErrInvalidTTL.
func WithTTL(d time.Duration) SetOption { return ttlOption(d) }

func ttlProto(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// Set stores value under key. stored is false only when a condition was not met.
// Unconditional Sets are retried after a transient failure; conditional ones only when
// the sidecar refused them unapplied, since a retry could see the first attempt's write.
func (c *Client) Set(ctx context.Context, key string, value []byte, opts ...SetOption) (stored bool, err error) {
	var o setOptions
	for _, opt := range opts {
		opt.applySet(&o)
	}
	req := setRequest{key: keyBytes(key), value: value, ttl: o.ttl, cond: int32(o.cond.proto())}
	err = c.retry(ctx, setRPC(o.cond == NoCondition), c.fast == nil, func(ctx context.Context, deadline time.Time) error {
		return c.fastCall(ctx, deadline, methodSet, req.size(), req.append,
			func(msg []byte) (err error) { stored, err = decodeBoolAnswer(msg); return err },
			func(ctx context.Context) error {
				resp, err := c.rpc.Set(ctx, &cacheev1.SetRequest{Key: []byte(key), Value: value, Ttl: ttlProto(o.ttl), Condition: o.cond.proto()})
				stored = resp.GetStored()
				return err
			})
	})
	return stored, err
}

// Delete removes key and reports whether a live entry was there. It is retried after
// a transient failure, so a Delete whose first attempt reached the sidecar may report
// false.
func (c *Client) Delete(ctx context.Context, key string) (deleted bool, err error) {
	k := keyBytes(key)
	err = c.retry(ctx, rpcDelete, c.fast == nil, func(ctx context.Context, deadline time.Time) error {
		return c.fastCall(ctx, deadline, methodDelete, sizeBytesField(1, len(k)),
			func(b []byte) []byte { return appendBytesField(b, 1, k) },
			func(msg []byte) (err error) { deleted, err = decodeBoolAnswer(msg); return err },
			func(ctx context.Context) error {
				resp, err := c.rpc.Delete(ctx, &cacheev1.DeleteRequest{Key: []byte(key)})
				deleted = resp.GetDeleted()
				return err
			})
	})
	return deleted, err
}

// Result is one key's outcome in BatchGet.
type Result struct {
	Value []byte
	Found bool
}

// BatchGet looks up keys (at most 1000) and returns their results in order. Keys
// found in shared memory are answered from it; the rest go to the sidecar in one call.
func (c *Client) BatchGet(ctx context.Context, keys []string) ([]Result, error) {
	res := make([]Result, len(keys))
	var ask []int // indexes of keys to ask the sidecar for
	r := c.seg.Load()
	if r == nil || len(keys) > maxBatch {
		ask = make([]int, len(keys))
		for i := range ask {
			ask[i] = i
		}
	} else {
		for i, k := range keys {
			v, ref, found, err := r.Get(keyBytes(k), nil)
			if found {
				c.acc.record(ref)
				res[i] = Result{Value: v, Found: true}
				continue
			}
			if err != nil {
				if kerr := c.shmError(err); kerr != nil {
					if e, ok := kerr.(*Error); ok {
						e.Metadata["field"] = "keys[" + strconv.Itoa(i) + "]"
					}
					return nil, kerr
				}
			}
			c.ctr.fallbacks.Add(1)
			ask = append(ask, i)
		}
	}
	if len(ask) == 0 {
		return res, nil
	}
	req := &cacheev1.BatchGetRequest{Keys: make([][]byte, len(ask))}
	for j, i := range ask {
		req.Keys[j] = []byte(keys[i])
	}
	var resp *cacheev1.BatchGetResponse
	err := c.call(ctx, rpcBatchGet, func(ctx context.Context) (err error) {
		resp, err = c.rpc.BatchGet(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.GetResults()) != len(ask) {
		return nil, &Error{Code: codes.Internal, Message: "BatchGet returned " + strconv.Itoa(len(resp.GetResults())) + " results for " + strconv.Itoa(len(ask)) + " keys", sentinel: ErrInternal}
	}
	for j, i := range ask {
		g := resp.GetResults()[j]
		res[i] = Result{Value: g.GetValue(), Found: g.GetFound()}
	}
	return res, nil
}

// maxBatch is the sidecar's limit on keys per BatchGet and items per BatchSet; a
// larger batch goes to the sidecar whole, to get its BATCH_TOO_LARGE.
const maxBatch = 1000

// Item is one write of BatchSet.
type Item struct {
	Key       string
	Value     []byte
	TTL       time.Duration
	Condition Condition
}

// BatchSet stores items (at most 1000) in order, each on its own, and reports which
// were stored. On error, items before the failing one may have been stored.
func (c *Client) BatchSet(ctx context.Context, items []Item) ([]bool, error) {
	req := &cacheev1.BatchSetRequest{Items: make([]*cacheev1.BatchSetItem, len(items))}
	unconditional := true
	for i, it := range items {
		req.Items[i] = &cacheev1.BatchSetItem{Key: []byte(it.Key), Value: it.Value, Ttl: ttlProto(it.TTL), Condition: it.Condition.proto()}
		unconditional = unconditional && it.Condition == NoCondition
	}
	var resp *cacheev1.BatchSetResponse
	err := c.call(ctx, batchSetRPC(unconditional), func(ctx context.Context) (err error) {
		resp, err = c.rpc.BatchSet(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetStored(), nil
}

// Stats are the sidecar's counters since it started, plus derived figures. Hits
// include shared-memory hits the Clients have reported.
type Stats struct {
	Hits, Misses, Sets, Deletes, Evictions, Expirations uint64
	Entries                                             int64
	MemoryUsed, MemoryLimit                             int64 // bytes
	HitRate                                             float64
	Uptime                                              time.Duration
	LatencyP50, LatencyP95, LatencyP99                  time.Duration
	// Generation changes each time a sidecar opens its segment.
	Generation uint64
	// Eviction is the policy: cachee-lfu, lru or noeviction.
	Eviction string
	// SegmentPath is the segment file as the sidecar sees it; empty when the cache
	// lives in private memory.
	SegmentPath string
}

// Stats returns the sidecar's statistics.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var r *cacheev1.StatsResponse
	err := c.call(ctx, rpcStats, func(ctx context.Context) (err error) {
		r, err = c.rpc.Stats(ctx, &cacheev1.StatsRequest{})
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	return Stats{
		Hits: r.GetHits(), Misses: r.GetMisses(), Sets: r.GetSets(), Deletes: r.GetDeletes(),
		Evictions: r.GetEvictions(), Expirations: r.GetExpirations(), Entries: r.GetEntries(),
		MemoryUsed: r.GetMemoryUsedBytes(), MemoryLimit: r.GetMemoryLimitBytes(), HitRate: r.GetHitRate(),
		Uptime:     r.GetUptime().AsDuration(),
		LatencyP50: r.GetLatencyP50().AsDuration(), LatencyP95: r.GetLatencyP95().AsDuration(), LatencyP99: r.GetLatencyP99().AsDuration(),
		Generation: r.GetGeneration(), Eviction: r.GetEviction(), SegmentPath: r.GetSegmentPath(),
	}, nil
}

// PrewarmProgress are the counts of a prewarm so far; the last one has Done set.
type PrewarmProgress struct {
	Requested, Loaded, Skipped, Failed int64
	Elapsed                            time.Duration
	Done                               bool
}

// PrewarmOption is an option of Prewarm.
type PrewarmOption func(*prewarmOptions)

type prewarmOptions struct {
	keys     int32
	timeout  time.Duration
	progress func(PrewarmProgress)
}

// WithPrewarmKeys sets how many of the source's hottest keys to load (default: the
// sidecar's --prewarm-keys).
func WithPrewarmKeys(n int) PrewarmOption {
	return func(o *prewarmOptions) { o.keys = int32(min(n, 1<<31-1)) }
}

// WithPrewarmTimeout bounds the whole prewarm (default: the sidecar's
// --prewarm-timeout). Running out of it ends the prewarm with partial counts, not an
// error.
func WithPrewarmTimeout(d time.Duration) PrewarmOption {
	return func(o *prewarmOptions) { o.timeout = d }
}

// WithProgress calls fn with each progress message, the final one included, in order,
// on the goroutine that called Prewarm.
func WithProgress(fn func(PrewarmProgress)) PrewarmOption {
	return func(o *prewarmOptions) { o.progress = fn }
}

// Prewarm has the sidecar load the hottest keys of its prewarm source (an L2 such as
// Redis) and returns the final counts. It fails with ErrPrewarmNotConfigured on a
// sidecar without a source and ErrPrewarmRunning while another prewarm runs. Only the
// context bounds it (the Client's default timeout does not apply: the sidecar bounds a
// prewarm by its own timeout).
func (c *Client) Prewarm(ctx context.Context, opts ...PrewarmOption) (PrewarmProgress, error) {
	var o prewarmOptions
	for _, opt := range opts {
		opt(&o)
	}
	if c.closed.Load() {
		return PrewarmProgress{}, ErrClosed
	}
	req := &cacheev1.PrewarmRequest{Keys: o.keys}
	if o.timeout != 0 {
		req.Timeout = durationpb.New(o.timeout)
	}
	stream, err := c.rpc.Prewarm(ctx, req)
	if err != nil {
		return PrewarmProgress{}, fromStatus(err)
	}
	var last PrewarmProgress
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			if !last.Done {
				return last, &Error{Code: codes.Internal, Message: "prewarm stream ended without its final counts", sentinel: ErrInternal}
			}
			return last, nil
		}
		if err != nil {
			return last, fromStatus(err)
		}
		cn := m.GetCounts()
		last = PrewarmProgress{
			Requested: cn.GetRequested(), Loaded: cn.GetLoaded(), Skipped: cn.GetSkipped(), Failed: cn.GetFailed(),
			Elapsed: cn.GetElapsed().AsDuration(), Done: m.GetDone(),
		}
		if o.progress != nil {
			o.progress(last)
		}
	}
}

func setRPC(unconditional bool) rpc {
	if unconditional {
		return rpcSet
	}
	return rpcSetIf
}

func batchSetRPC(unconditional bool) rpc {
	if unconditional {
		return rpcBatchSet
	}
	return rpcBatchSetIf
}
