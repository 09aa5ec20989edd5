package server

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Readiness gates /ready. It is ready when no condition holds it back: the server
// holds "serving" until its listeners are up and again while it drains, and other
// parts (a prewarm, a hit-rate threshold) can hold their own conditions meanwhile.
// The zero value is ready; it is safe for concurrent use.
type Readiness struct {
	mu     sync.Mutex
	held   map[string]string    // condition -> why it holds readiness back
	since  map[string]time.Time // condition -> when it began to hold (updates keep it)
	notify func()               // called after every change, outside mu (grpc.health.v1 follows)
}

// Hold keeps the server not ready until Release(cond); reason says why, for /ready.
// Holding a held condition updates its reason.
func (r *Readiness) Hold(cond, reason string) {
	r.mu.Lock()
	if r.held == nil {
		r.held = make(map[string]string)
		r.since = make(map[string]time.Time)
	}
	if _, ok := r.held[cond]; !ok {
		r.since[cond] = time.Now()
	}
	r.held[cond] = reason
	r.mu.Unlock()
	r.changed()
}

// Release lifts cond. Releasing a condition that is not held does nothing.
func (r *Readiness) Release(cond string) {
	r.mu.Lock()
	delete(r.held, cond)
	delete(r.since, cond)
	r.mu.Unlock()
	r.changed()
}

func (r *Readiness) changed() {
	if r.notify != nil {
		r.notify()
	}
}

// Ready reports whether no condition is held, and otherwise "cond: reason" for each,
// sorted.
func (r *Readiness) Ready() (bool, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.held) == 0 {
		return true, nil
	}
	var why []string
	for _, c := range slices.Sorted(maps.Keys(r.held)) {
		why = append(why, c+": "+r.held[c])
	}
	return false, why
}

// HeldFor reports how long each condition now held has held readiness back.
func (r *Readiness) HeldFor() map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	held := make(map[string]time.Duration, len(r.since))
	for c, t := range r.since {
		held[c] = now.Sub(t)
	}
	return held
}
