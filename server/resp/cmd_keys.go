package resp

import (
	"math"
	"strconv"
	"time"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

func cmdDel(c *client, args [][]byte) {
	if c.l2Writes() {
		delThrough(c, args)
		return
	}
	if len(args) == 2 {
		// One key: the store's own Delete, which (unlike Update) does not allocate.
		ok, err := c.db.Delete(args[1])
		switch {
		case err != nil && !keyErr(err):
			c.storeErr(err)
		case ok:
			c.touched(args[1])
			c.w.int(1)
		default:
			c.w.int(0)
		}
		return
	}
	var n int64
	err := c.db.Update(func(tx *store.Tx) error {
		for _, k := range args[1:] {
			ok, err := tx.Delete(k)
			if err != nil && !keyErr(err) {
				return err
			}
			if ok {
				n++
				c.touched(k)
			}
		}
		return nil
	})
	if err != nil {
		c.storeErr(err)
		return
	}
	c.w.int(n)
}

func cmdExists(c *client, args [][]byte) {
	var n int64
	var missing [][]byte
	err := c.db.Update(func(tx *store.Tx) error {
		for _, k := range args[1:] {
			if tx.Exists(k) {
				n++
			} else if c.l2Reads() {
				missing = append(missing, k)
			}
		}
		return nil
	})
	if err != nil {
		c.storeErr(err)
		return
	}
	if len(missing) > 0 && c.readThrough(missing, func(vs []l2.Value) {
		for _, v := range vs {
			if v.Found {
				n++
			}
		}
		c.w.int(n)
	}) {
		return
	}
	c.w.int(n)
}

func cmdExpire(c *client, args [][]byte)    { expireGeneric(c, args, true, true) }
func cmdPExpire(c *client, args [][]byte)   { expireGeneric(c, args, true, false) }
func cmdExpireAt(c *client, args [][]byte)  { expireGeneric(c, args, false, true) }
func cmdPExpireAt(c *client, args [][]byte) { expireGeneric(c, args, false, false) }

// expireGeneric is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX, XX, GT and LT,
// checked in Redis's order so that each bad input gets Redis's error.
func expireGeneric(c *client, args [][]byte, relative, seconds bool) {
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyInt) {
		return
	}
	when, ok := parseInt(args[2])
	if !ok {
		c.w.err(errNotInt)
		return
	}
	var nx, xx, gt, lt bool
	for _, opt := range args[3:] {
		switch {
		case eqFold(opt, "nx"):
			nx = true
		case eqFold(opt, "xx"):
			xx = true
		case eqFold(opt, "gt"):
			gt = true
		case eqFold(opt, "lt"):
			lt = true
		default:
			c.w.err("ERR Unsupported option " + trunc(opt, len(opt)))
			return
		}
	}
	if nx && (xx || gt || lt) {
		c.w.err("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		c.w.err("ERR GT and LT options at the same time are not compatible")
		return
	}
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			c.w.err(errExpire(c.cmd.name))
			return
		}
		when *= 1000
	}
	key := args[1]
	var reply int64 = -1
	var msg string
	err := c.db.Update(func(tx *store.Tx) error {
		now := tx.Now().UnixMilli()
		if relative {
			if when > math.MaxInt64-now {
				msg = errExpire(c.cmd.name)
				return nil
			}
			when += now
		}
		ttl, found, err := tx.TTL(key)
		if err != nil && !keyErr(err) {
			return err
		}
		if !found {
			reply = 0
			return nil
		}
		cur := int64(-1)
		if ttl != store.NoExpiry {
			cur = now + ttl.Milliseconds()
		}
		switch {
		case nx && cur != -1, xx && cur == -1, gt && (cur == -1 || when <= cur), lt && cur != -1 && when >= cur:
			reply = 0
			return nil
		}
		if when <= now {
			_, err = tx.Delete(key)
		} else {
			_, err = tx.Expire(key, time.UnixMilli(when), store.ExpireAlways)
		}
		reply = 1
		return err
	})
	switch {
	case msg != "":
		c.w.err(msg)
	case err != nil:
		c.storeErr(err)
	default:
		if reply == 1 {
			c.touched(key)
		}
		c.w.int(reply)
	}
}

// ttlMillis returns key's time to live in ms as Redis computes it (-2 missing, -1 no
// expiry), and the store's clock in ms.
func (c *client) ttlMillis(key []byte) (int64, int64, error) {
	var ms, now int64
	err := c.db.Update(func(tx *store.Tx) error {
		now = tx.Now().UnixMilli()
		ttl, ok, err := tx.TTL(key)
		switch {
		case err != nil && !keyErr(err):
			return err
		case !ok:
			ms = -2
		case ttl == store.NoExpiry:
			ms = -1
		default:
			ms = ttl.Milliseconds()
		}
		return nil
	})
	return ms, now, err
}

func cmdTTL(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.None, c.replyInt) {
		return
	}
	ms, _, err := c.ttlMillis(args[1])
	switch {
	case err != nil:
		c.storeErr(err)
	case ms < 0:
		c.w.int(ms)
	default:
		c.w.int((ms + 500) / 1000)
	}
}

func cmdPTTL(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.None, c.replyInt) {
		return
	}
	ms, _, err := c.ttlMillis(args[1])
	if err != nil {
		c.storeErr(err)
		return
	}
	c.w.int(ms)
}

func cmdExpireTime(c *client, args [][]byte)  { expireTime(c, args, true) }
func cmdPExpireTime(c *client, args [][]byte) { expireTime(c, args, false) }

func expireTime(c *client, args [][]byte, seconds bool) {
	if c.l2Writes() && c.l2Forward(args, l2.None, c.replyInt) {
		return
	}
	ms, now, err := c.ttlMillis(args[1])
	switch {
	case err != nil:
		c.storeErr(err)
	case ms < 0:
		c.w.int(ms)
	case seconds:
		c.w.int((now + ms + 500) / 1000)
	default:
		c.w.int(now + ms)
	}
}

func cmdPersist(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyInt) {
		return
	}
	var ok bool
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		ok, err = tx.Expire(args[1], time.Time{}, store.ExpireAlways)
		if keyErr(err) {
			err = nil
		}
		return err
	})
	if err != nil {
		c.storeErr(err)
		return
	}
	if ok {
		c.touched(args[1])
		c.w.int(1)
	} else {
		c.w.int(0)
	}
}

func cmdType(c *client, args [][]byte) {
	var ok bool
	err := c.db.Update(func(tx *store.Tx) error {
		ok = tx.Exists(args[1])
		return nil
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case !ok && c.l2Reads() && c.readThrough(args[1:2], func(vs []l2.Value) { c.typeName(vs[0].Found) }):
	default:
		c.typeName(ok)
	}
}

func (c *client) typeName(exists bool) {
	if exists {
		c.w.simple("string")
	} else {
		c.w.simple("none")
	}
}

// keyList collects keys for KEYS and SCAN into one buffer, without a slice per key.
type keyList struct {
	buf  []byte
	ends []int
}

func (l *keyList) add(k []byte) {
	l.buf = append(l.buf, k...)
	l.ends = append(l.ends, len(l.buf))
}

func (l *keyList) write(w *writer) {
	w.array(len(l.ends))
	start := 0
	for _, e := range l.ends {
		w.bulk(l.buf[start:e])
		start = e
	}
}

func cmdKeys(c *client, args [][]byte) {
	pat := args[1]
	all := len(pat) == 1 && pat[0] == '*'
	var l keyList
	c.srv.st.Keys(func(k []byte) {
		if all || globMatch(pat, k) {
			l.add(k)
		}
	})
	l.write(&c.w)
}

func cmdScan(c *client, args [][]byte) {
	cursor, ok := parseUint(args[1])
	if !ok {
		c.w.err("ERR invalid cursor")
		return
	}
	count := int64(10)
	var pat []byte
	onlyStrings := true
	for i := 2; i < len(args); {
		more := len(args) - i
		switch {
		case eqFold(args[i], "count") && more >= 2:
			n, ok := parseInt(args[i+1])
			if !ok {
				c.w.err(errNotInt)
				return
			}
			if n < 1 {
				c.w.err(errSyntax)
				return
			}
			count = n
		case eqFold(args[i], "match") && more >= 2:
			pat = args[i+1]
			if len(pat) == 1 && pat[0] == '*' {
				pat = nil
			}
		case eqFold(args[i], "type") && more >= 2:
			onlyStrings = eqFold(args[i+1], "string")
		default:
			c.w.err(errSyntax)
			return
		}
		i += 2
	}
	var l keyList
	next := c.srv.st.Scan(cursor, int(min(count, math.MaxInt32)), func(k []byte) {
		if onlyStrings && (pat == nil || globMatch(pat, k)) {
			l.add(k)
		}
	})
	c.w.array(2)
	var num [20]byte
	c.w.bulk(strconv.AppendUint(num[:0], next, 10))
	l.write(&c.w)
}

func cmdDBSize(c *client, args [][]byte) { c.w.int(int64(c.srv.st.Len())) }

func cmdFlush(c *client, args [][]byte) {
	if len(args) > 2 || len(args) == 2 && !eqFold(args[1], "sync") && !eqFold(args[1], "async") {
		c.w.err(errSyntax)
		return
	}
	err := c.db.Update(func(tx *store.Tx) error {
		tx.Clear()
		return nil
	})
	if err != nil {
		c.storeErr(err)
		return
	}
	c.srv.watch.touchAll()
	c.w.ok()
}

// delThrough is DEL and UNLINK with write-through: L2 deletes and answers the count,
// and L1 drops its copies. A Redis Cluster refuses a multi-key DEL across slots, so
// there each key gets its own DEL (in one pipeline) and the counts are summed.
func delThrough(c *client, args [][]byte) {
	if !c.srv.l2.Endpoint().Cluster || len(args) == 2 {
		c.l2Forward(args, l2.Drop, c.replyInt)
		return
	}
	ws := make([]l2.Write, 0, len(args)-1)
	for _, k := range args[1:] {
		ws = append(ws, l2.Write{Args: [][]byte{args[0], k}, KeyAt: []int{1}, Effect: l2.Drop})
	}
	c.l2Run(ws, func(rs []l2.Reply) {
		var n int64
		for _, r := range rs {
			if c.replyErr(r) {
				return
			}
			n += r.Int
		}
		c.w.int(n)
	})
}
