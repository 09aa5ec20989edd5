package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

// service implements cachee.v1.CacheService on the store. Requests reach it validated
// (see validate.go); every error leaves through toStatus.
type service struct {
	cacheev1.UnimplementedCacheServiceServer

	st        *store.Store
	tier      tier.Tier // the store, or an L2 tier in front of it
	lat       *Latency
	started   time.Time
	prewarmer tier.Prewarmer
	prewarm   tier.PrewarmOptions
	warming   atomic.Bool // a Prewarm is running

	// budget holds the values an answer copies out of the store, from before the
	// answer is built until the handler returns (the encoded answer is charged by
	// bufferPool from then until it is written).
	budget       *Budget
	maxBatchResp int // the most a BatchGet answer may hold, in value bytes
}

func (s *service) Get(ctx context.Context, req *cacheev1.GetRequest) (*cacheev1.GetResponse, error) {
	t := s.lat.start()
	v, ok, err := s.tier.Get(ctx, req.GetKey(), nil)
	s.lat.done(t)
	if err != nil {
		return nil, toStatus(err)
	}
	if n := int64(len(v)); n > 0 {
		if !s.budget.TryAcquire(n) {
			return nil, toStatus(errOverloaded)
		}
		defer s.budget.Release(n)
	}
	return &cacheev1.GetResponse{Found: ok, Value: v}, nil
}

func (s *service) Set(ctx context.Context, req *cacheev1.SetRequest) (*cacheev1.SetResponse, error) {
	opt, err := setOptions(req.GetTtl(), req.GetCondition())
	if err != nil {
		return nil, toStatus(err)
	}
	t := s.lat.start()
	ok, err := s.tier.Set(ctx, req.GetKey(), req.GetValue(), opt)
	s.lat.done(t)
	if err != nil {
		return nil, toStatus(err)
	}
	return &cacheev1.SetResponse{Stored: ok}, nil
}

func (s *service) Delete(ctx context.Context, req *cacheev1.DeleteRequest) (*cacheev1.DeleteResponse, error) {
	t := s.lat.start()
	ok, err := s.tier.Delete(ctx, req.GetKey())
	s.lat.done(t)
	if err != nil {
		return nil, toStatus(err)
	}
	return &cacheev1.DeleteResponse{Deleted: ok}, nil
}

func (s *service) BatchGet(ctx context.Context, req *cacheev1.BatchGetRequest) (*cacheev1.BatchGetResponse, error) {
	results := make([]*cacheev1.BatchGetResult, len(req.GetKeys()))
	limit, size := s.maxBatchResp, 0
	var held int64 // reserved for the values copied so far
	defer func() { s.budget.Release(held) }()
	var first error
	s.tier.GetMany(ctx, req.GetKeys(), func(i int, v []byte, found bool, err error) {
		if err != nil || first != nil {
			if first == nil {
				first = err
			}
			return
		}
		r := &cacheev1.BatchGetResult{Found: found}
		if found {
			if size += len(v); limit > 0 && size > limit {
				first = &fieldError{field: "keys", err: errResponseTooLarge, size: int64(size), limit: int64(limit)}
				return
			}
			if !s.budget.TryAcquire(int64(len(v))) {
				first = errOverloaded
				return
			}
			held += int64(len(v))
			r.Value = append([]byte(nil), v...) // v is valid only during the call
		}
		results[i] = r
	})
	if first != nil {
		return nil, toStatus(first)
	}
	return &cacheev1.BatchGetResponse{Results: results}, nil
}

func (s *service) BatchSet(ctx context.Context, req *cacheev1.BatchSetRequest) (*cacheev1.BatchSetResponse, error) {
	items := make([]store.Item, len(req.GetItems()))
	for i, it := range req.GetItems() {
		opt, err := setOptions(it.GetTtl(), it.GetCondition())
		if err != nil {
			return nil, toStatus(err)
		}
		items[i] = store.Item{Key: it.GetKey(), Value: it.GetValue(), Options: opt}
	}
	stored := make([]bool, len(items))
	for _, err := range s.tier.SetMany(ctx, items, stored) {
		if err != nil {
			return nil, toStatus(err)
		}
	}
	return &cacheev1.BatchSetResponse{Stored: stored}, nil
}

func setOptions(ttl *durationpb.Duration, cond cacheev1.SetCondition) (store.SetOptions, error) {
	d, err := duration(ttl)
	if err != nil {
		return store.SetOptions{}, &fieldError{field: "ttl", err: store.ErrInvalidTTL}
	}
	opt := store.SetOptions{TTL: d}
	switch cond {
	case cacheev1.SetCondition_SET_CONDITION_UNSPECIFIED:
	case cacheev1.SetCondition_SET_CONDITION_IF_ABSENT:
		opt.Cond = store.IfAbsent
	case cacheev1.SetCondition_SET_CONDITION_IF_PRESENT:
		opt.Cond = store.IfPresent
	default:
		return store.SetOptions{}, &fieldError{field: "condition", err: errInvalidField}
	}
	return opt, nil
}

func (s *service) Stats(context.Context, *cacheev1.StatsRequest) (*cacheev1.StatsResponse, error) {
	st := s.st.Stats()
	cfg := s.st.Config()
	p50, p95, p99 := s.lat.quantiles()
	return &cacheev1.StatsResponse{
		Hits:             st.Hits,
		Misses:           st.Misses,
		Sets:             st.Sets,
		Deletes:          st.Deletes,
		Evictions:        st.Evictions,
		Expirations:      st.Expirations,
		Entries:          st.Entries,
		MemoryUsedBytes:  st.BytesUsed,
		MemoryLimitBytes: st.BytesLimit,
		HitRate:          hitRate(st),
		Uptime:           durationpb.New(time.Since(s.started)),
		LatencyP50:       durationpb.New(p50),
		LatencyP95:       durationpb.New(p95),
		LatencyP99:       durationpb.New(p99),
		Generation:       st.Generation,
		Eviction:         cfg.Eviction,
		SegmentPath:      s.st.SegmentPath(),
	}, nil
}

func (s *service) RecordAccess(_ context.Context, req *cacheev1.RecordAccessRequest) (*cacheev1.RecordAccessResponse, error) {
	s.st.RecordAccess(req.GetRefs(), req.GetUnreportedHits())
	return &cacheev1.RecordAccessResponse{}, nil
}

// Prewarm runs the configured Prewarmer, forwarding its progress. Running out of time
// is not a failure: prewarming is best effort, and the final counts show how far it
// got. One prewarm runs at a time.
func (s *service) Prewarm(req *cacheev1.PrewarmRequest, stream cacheev1.CacheService_PrewarmServer) error {
	if s.prewarmer == nil {
		return toStatus(errNoPrewarmer)
	}
	if !s.warming.CompareAndSwap(false, true) {
		return toStatus(errPrewarmRunning)
	}
	defer s.warming.Store(false)

	opts := s.prewarm
	if k := req.GetKeys(); k > 0 {
		opts.Keys = int(k)
	}
	if d, _ := duration(req.GetTimeout()); d > 0 {
		opts.Timeout = d
	}
	ctx, cancel := context.WithTimeout(stream.Context(), opts.Timeout)
	defer cancel()

	var (
		mu      sync.Mutex
		sendErr error
	)
	send := func(c tier.PrewarmCounts, done bool) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr == nil {
			sendErr = stream.Send(&cacheev1.PrewarmResponse{Counts: countsPB(c), Done: done})
		}
	}
	final, err := s.prewarmer.Prewarm(ctx, opts, func(c tier.PrewarmCounts) { send(c, false) })
	if err != nil && !(errors.Is(err, context.DeadlineExceeded) && stream.Context().Err() == nil) {
		return toStatus(err)
	}
	send(final, true)
	return sendErr
}

func countsPB(c tier.PrewarmCounts) *cacheev1.PrewarmCounts {
	return &cacheev1.PrewarmCounts{
		Requested: c.Requested,
		Loaded:    c.Loaded,
		Skipped:   c.Skipped,
		Failed:    c.Failed,
		Elapsed:   durationpb.New(c.Elapsed),
	}
}
