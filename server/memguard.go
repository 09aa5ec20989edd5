package server

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Budget bounds what client buffers and calls hold, but not the garbage they
// leave, and the garbage of large values comes fast: every GET of a 1 MiB value over
// RESP, every Set of one over gRPC, allocates a megabyte or two that is dead a moment
// later. GOMEMLIMIT makes the collector run harder as the heap nears it, yet the Go
// runtime lets the heap pass the limit rather than spend more than about half of the
// CPU on collection, and on a busy machine that happens (measured: the anonymous
// memory of a sidecar with a 25 MiB limit reached 86 MiB under TestMemoryBound's
// load). GuardMemory closes that gap with feedback: while the memory the Go runtime
// holds is above the limit, the Budget refuses large reservations, so no client
// buffer grows far and no gRPC call of a large value starts, which lets the collector
// catch up; and it returns freed memory to the system at once instead of at the
// scavenger's pace. Small reservations (a new connection, a client's first buffer)
// still pass, so that the service does not stop for everyone.

// Guard marks, as fractions of the limit: pressure starts above high and ends below
// low. High is just under the limit: the heap moves between reads, so pressing only at
// the limit let the process pass it by a MiB or two under TestMemoryBound's load,
// which at a small --max-memory is the whole margin.
const (
	guardHigh = 0.95
	guardLow  = 0.85
	// guardEvery is how often the runtime's memory is read (a few hundred
	// nanoseconds each time) while it holds more than guardNear of the limit.
	guardEvery = 2 * time.Millisecond
	guardNear  = 0.5
	// freeEvery bounds how often memory is handed back to the system: each time is
	// a full collection.
	freeEvery = 25 * time.Millisecond
)

// GuardMemory watches the memory the Go runtime holds (heap, stacks and runtime
// structures it has not returned to the system) against limit, normally the Go
// memory limit, and puts b under pressure while it is too high. It returns when ctx
// ends.
//
// Past half of the limit it reads the runtime's memory every 2 ms. Below that it
// reads it after each garbage collection instead: the heap grows only until the
// collector runs, so a collection is when it may have passed half, and an idle
// sidecar, which collects every two minutes, leaves the guard asleep (a 20 ms clock
// there cost 0.4% of a core). Collections alone were too late near the limit: the
// process passed it by 3 MiB under TestMemoryBound's load.
func GuardMemory(ctx context.Context, b *Budget, limit int64, log *slog.Logger) {
	if b == nil || limit <= 0 {
		return
	}
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	high, low := int64(float64(limit)*guardHigh), int64(float64(limit)*guardLow)
	near := int64(float64(limit) * guardNear)
	collected := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	notifyAfterGC(collected, stop)
	poll := time.NewTimer(time.Hour)
	poll.Stop()
	defer poll.Stop()
	var lastFree time.Time
	for {
		metrics.Read(samples)
		held := int64(samples[0].Value.Uint64() - samples[1].Value.Uint64())
		switch {
		case held > high:
			if !b.pressure.Swap(true) {
				b.pressured.Add(1)
				log.Debug("memory pressure: refusing client memory until it passes", "held", held, "limit", limit)
			}
			if time.Since(lastFree) > freeEvery {
				debug.FreeOSMemory()
				lastFree = time.Now()
			}
		case held < low:
			b.relieve()
		}
		if held > near || b.pressure.Load() {
			poll.Reset(guardEvery)
		}
		select {
		case <-ctx.Done():
			b.relieve()
			return
		case <-collected:
		case <-poll.C:
		}
	}
}

// notifyAfterGC sends on ch, without blocking, after each garbage collection until
// stop is closed: a finalizer on an unreachable object runs once the collector has
// found it unreachable, and arms the next one.
func notifyAfterGC(ch chan<- struct{}, stop <-chan struct{}) {
	s := &gcSentinel{}
	runtime.SetFinalizer(s, func(*gcSentinel) {
		select {
		case <-stop:
			return
		default:
		}
		select {
		case ch <- struct{}{}:
		default:
		}
		notifyAfterGC(ch, stop)
	})
}

// gcSentinel holds a pointer so that it is not a tiny allocation, whose finalizer
// would wait for the other objects sharing its block.
type gcSentinel struct{ _ *byte }
