package resp

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/cachee/cachee/store"
)

// WATCH is implemented twice over, so that EXEC aborts whenever Redis's would and also
// when something other than a RESP command changed a key:
//
//   - Every RESP command that changes a key tells the watch registry, which marks the
//     clients watching that key dirty (as Redis's touchWatchedKey does). This catches a
//     key rewritten with the same value.
//   - WATCH also records what the key held (present or not, a hash of the value, the
//     expiry), and EXEC compares that under the transaction's own lock before running
//     anything. This catches writes through gRPC or another process, expiry and
//     eviction, none of which pass through this package.
//
// EXEC aborts (a null reply) if either says the key changed.

var watchSeed = maphash.MakeSeed()

type watchedKey struct {
	key    string
	exists bool
	sum    uint64 // maphash of the value
	exp    int64  // absolute expiry in ms, 0 for none
}

// watchRegistry maps watched keys to the clients watching them.
type watchRegistry struct {
	n    atomic.Int64 // keys watched, over all clients: writers skip the lock at zero
	mu   sync.Mutex
	keys map[string][]*client
}

func (r *watchRegistry) add(c *client, key string) {
	r.mu.Lock()
	r.keys[key] = append(r.keys[key], c)
	r.mu.Unlock()
	r.n.Add(1)
}

// touch marks the watchers of key dirty.
func (r *watchRegistry) touch(key []byte) {
	if r.n.Load() == 0 {
		return
	}
	r.mu.Lock()
	for _, c := range r.keys[string(key)] {
		c.watchDirty.Store(true)
	}
	r.mu.Unlock()
}

// touchAll marks every watcher dirty (FLUSHDB).
func (r *watchRegistry) touchAll() {
	if r.n.Load() == 0 {
		return
	}
	r.mu.Lock()
	for _, cs := range r.keys {
		for _, c := range cs {
			c.watchDirty.Store(true)
		}
	}
	r.mu.Unlock()
}

// unwatchAll forgets c's watched keys.
func (r *watchRegistry) unwatchAll(c *client) {
	if len(c.watching) == 0 {
		c.watchDirty.Store(false)
		return
	}
	r.mu.Lock()
	for _, w := range c.watching {
		cs := r.keys[w.key]
		for i, x := range cs {
			if x == c {
				cs[i] = cs[len(cs)-1]
				cs = cs[:len(cs)-1]
				break
			}
		}
		if len(cs) == 0 {
			delete(r.keys, w.key)
		} else {
			r.keys[w.key] = cs
		}
	}
	r.mu.Unlock()
	r.n.Add(-int64(len(c.watching)))
	c.watching = c.watching[:0]
	c.watchDirty.Store(false)
}

// snapshot reads what key holds now. tx may be any transaction.
func snapshot(tx *store.Tx, key []byte, buf []byte) (watchedKey, []byte) {
	w := watchedKey{key: string(key)}
	v, ok, err := tx.Get(key, buf[:0])
	if err != nil || !ok {
		return w, v
	}
	w.exists = true
	w.sum = maphash.Bytes(watchSeed, v)
	if ttl, ok, _ := tx.TTL(key); ok && ttl != store.NoExpiry {
		w.exp = tx.Now().UnixMilli() + ttl.Milliseconds()
	}
	return w, v
}

func cmdWatch(c *client, args [][]byte) {
	if c.multi {
		c.w.err("ERR WATCH inside MULTI is not allowed")
		return
	}
	if c.srv.writeThrough() {
		// A transaction runs in L2 (see execInL2) over a connection all clients share,
		// where WATCH would watch for all of them.
		c.w.err("ERR WATCH is not supported with --l2-write=through")
		return
	}
	err := c.srv.st.Update(func(tx *store.Tx) error {
		for _, k := range args[1:] {
			if c.isWatching(k) {
				continue
			}
			var w watchedKey
			w, c.scratch = snapshot(tx, k, c.scratch)
			c.watching = append(c.watching, w)
			c.srv.watch.add(c, w.key)
		}
		return nil
	})
	if cap(c.scratch) > keepBuf {
		c.scratch = nil
	}
	if err != nil {
		c.storeErr(err)
		return
	}
	c.w.ok()
}

func (c *client) isWatching(k []byte) bool {
	for _, w := range c.watching {
		if w.key == string(k) {
			return true
		}
	}
	return false
}

// watchedChanged reports whether a watched key changed since WATCH. Call it inside the
// transaction that EXEC runs.
func (c *client) watchedChanged(tx *store.Tx) bool {
	if c.watchDirty.Load() {
		return true
	}
	for _, w := range c.watching {
		var now watchedKey
		now, c.scratch = snapshot(tx, []byte(w.key), c.scratch)
		if now != w {
			return true
		}
	}
	return false
}

func cmdUnwatch(c *client, args [][]byte) {
	c.srv.watch.unwatchAll(c)
	c.w.ok()
}

func cmdMulti(c *client, args [][]byte) {
	if c.multi {
		c.w.err("ERR MULTI calls can not be nested")
		return
	}
	c.multi = true
	c.setMultiN(0)
	c.w.ok()
}

func (c *client) setMultiN(n int) {
	c.mu.Lock()
	c.multiN = n
	c.mu.Unlock()
}

// enqueue queues a command inside MULTI, copying its arguments out of the read buffer.
func (c *client) enqueue(cmd *command, args [][]byte) {
	size := 0
	for _, a := range args {
		size += len(a)
	}
	if c.queueBytes+size > c.srv.cfg.MaxRequest {
		c.reject("ERR transaction too large: queued commands exceed " + itoa(c.srv.cfg.MaxRequest) + " bytes")
		return
	}
	c.queueBytes += size
	buf := make([]byte, 0, size)
	cp := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		cp[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	c.queue = append(c.queue, queued{cmd: cmd, args: cp})
	c.setMultiN(len(c.queue))
	c.w.simple("QUEUED")
}

// endMulti leaves MULTI state and forgets watched keys.
func (c *client) endMulti() {
	c.multi = false
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queueBytes = 0
	c.txDirty = false
	c.setMultiN(-1)
	c.srv.watch.unwatchAll(c)
}

func cmdDiscard(c *client, args [][]byte) {
	if !c.multi {
		c.w.err("ERR DISCARD without MULTI")
		return
	}
	c.endMulti()
	c.w.ok()
}

// cmdExec runs the queued commands inside one store transaction, so that no other
// write interleaves and lock-free readers see all of them or none. KEYS and SCAN walk
// the store under its own lock and cannot run inside a transaction: a queue that holds
// them runs in several transactions, split around each of them.
func cmdExec(c *client, args [][]byte) {
	if !c.multi {
		c.w.err("ERR EXEC without MULTI")
		return
	}
	if c.txDirty {
		c.endMulti()
		c.w.err("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	if c.srv.writeThrough() {
		execInL2(c)
		return
	}
	q := c.queue
	aborted := false
	checked := false
	for i := 0; i < len(q) || !checked; {
		if i < len(q) && q[i].cmd.flags&flagNoTx != 0 && checked {
			c.run(q[i].cmd, q[i].args)
			i++
			continue
		}
		j := i
		for j < len(q) && q[j].cmd.flags&flagNoTx == 0 {
			j++
		}
		err := c.srv.st.Atomic(func(tx *store.Tx) error {
			if !checked {
				checked = true
				if c.watchedChanged(tx) {
					aborted = true
					return nil
				}
				c.w.array(len(q))
			}
			c.db = tx
			defer func() { c.db = c.srv.st }()
			for k := i; k < j; k++ {
				c.run(q[k].cmd, q[k].args)
			}
			return nil
		})
		if err != nil {
			if !checked || aborted {
				c.endMulti()
				c.storeErr(err)
				return
			}
			for k := i; k < j; k++ {
				c.storeErr(err)
			}
		}
		if aborted {
			break
		}
		i = j
	}
	c.endMulti()
	if aborted {
		c.w.nullArray()
	}
	c.cmd = lookup([]byte("exec"))
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
