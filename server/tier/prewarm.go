package tier

import (
	"context"
	"time"
)

// Prewarmer loads the hottest keys of a prewarm source (an L2 cache) into the store,
// as the Prewarm RPC and a starting server ask. The L2 tier implements it; a server
// without one answers Prewarm with FAILED_PRECONDITION.
type Prewarmer interface {
	// Prewarm loads up to opts.Keys keys and returns the final counts. It calls
	// progress, from one goroutine at a time, whenever it has made progress worth
	// reporting (every few dozen keys, say). It stops when ctx is done, which is how the
	// server enforces opts.Timeout, and then returns the counts so far with ctx's error.
	Prewarm(ctx context.Context, opts PrewarmOptions, progress func(PrewarmCounts)) (PrewarmCounts, error)
}

// PrewarmOptions say what to load and from where.
type PrewarmOptions struct {
	Source  string        // --prewarm-source, e.g. redis://redis:6379
	Keys    int           // how many of the source's hottest keys to load
	Timeout time.Duration // how long the whole prewarm may take
}

// PrewarmCounts describe a prewarm's progress or outcome.
type PrewarmCounts struct {
	Requested int64 // keys the prewarm set out to load
	Loaded    int64 // keys stored
	Skipped   int64 // keys already present, or gone from the source
	Failed    int64 // keys that could not be loaded
	Elapsed   time.Duration
}
