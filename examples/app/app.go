package main

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc/status"
)

// getter and setter are what the handlers need of a cache; *cache has both.
type cacheAPI interface {
	Get(ctx context.Context, key []byte, skipShm bool) ([]byte, tier, bool, error)
	Set(ctx context.Context, key, value []byte, ttl time.Duration) error
}

type app struct {
	cfg   config
	cache cacheAPI
	stats *tierStats
	log   *slog.Logger
}

func newApp(cfg config, c cacheAPI, log *slog.Logger) *app {
	return &app{cfg: cfg, cache: c, stats: newTierStats(), log: log}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /item/{id}", a.item)
	mux.HandleFunc("GET /stats", a.statsHandler)
	ok := func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	return mux
}

// itemResponse is what GET /item/{id} answers.
type itemResponse struct {
	ID    string `json:"id"`
	Tier  tier   `json:"tier"`
	Bytes int    `json:"bytes"`
}

// item is cache-aside: the cache, else the origin, whose answer is then cached. Only
// the data access is timed, not HTTP.
func (a *app) item(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	key := []byte("item:" + id)
	skipShm := r.URL.Query().Get("via") == "socket"
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.cacheTimeout)
	v, from, found, err := a.cache.Get(ctx, key, skipShm)
	cancel()
	if err != nil {
		a.stats.sidecarError(status.Code(err).String())
		a.log.Debug("cache get failed; using the origin", "key", string(key), "err", err)
	}
	if !found {
		v = a.origin(r.Context(), id)
		from = tierOrigin
		if err == nil { // a sidecar that just failed is not asked to store
			ctx, cancel := context.WithTimeout(r.Context(), a.cfg.cacheTimeout)
			if err := a.cache.Set(ctx, key, v, a.cfg.ttl); err != nil {
				a.log.Debug("cache set failed", "key", string(key), "err", err)
			}
			cancel()
		}
	}
	a.stats.record(from, time.Since(start))
	if found && string(v) != string(itemValue(id, a.cfg.valueSize)) {
		a.stats.mismatch() // after the timing: checking is not part of the read
		a.log.Warn("cached value differs from the origin's", "key", string(key), "tier", from)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Cache-Tier", string(from))
	json.NewEncoder(w).Encode(itemResponse{ID: id, Tier: from, Bytes: len(v)})
}

// origin stands for the database: slow, and always right. Values are derived from the
// id, so any tier's answer can be checked against it.
func (a *app) origin(ctx context.Context, id string) []byte {
	t := time.NewTimer(a.cfg.originLatency)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	return itemValue(id, a.cfg.valueSize)
}

func itemValue(id string, size int) []byte {
	h := fnv.New64a()
	h.Write([]byte(id))
	seed := h.Sum64()
	v := make([]byte, size)
	for i := range v {
		seed = seed*6364136223846793005 + 1442695040888963407
		v[i] = 'a' + byte(seed>>59)%26
	}
	return v
}

func (a *app) statsHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a.stats.report())
}
