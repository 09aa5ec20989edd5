package resp

import (
	"time"
	"unsafe"

	"github.com/cachee/cachee/store"
)

// Memory is a budget shared by every client of the process (server.Budget is one):
// what a client's buffers hold is reserved from it before the buffers grow, and a
// client whose buffers cannot grow within it is disconnected, as Redis evicts clients
// past maxmemory-clients. That, and not the per-client limits alone, is what keeps the
// process's memory flat when many clients pipeline large requests or leave large
// replies unread.
type Memory interface {
	TryAcquire(n int64) bool
	Release(n int64)
}

// clientBase is what a connected client costs before any buffer: the client, its
// parser and writer, its entry in the client table and, on an event loop, its
// epoll registration.
const clientBase = 2 << 10

// Sizes of the elements of the slices a client keeps, for its footprint.
const (
	spanSize  = int(unsafe.Sizeof(span{}))
	sliceSize = int(unsafe.Sizeof([]byte(nil)))
	itemSize  = int(unsafe.Sizeof(store.Item{}))
)

// keepArgs is the most argument slots a client keeps between requests; a request
// with more (an MGET of a million keys) gets its own, dropped afterwards.
const keepArgs = 1024

// Why a client was disconnected by a limit, for the log and INFO.
const (
	limitQuery  = "query buffer limit"
	limitOutput = "output buffer limit"
	limitMemory = "client memory budget"
	limitIdle   = "idle timeout"
)

// footprint is what c's buffers hold now.
func (c *client) footprint() int64 {
	n := clientBase + cap(c.in) + cap(c.w.b) + cap(c.scratch) + cap(c.p.quoted) +
		cap(c.p.spans)*spanSize + cap(c.p.args)*sliceSize + cap(c.sets)*itemSize +
		c.queueBytes + cap(c.queue)*int(unsafe.Sizeof(queued{}))
	return int64(n)
}

// reserve charges n more bytes to c's share of the budget, for a buffer about to
// grow by n; false means the budget cannot hold them.
func (c *client) reserve(n int) bool {
	if c.srv.cfg.Memory == nil || n <= 0 {
		return true
	}
	if !c.srv.cfg.Memory.TryAcquire(int64(n)) {
		return false
	}
	c.charged += int64(n)
	return true
}

// account trims what c keeps between requests and brings its charge in line with its
// footprint: growth that happened while requests ran (replies, arguments) is charged
// after the fact, shrinkage released. False means the budget cannot hold the growth.
func (c *client) account() bool {
	if c.ri == c.wi && len(c.in) > keepBuf {
		c.in, c.ri, c.wi = nil, 0, 0 // the next read starts with a small buffer again
	}
	if len(c.w.b) == 0 && cap(c.scratch) > keepBuf {
		c.scratch = nil // kept by bulkAside while replies were piling up
	}
	if c.p.argc == 0 {
		if cap(c.p.args) > keepArgs {
			c.p.args = nil
		}
		if cap(c.p.spans) > keepArgs {
			c.p.spans = nil
		}
		if cap(c.p.quoted) > keepBuf {
			c.p.quoted = nil
		}
		if cap(c.sets) > keepArgs {
			c.sets = nil
		}
	}
	mem := c.srv.cfg.Memory
	if mem == nil {
		return true
	}
	fp := c.footprint()
	switch {
	case fp > c.charged:
		if !mem.TryAcquire(fp - c.charged) {
			return false
		}
	case fp < c.charged:
		mem.Release(c.charged - fp)
	}
	c.charged = fp
	return true
}

// unaccount releases everything c was charged; its connection is gone.
func (c *client) unaccount() {
	if c.srv.cfg.Memory != nil && c.charged > 0 {
		c.srv.cfg.Memory.Release(c.charged)
	}
	c.charged = 0
}

// dropped records that a limit disconnected c.
func (c *client) dropped(limit string) {
	s := c.srv
	switch limit {
	case limitQuery:
		s.queryLimitDrops.Add(1)
	case limitOutput:
		s.outputLimitDrops.Add(1)
	case limitMemory:
		s.evicted.Add(1)
	case limitIdle:
		s.idleDrops.Add(1)
	}
	s.log.Warn("resp: closing client", "reason", limit, "id", c.id, "addr", c.addr,
		"query_buffer", c.wi-c.ri, "output_buffer", len(c.w.b))
}

// idleFor reports whether c has received nothing for the idle timeout, as of now
// (unix nanos).
func (c *client) idleFor(now int64) bool {
	t := c.srv.cfg.IdleTimeout
	return t > 0 && now-c.lastActive.Load() > int64(t)
}

// sweepEvery is how often idle clients are looked for: often enough that a client
// goes within a tenth of the timeout (or a second) of it.
func sweepEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 10*time.Millisecond), time.Second)
}

// overflow disconnects c after a command whose replies went past the output limit or
// the client memory budget: what it wrote is dropped, since a reply stream with a
// bulk missing would desync the client.
func (c *client) overflow() {
	c.w.b = c.w.b[:0]
	c.w.over = false
	c.closing = true
	if c.w.refused {
		c.w.refused = false
		c.dropped(limitMemory)
		return
	}
	c.dropped(limitOutput)
}
