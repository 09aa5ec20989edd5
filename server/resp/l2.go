package resp

import (
	"strconv"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// With an L2 tier (Config.L2), commands read misses through from L2 and, with
// write-through, run writes in L2 first. Each such command sets c.pending instead of
// replying, and the reply is written when L2 answers (see loop.park). Inside EXEC's
// store transaction nothing parks: queued commands run on L1 alone, or the whole
// transaction runs in L2 (see execInL2).
//
// What each write does to L1 after L2 ran it (l2.Effect):
//
//	SET, SETNX, SETEX, PSETEX, MSET, MSETNX   store the value written, if L2 stored it
//	GETSET                                    store the value written
//	INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT   store L2's result
//	GETEX                                     store the value L2 returned (with its new TTL)
//	SET ... GET, GETDEL, DEL, UNLINK          drop
//	APPEND, SETRANGE                          drop (the next read fetches the whole value;
//	                                          sending it back on every append would cost more)
//	EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT,
//	PERSIST                                   drop (the next read caps the TTL afresh)
//
// Every stored copy gets --l1-ttl capped by the key's PTTL, which runs in the same
// MULTI/EXEC as the write. TTL, PTTL, EXPIRETIME and PEXPIRETIME are answered by L2,
// whose expiry is the key's. FLUSHDB and FLUSHALL, KEYS, SCAN and DBSIZE stay local:
// they are about this sidecar's L1, and flushing the shared L2 from one pod's cache
// would be a dangerous side effect.

// pendingOp is a command waiting for L2.
type pendingOp struct {
	start  func(done func()) // starts the call; done runs once, on any goroutine
	finish func()            // on the connection's goroutine, after done: writes the reply
}

// l2Reads reports whether a miss may be read through now.
func (c *client) l2Reads() bool { return c.srv.l2 != nil && !c.inTx() }

// l2Writes reports whether a write goes to L2 now.
func (c *client) l2Writes() bool { return c.srv.writeThrough() && !c.inTx() }

// inTx reports whether commands run inside EXEC's store transaction.
func (c *client) inTx() bool {
	_, ok := c.db.(*store.Tx)
	return ok
}

func (s *Server) writeThrough() bool { return s.l2 != nil && s.l2.WriteThrough() }

// readThrough parks the connection until L2 has answered for keys (misses in L1),
// then calls reply with their values. It reports false, doing nothing, when there
// is no L2 to read from.
func (c *client) readThrough(keys [][]byte, reply func(vals []l2.Value)) bool {
	if !c.l2Reads() {
		return false
	}
	var vals []l2.Value
	tier := c.srv.l2
	cp := make([][]byte, len(keys))
	for i, k := range keys {
		cp[i] = append([]byte(nil), k...)
	}
	c.pending = &pendingOp{
		start:  func(done func()) { tier.FetchAsync(cp, func(v []l2.Value) { vals = v; done() }) },
		finish: func() { reply(vals) },
	}
	return true
}

// writeThrough parks the connection until L2 has run w (and L1 followed), then calls
// reply with L2's answer. An L2 that fails or does not answer in time gets the client
// an error. It reports false, doing nothing, when writes do not go to L2.
func (c *client) writeThrough(w l2.Write, reply func(r l2.Reply)) bool {
	if !c.l2Writes() {
		return false
	}
	c.l2Run([]l2.Write{w}, func(rs []l2.Reply) { reply(rs[0]) })
	return true
}

// l2Run parks the connection until L2 has run ws; reply gets the replies of those that
// did not fail (a failed one is answered with an error by l2Run itself, in reply's
// place, so reply must cope with being skipped: it is called only if all succeeded).
func (c *client) l2Run(ws []l2.Write, reply func(rs []l2.Reply)) {
	tier := c.srv.l2
	var rs []l2.Reply
	var failed error
	c.pending = &pendingOp{
		start: func(done func()) {
			tier.WriteManyAsync(ws, func(r []l2.Reply, errs []error) {
				rs = r
				for _, err := range errs {
					if err != nil {
						failed = err
						break
					}
				}
				done()
			})
		},
		finish: func() {
			if failed != nil {
				c.w.err("ERR L2 did not confirm the write: " + failed.Error())
				return
			}
			reply(rs)
		},
	}
}

// keysAt lists the indexes of a command's keys in args, as the command table
// describes them.
func keysAt(cmd *command, n int) []int {
	if cmd.first == 0 {
		return nil
	}
	last := cmd.last
	if last < 0 {
		last = n + last
	}
	var at []int
	for i := cmd.first; i <= last && i < n; i += max(cmd.step, 1) {
		at = append(at, i)
	}
	return at
}

// l2Write describes the command in args for L2.
func (c *client) l2Write(args [][]byte, effect l2.Effect, values ...[]byte) l2.Write {
	return l2.Write{Args: args, KeyAt: keysAt(c.cmd, len(args)), Values: values, Effect: effect}
}

// writeReply writes an L2 reply: errors as errors, and otherwise in the shape the
// caller asks for.
func (c *client) replyErr(r l2.Reply) bool {
	if r.Kind == l2.ReplyErr {
		c.w.err(string(r.Str))
		return true
	}
	return false
}

func (c *client) replyInt(r l2.Reply) {
	if !c.replyErr(r) {
		c.w.int(r.Int)
	}
}

func (c *client) replyBulk(r l2.Reply) {
	switch {
	case c.replyErr(r):
	case r.Kind == l2.ReplyNil:
		c.w.null()
	case r.Kind == l2.ReplyInt:
		c.w.bulk(strconv.AppendInt(nil, r.Int, 10))
	default:
		c.w.bulk(r.Str)
	}
}

func (c *client) replyOK(r l2.Reply) {
	switch {
	case c.replyErr(r):
	case r.Kind == l2.ReplyNil:
		c.w.null()
	default:
		c.w.ok()
	}
}

// l2Forward runs a command in L2 with the given effect and replies with fn.
func (c *client) l2Forward(args [][]byte, effect l2.Effect, fn func(l2.Reply), values ...[]byte) bool {
	return c.writeThrough(c.l2Write(args, effect, values...), fn)
}

// execInL2 is EXEC with write-through: the queue runs in L2 as one MULTI/EXEC, since
// L2 holds the authoritative copies and only it can apply the commands atomically
// against other pods' writes; L1 then drops every key the transaction named. The
// commands that are about this sidecar's own L1 are refused in a transaction.
func execInL2(c *client) {
	q := c.queue
	cmds := make([]l2.Write, len(q))
	kinds := make([]*command, len(q)) // endMulti clears the queue before the reply is written
	for i, qc := range q {
		kinds[i] = qc.cmd
		switch qc.cmd.name {
		case "flushdb", "flushall", "dbsize", "keys", "scan":
			c.endMulti()
			c.w.err("EXECABORT " + upper(qc.cmd.name) + " is about this sidecar's L1 and cannot run in a transaction with --l2-write=through")
			return
		}
		cmds[i] = l2.Write{Args: qc.args, KeyAt: keysAt(qc.cmd, len(qc.args))}
	}
	c.endMulti()
	tier := c.srv.l2
	var rs []l2.Reply
	var failed error
	c.pending = &pendingOp{
		start: func(done func()) {
			tier.TxAsync(cmds, func(r []l2.Reply, err error) { rs, failed = r, err; done() })
		},
		finish: func() {
			switch {
			case failed != nil:
				c.w.err("EXECABORT L2 did not confirm the transaction: " + failed.Error())
			case rs == nil:
				c.w.nullArray()
			default:
				c.w.array(len(rs))
				for i, r := range rs {
					c.writeReply(kinds[i], r)
				}
			}
		},
	}
}

// writeReply writes any L2 reply. A string is a status reply ("+OK") when the command
// answers with a status; otherwise a bulk string.
func (c *client) writeReply(cmd *command, r l2.Reply) {
	switch r.Kind {
	case l2.ReplyNil:
		c.w.null()
	case l2.ReplyInt:
		c.w.int(r.Int)
	case l2.ReplyErr:
		c.w.err(string(r.Str))
	case l2.ReplyArray:
		c.w.array(len(r.Array))
		for _, e := range r.Array {
			c.writeReply(nil, e)
		}
	default:
		if cmd != nil && statusReply(cmd.name, r.Str) {
			c.w.simple(string(r.Str))
		} else {
			c.w.bulk(r.Str)
		}
	}
}

// statusReply reports whether cmd answers s as a simple string.
func statusReply(cmd string, s []byte) bool {
	switch cmd {
	case "set": // OK, or with GET the old value
		return string(s) == "OK"
	case "mset", "setex", "psetex", "ping", "type", "select", "flushdb", "flushall", "client|setname", "unwatch":
		return true
	}
	return false
}
