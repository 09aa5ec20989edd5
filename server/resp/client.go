package resp

import (
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachee/cachee/store"
)

const (
	readChunk = 16 << 10 // initial read buffer, and the least free space a read gets
	outFlush  = 64 << 10 // replies past this are written before more requests run
	keepBuf   = 64 << 10 // buffers larger than this are dropped when drained
)

// client is one RESP connection's state. Only the goroutine serving the connection
// touches it, except the fields under mu and the atomics, which CLIENT LIST and INFO
// read from other connections.
type client struct {
	lastBulk int // length of the last value bulkValue read
	srv      *Server
	id       int64
	addr     string
	laddr    string
	fd       int // -1 until an event loop takes the connection; written and read under mu
	created  time.Time
	kill     func() // closes the connection from another goroutine; set under srv.mu
	wake     func() // ends a goroutine's blocked read when the server drains; set under srv.mu

	in     []byte // read buffer; in[r:w] is unparsed
	ri, wi int
	p      parser
	w      writer
	// db is what commands read and write: the store, or inside EXEC the transaction
	// that the queued commands share (whose lock the store's own methods would wait for).
	db store.DB

	authed  bool
	closing bool // close after writing what is in w.b
	cmd     *command
	scratch []byte
	sets    []store.Item // pipelined plain SETs not yet stored (see flushSets)
	one     [3][]byte    // arguments of a lone batched SET

	// pending is a command waiting for L2; nothing else runs on the connection until
	// it finishes (see loop.park, and serveBlocking).
	pending *pendingOp

	// MULTI state.
	multi      bool
	queue      []queued
	queueBytes int
	txDirty    bool // a queuing error: EXEC will abort
	watching   []watchedKey
	watchDirty atomic.Bool // a watched key was written by a RESP command

	lastActive atomic.Int64 // unix nanos
	charged    int64        // bytes reserved from Config.Memory (see limits.go)
	lastCmd    atomic.Pointer[command]
	cmds       int64 // commands since the last flush to srv.cmdsTotal
	// untilSample counts down the commands to run before the next timed one (see
	// latencyEvery).
	untilSample int

	mu      sync.Mutex // guards the fields below
	name    string
	libName string
	libVer  string
	proto   int
	multiN  int
}

type queued struct {
	cmd  *command
	args [][]byte
}

func newClient(s *Server, c net.Conn) *client {
	cl := &client{
		srv:     s,
		id:      s.nextID.Add(1),
		created: time.Now(),
		fd:      -1,
		p:       newParser(s.maxBulk, s.cfg.MaxArgs),
		w:       writer{proto: 2},
		db:      s.st,
		authed:  s.cfg.RequirePass == "",
		proto:   2,
		multiN:  -1,
	}
	if c != nil {
		if a := c.RemoteAddr(); a != nil {
			cl.addr = addrString(a)
		}
		if a := c.LocalAddr(); a != nil {
			cl.laddr = addrString(a)
		}
	}
	cl.w.reserve = cl.reserve
	// A random start, so that connections that each send a few commands still get
	// sampled, one command in latencyEvery overall.
	cl.untilSample = 1 + rand.IntN(latencyEvery)
	cl.lastActive.Store(cl.created.UnixNano())
	return cl
}

// addrString renders an address as CLIENT LIST does: host:port, or path:0 for a Unix
// socket.
func addrString(a net.Addr) string {
	if a.Network() == "unix" {
		return a.String() + ":0"
	}
	return a.String()
}

// touch records activity at now (unix nanos) for CLIENT LIST's idle=.
func (c *client) touch(now int64) { c.lastActive.Store(now) }

// feed appends bytes read elsewhere (the listener's protocol sniffing).
func (c *client) feed(b []byte) {
	if len(b) == 0 {
		return
	}
	if c.in == nil {
		c.in = make([]byte, max(readChunk, len(b)))
	}
	c.makeRoomFor(len(b)) // cannot fail: the sniffed bytes fit in the first buffer
	c.wi += copy(c.in[c.wi:], b)
}

// makeRoom prepares c.in for a read: compacts it, grows it when a request in progress
// needs more, and reports false when that request is past the limit (the connection
// must be dropped, as Redis drops a client past its query buffer limit).
func (c *client) makeRoom() bool {
	if c.in == nil {
		if !c.reserve(readChunk) {
			c.dropped(limitMemory)
			return false
		}
		c.in = make([]byte, readChunk)
	}
	if c.ri == c.wi {
		c.ri, c.wi = 0, 0
		if len(c.in) > keepBuf {
			c.in = make([]byte, readChunk)
		}
	}
	pending := c.wi - c.ri
	if pending >= c.srv.cfg.MaxRequest {
		c.dropped(limitQuery)
		return false
	}
	want := readChunk
	if need := c.p.need(); need > pending {
		want = max(want, min(need-pending, c.srv.cfg.MaxRequest-pending))
	}
	if !c.makeRoomFor(want) {
		c.dropped(limitMemory)
		return false
	}
	return true
}

// makeRoomFor makes at least n bytes free after c.w; false when the memory budget
// cannot hold the larger buffer that takes.
func (c *client) makeRoomFor(n int) bool {
	if len(c.in)-c.wi >= n {
		return true
	}
	if c.ri > 0 {
		c.wi = copy(c.in, c.in[c.ri:c.wi])
		c.ri = 0
		if len(c.in)-c.wi >= n {
			return true
		}
	}
	// Double, but not far past what a request may take.
	size := max(min(2*len(c.in), c.srv.cfg.MaxRequest+readChunk), c.wi+n)
	if !c.reserve(size - len(c.in)) {
		return false
	}
	nb := make([]byte, size)
	copy(nb, c.in[:c.wi])
	c.in = nb
	return true
}

// process runs the complete requests in c.in, appending replies to c.w.b. It reports
// true when it stopped early, with requests left, because this call's replies grew
// past outFlush: the caller writes them and calls again.
func (c *client) process() bool {
	defer c.flushCounters()
	stop := len(c.w.b) + outFlush
	if c.w.over {
		// A reply written since the last run (an L2 call's) went past a limit.
		c.overflow()
		return false
	}
	for c.ri < c.wi && !c.closing {
		if len(c.w.b) >= stop {
			c.flushSets()
			return true
		}
		if c.p.dropping {
			// The rest of a request refused for its size: read to its end, so that the
			// client is not reset while still writing it, then close.
			n, done := c.p.discard(c.in[c.ri:c.wi])
			c.ri += n
			c.closing = done
			if !done {
				break // all of it read: wait for more
			}
			continue
		}
		n, st, perr := c.p.parse(c.in[c.ri:c.wi], c.authed)
		switch st {
		case parseMore:
			c.flushSets()
			return false
		case parseError:
			c.flushSets()
			c.w.err("ERR Protocol error: " + perr)
			c.ri += n // what the parser consumed of a request it is dropping
			c.closing = !c.p.dropping
			c.p.reset()
			if c.p.dropping {
				continue
			}
			return false
		}
		multibulk := c.in[c.ri] == '*'
		c.ri += n
		if len(c.p.args) == 0 {
			continue
		}
		if multibulk && c.batchable(c.p.args) {
			c.sets = append(c.sets, store.Item{Key: c.p.args[1], Value: c.p.args[2]})
			continue
		}
		c.flushSets()
		c.exec(c.p.args)
		if c.w.over {
			c.overflow()
			return false
		}
		if c.pending != nil {
			return false
		}
	}
	c.flushSets()
	if c.ri == c.wi {
		c.ri, c.wi = 0, 0
	}
	return false
}

// Pipelined plain SETs (redis-benchmark's, a cache warming loop's) are stored with one
// store.SetMany per read instead of one Set each: the store then takes its lock, reads
// its clock and drains its read buffer once for the lot. Their arguments stay in the
// read buffer (multibulk requests only: inline arguments may live in a scratch buffer
// the next request reuses) until flushSets runs, before any other request and before
// process returns.

var (
	setCmd  *command // commands["set"], set by init
	setName = []byte("set")
)

// batchable reports a SET with no options that would run at once in the store (a
// write-through goes to L2 instead).
func (c *client) batchable(args [][]byte) bool {
	return len(args) == 3 && !c.multi && c.authed && eqFold(args[0], "set") && !c.srv.writeThrough()
}

// flushSets stores the batched SETs and replies to each.
func (c *client) flushSets() {
	switch len(c.sets) {
	case 0:
		return
	case 1:
		c.cmds++
		c.one = [3][]byte{setName, c.sets[0].Key, c.sets[0].Value}
		c.run(setCmd, c.one[:])
		c.one = [3][]byte{}
		clear(c.sets)
		c.sets = c.sets[:0]
		return
	}
	c.cmds += int64(len(c.sets))
	c.cmd = setCmd
	c.lastCmd.Store(setCmd)
	errs := c.srv.st.SetMany(c.sets, nil)
	for i, it := range c.sets {
		if errs != nil && errs[i] != nil {
			c.w.err(errReply(errs[i], setCmd))
			continue
		}
		c.touched(it.Key)
		c.w.ok()
	}
	clear(c.sets)
	c.sets = c.sets[:0]
}

func (c *client) flushCounters() {
	if c.cmds > 0 {
		c.srv.cmdsTotal.Add(c.cmds)
		c.cmds = 0
	}
}

// exec runs (or queues) one request.
func (c *client) exec(args [][]byte) {
	c.cmds++
	cmd := lookup(args[0])
	if cmd == nil {
		if isSecurityProbe(args[0]) {
			// Someone sent HTTP to us (a browser, an SSRF): close without a word,
			// as Redis does.
			// Replies to earlier requests of the same read are dropped too, as Redis
			// frees such a client before it writes them.
			c.srv.log.Warn("resp: possible cross-protocol attack; closing connection", "addr", c.addr)
			c.w.b = c.w.b[:0]
			c.closing = true
			return
		}
		c.reject(unknownCommand(args))
		return
	}
	if cmd.subs != nil && len(args) >= 2 {
		sub := cmd.sub(args[1])
		if sub == nil {
			c.reject("ERR unknown subcommand '" + trunc(args[1], 128) + "'. Try " + upper(cmd.name) + " HELP.")
			return
		}
		cmd = sub
	}
	if cmd.arity > 0 && len(args) != cmd.arity || len(args) < -cmd.arity {
		c.reject(errArgs(cmd.name))
		return
	}
	if !c.authed && cmd.flags&flagNoAuth == 0 {
		c.reject(errNoAuth)
		return
	}
	if c.multi && cmd.flags&flagNoQueue == 0 {
		c.enqueue(cmd, args)
		return
	}
	c.run(cmd, args)
}

// run executes cmd now.
func (c *client) run(cmd *command, args [][]byte) {
	c.cmd = cmd
	if c.lastCmd.Load() != cmd {
		c.lastCmd.Store(cmd)
	}
	if c.untilSample--; c.untilSample > 0 || c.srv.cfg.Latency == nil {
		cmd.fn(c, args)
		return
	}
	c.untilSample = latencyEvery
	c.timed(cmd, args)
}

// latencyEvery is how many commands a connection runs per one it times for
// Config.Latency. Timing one costs two clock reads and an observation in a Prometheus
// summary, whose quantile streams sort and merge their samples: about 5,400
// instructions per timed command, measured with callgrind, against about 1,900 for
// the event loop's whole work on a pipelined GET (system calls aside). One in 512
// keeps that near 0.6% of the cost per command (docs/performance.md, "RESP latency
// sampling"), and still gives the summary some 200 samples a second at 100,000
// commands a second.
const latencyEvery = 512

// timed runs cmd and reports how long it took; a command that parks on L2 is reported
// when its reply has been written.
func (c *client) timed(cmd *command, args [][]byte) {
	start := time.Now()
	cmd.fn(c, args)
	observe := c.srv.cfg.Latency
	if op := c.pending; op != nil {
		finish := op.finish
		op.finish = func() {
			finish()
			observe(time.Since(start))
		}
		return
	}
	observe(time.Since(start))
}

// reject replies with an error before running a command; inside MULTI it also dooms
// the transaction, as in Redis.
func (c *client) reject(msg string) {
	if c.multi {
		c.txDirty = true
	}
	c.w.err(msg)
}

func unknownCommand(args [][]byte) string {
	var b []byte
	for i := 1; i < len(args) && len(b) < 128; i++ {
		n := 128 - len(b)
		b = append(b, '\'')
		b = append(b, trunc(args[i], n)...)
		b = append(b, "' "...)
	}
	return "ERR unknown command '" + trunc(args[0], 128) + "', with args beginning with: " + string(b)
}

// trunc is C's "%.*s": at most n bytes, stopping at a NUL.
func trunc(b []byte, n int) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// isSecurityProbe reports a first word of an HTTP request ("POST", "Host:"), which
// Redis treats as an attack and answers by closing.
func isSecurityProbe(name []byte) bool {
	return eqFold(name, "post") || eqFold(name, "host:")
}

// eqFold compares an ASCII argument with a lower-case word, ignoring case.
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// storeErr replies with the Redis error for a store error.
func (c *client) storeErr(err error) {
	c.w.err(errReply(err, c.cmd))
}

func errReply(err error, cmd *command) string {
	switch {
	case errors.Is(err, store.ErrOutOfMemory):
		return errOOM
	case errors.Is(err, store.ErrValueTooLarge):
		return errTooBig
	case errors.Is(err, store.ErrKeyTooLarge):
		return errKeyTooBig
	case errors.Is(err, store.ErrKeyEmpty):
		return errEmptyKey
	case errors.Is(err, store.ErrInvalidTTL):
		name := "set"
		if cmd != nil {
			name = cmd.name
		}
		return errExpire(name)
	case errors.Is(err, store.ErrClosed):
		return "ERR server is shutting down"
	case errors.Is(err, store.ErrWrongType):
		return errWrongType
	case errors.Is(err, store.ErrHashTooLarge):
		return "ERR " + strings.TrimPrefix(err.Error(), "store: ")
	}
	return "ERR " + err.Error()
}

// setProto switches the reply protocol.
func (c *client) setProto(p int) {
	c.w.proto = p
	c.mu.Lock()
	c.proto = p
	c.mu.Unlock()
}
