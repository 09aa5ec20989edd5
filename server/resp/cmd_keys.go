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
		if keyErr(err) {
			err = nil // a key the store cannot hold is not there to delete
		}
		c.wrote(args[1], ok, err)
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
	when, ok := c.localIntArg(args, l2.Drop)
	if !ok {
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
		// Redis accepts any deadline that fits in 64 bits; the store keeps up to
		// MaxExpireAt, which no deadline past it can be told apart from in practice.
		when = min(when, store.MaxExpireAt)
		exp, found, err := tx.Deadline(key)
		if err != nil && !keyErr(err) {
			return err
		}
		if !found {
			reply = 0
			return nil
		}
		cur := int64(-1)
		if exp != 0 {
			cur = exp
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
		exp, ok, err := tx.Deadline(key)
		switch {
		case err != nil && !keyErr(err):
			return err
		case !ok:
			ms = -2
		case exp == 0:
			ms = -1
		default:
			ms = exp - now
		}
		return nil
	})
	return ms, now, err
}

func cmdTTL(c *client, args [][]byte) {
	ttlReply(c, args, func(ms, _ int64) int64 { return (ms + 500) / 1000 })
}

func cmdPTTL(c *client, args [][]byte) { ttlReply(c, args, func(ms, _ int64) int64 { return ms }) }

func cmdExpireTime(c *client, args [][]byte) {
	ttlReply(c, args, func(ms, now int64) int64 { return (now + ms + 500) / 1000 })
}

func cmdPExpireTime(c *client, args [][]byte) {
	ttlReply(c, args, func(ms, now int64) int64 { return now + ms })
}

// ttlReply answers TTL, PTTL, EXPIRETIME and PEXPIRETIME: with write-through, L2's
// answer (L2's expiry is the key's); otherwise -2 for a missing key, -1 for one without
// expiry, or conv of the milliseconds the key has left and the clock they count from.
func ttlReply(c *client, args [][]byte, conv func(ms, now int64) int64) {
	if c.l2Writes() && c.l2Forward(args, l2.None, c.replyInt) {
		return
	}
	ms, now, err := c.ttlMillis(args[1])
	switch {
	case err != nil:
		c.storeErr(err)
	case ms < 0:
		c.w.int(ms)
	default:
		c.w.int(conv(ms, now))
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
	c.wrote(args[1], ok, err)
}

func cmdType(c *client, args [][]byte) {
	var ok bool
	var typ store.ValueType
	err := c.db.Update(func(tx *store.Tx) error {
		typ, ok = tx.Type(args[1])
		return nil
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case !ok && c.l2Ask(args, c.replyAsCmd()):
	case !ok:
		c.w.simple("none")
	default:
		c.w.simple(typeNames[typ])
	}
}

// typeNames are TYPE's answers (and SCAN's TYPE filter) for each value type.
var typeNames = map[store.ValueType]string{store.TypeString: "string", store.TypeHash: "hash"}

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
	o, ok := parseScanOptions(c, args[2:], "type")
	if !ok {
		return
	}
	count, pat, typ := o.count, o.match, o.extra
	var l keyList
	next := c.srv.st.ScanTypes(cursor, int(min(count, math.MaxInt32)), func(k []byte, t store.ValueType) {
		if (typ == nil || eqFold(typ, typeNames[t])) && (pat == nil || globMatch(pat, k)) {
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

// scanOptions are the options of SCAN and HSCAN: COUNT, MATCH (nil for none or "*")
// and one more of the command's own.
type scanOptions struct {
	count int64
	match []byte
	extra []byte // the value of the command's own option; for a flag, non-nil when given
}

// parseScanOptions parses args as SCAN-family options, with extra the name of the
// command's own option: TYPE takes a value, NOVALUES is a flag. It writes the error
// and reports false for a bad one.
func parseScanOptions(c *client, args [][]byte, extra string) (scanOptions, bool) {
	o := scanOptions{count: 10}
	flag := extra == "novalues"
	for i := 0; i < len(args); {
		more := len(args) - i
		switch {
		case eqFold(args[i], "count") && more >= 2:
			n, ok := parseInt(args[i+1])
			if !ok {
				c.w.err(errNotInt)
				return o, false
			}
			if n < 1 {
				c.w.err(errSyntax)
				return o, false
			}
			o.count = n
			i += 2
		case eqFold(args[i], "match") && more >= 2:
			o.match = args[i+1]
			if len(o.match) == 1 && o.match[0] == '*' {
				o.match = nil
			}
			i += 2
		case flag && eqFold(args[i], extra):
			o.extra = args[i]
			i++
		case !flag && eqFold(args[i], extra) && more >= 2:
			o.extra = args[i+1]
			i += 2
		default:
			c.w.err(errSyntax)
			return o, false
		}
	}
	return o, true
}
