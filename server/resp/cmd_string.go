package resp

import (
	"errors"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// keyErr reports errors that mean "this key cannot exist": an empty key or one longer
// than the store allows. Reads answer them as a miss, as Redis would for a key that is
// not there; writes reply with an error.
func keyErr(err error) bool {
	return errors.Is(err, store.ErrKeyEmpty) || errors.Is(err, store.ErrKeyTooLarge)
}

// value reads key into the client's scratch buffer.
func (c *client) value(key []byte) ([]byte, bool, error) {
	v, ok, err := c.db.Get(key, c.scratch[:0])
	if cap(v) <= keepBuf {
		c.scratch = v[:0]
	}
	if err != nil && keyErr(err) {
		return nil, false, nil
	}
	return v, ok, err
}

// touched tells WATCHers that key changed.
func (c *client) touched(key []byte) { c.srv.watch.touch(key) }

func cmdGet(c *client, args [][]byte) {
	ok, err := c.bulkValue(args[1])
	switch {
	case err != nil:
		c.storeErr(err)
	case !ok:
		if c.l2Reads() && c.readThrough(args[1:2], func(vs []l2.Value) { c.bulkOrNull(vs[0]) }) {
			return
		}
		c.w.null()
	}
}

// bulkValue writes key's value as a bulk reply, copied by the store straight into the
// reply buffer after room for the header, which is then written in front of it: a
// large value is copied once and makes no garbage, where reading it into a scratch
// buffer first copied it twice and left a buffer of its size behind each time. The
// room is the header length of the client's previous value, so that a client reading
// values of similar sizes never has its value moved; otherwise it moves by the
// difference. It writes nothing for a missing key (false). Growth of the reply buffer
// is charged to the client memory budget at once; refused, the reply is dropped and
// the client disconnected, as writer.fits does (it cannot ask first: the value's
// length is known only once it is read).
func (c *client) bulkValue(key []byte) (bool, error) {
	w := &c.w
	if w.over {
		return true, nil // the client will be disconnected: reading the value is waste
	}
	pos, oldCap := len(w.b), cap(w.b)
	room := bulkHeaderLen(c.lastBulk)
	if n := c.lastBulk; n >= reserveFrom && pos >= keepBuf && cap(w.b)-pos < room+n+2 {
		return c.bulkAside(key)
	}
	var hdr [1 + 20 + 2]byte
	v, ok, err := c.db.Get(key, append(w.b, hdr[:room]...))
	if err != nil || !ok {
		w.b = v[:pos]
		if err != nil && keyErr(err) {
			return false, nil
		}
		return ok, err
	}
	n := len(v) - pos - room
	h := strconv.AppendInt(append(hdr[:0], '$'), int64(n), 10)
	h = append(h, '\r', '\n')
	c.lastBulk = n
	if d := len(h) - room; d != 0 {
		end := len(v)
		if d > 0 {
			v = slices.Grow(v, d+2) // and the CRLF, so that the value is copied once
		}
		v = v[:end+d]
		copy(v[pos+len(h):], v[pos+room:end])
	}
	copy(v[pos:], h)
	w.b = append(v, '\r', '\n')
	switch grown := cap(w.b) - oldCap; {
	case w.max > 0 && len(w.b) > w.max:
		w.b, w.over = w.b[:pos], true
	case grown >= reserveFrom && w.reserve != nil && !w.reserve(grown):
		w.b, w.over, w.refused = w.b[:pos], true, true
	}
	return true, nil
}

// bulkHeaderLen is the length of the header of a bulk string of n bytes, "$<n>\r\n".
func bulkHeaderLen(n int) int {
	digits := 1
	for ; n >= 10; n /= 10 {
		digits++
	}
	return 1 + digits + 2
}

// bulkAside is bulkValue for a value that is likely large (the last one was) and
// would not fit a reply buffer that holds many replies already: the store's append
// would grow the buffer as append does, to twice its size, before the output limit
// or the client memory budget is asked. A client that leaves large replies unread
// has a buffer of several MiB, so each such value cost an allocation of twice that,
// only for the reply to be dropped. Read aside first, the value is written through
// fits, which asks both before the buffer grows; that copies it once more, which is
// little beside the buffer's growth.
func (c *client) bulkAside(key []byte) (bool, error) {
	v, ok, err := c.value(key)
	if err != nil || !ok {
		return false, err
	}
	c.lastBulk = len(v)
	writeBulk(&c.w, v)
	// Kept for the next value while replies pile up (value keeps only small ones): a
	// pipeline of large GETs would otherwise allocate a value's size per GET. It is
	// charged with the client's buffers, and dropped once the replies are written.
	c.scratch = v[:0]
	return true, nil
}

// expireUnit is how an expire argument counts.
type expireUnit uint8

const (
	noExpire expireUnit = iota
	unitEX              // relative seconds
	unitPX              // relative milliseconds
	unitEXAT            // absolute seconds
	unitPXAT            // absolute milliseconds
)

// setArgs are the options of SET and GETEX.
type setArgs struct {
	nx, xx, get, keepTTL, persist bool
	unit                          expireUnit
	expire                        []byte
}

// expireOptions are the expiry options of SET and GETEX, by name.
var expireOptions = [...]struct {
	name string
	unit expireUnit
}{{"ex", unitEX}, {"px", unitPX}, {"exat", unitEXAT}, {"pxat", unitPXAT}}

// expireOption sets o.unit if opt is an expiry option that agrees with the one given
// before, if any (Redis accepts "EX 1 EX 2", not "EX 1 PX 2").
func (o *setArgs) expireOption(opt []byte) bool {
	for _, e := range expireOptions {
		if eqFold(opt, e.name) && (o.unit == noExpire || o.unit == e.unit) {
			o.unit = e.unit
			return true
		}
	}
	return false
}

// parseSetArgs reads the options of SET (from args[3]) or GETEX (from args[2]) with
// Redis's rules: which options exclude which, and "syntax error" for the rest.
func parseSetArgs(args [][]byte, isSet bool) (setArgs, bool) {
	var o setArgs
	j := 2
	if isSet {
		j = 3
	}
	for ; j < len(args); j++ {
		opt := args[j]
		hasNext := j+1 < len(args)
		timed := o.unit != noExpire
		switch {
		case isSet && eqFold(opt, "nx") && !o.xx:
			o.nx = true
		case isSet && eqFold(opt, "xx") && !o.nx:
			o.xx = true
		case isSet && eqFold(opt, "get"):
			o.get = true
		case isSet && eqFold(opt, "keepttl") && !o.persist && !timed:
			o.keepTTL = true
		case !isSet && eqFold(opt, "persist") && !timed && !o.keepTTL:
			o.persist = true
		case !o.keepTTL && !o.persist && hasNext && o.expireOption(opt):
			o.expire = args[j+1]
			j++
		default:
			return o, false
		}
	}
	return o, true
}

// expiry turns an expire argument into store options, or the error Redis replies with.
func (c *client) expiry(unit expireUnit, arg []byte) (store.SetOptions, string) {
	var opt store.SetOptions
	if unit == noExpire {
		return opt, ""
	}
	ms, ok := parseInt(arg)
	if !ok {
		return opt, errNotInt
	}
	secs := unit == unitEX || unit == unitEXAT
	if ms <= 0 || secs && ms > math.MaxInt64/1000 {
		return opt, errExpire(c.cmd.name)
	}
	if secs {
		ms *= 1000
	}
	// Redis accepts any deadline that fits in 64 bits; the store keeps deadlines up to
	// MaxExpireAt, so later ones are kept as that.
	switch unit {
	case unitEX, unitPX:
		now := time.Now().UnixMilli()
		switch {
		case ms > math.MaxInt64-now:
			return opt, errExpire(c.cmd.name)
		case ms <= math.MaxInt64/int64(time.Millisecond):
			opt.TTL = time.Duration(ms) * time.Millisecond
		default:
			opt.ExpireAt = time.UnixMilli(min(now+ms, store.MaxExpireAt))
		}
	default:
		opt.ExpireAt = time.UnixMilli(min(ms, store.MaxExpireAt))
	}
	return opt, ""
}

func cmdSet(c *client, args [][]byte) {
	o, ok := parseSetArgs(args, true)
	if !ok {
		c.w.err(errSyntax)
		return
	}
	opt, msg := c.expiry(o.unit, o.expire)
	if msg != "" {
		c.w.err(msg)
		return
	}
	opt.KeepTTL = o.keepTTL
	switch {
	case o.nx:
		opt.Cond = store.IfAbsent
	case o.xx:
		opt.Cond = store.IfPresent
	}
	key, val := args[1], args[2]
	if c.l2Writes() && (o.get && c.l2Forward(args, l2.Drop, c.replyBulk) ||
		!o.get && c.l2Forward(args, l2.StoreIfOK, c.replyOK, val)) {
		return
	}
	if !o.get {
		stored, err := c.db.Set(key, val, opt)
		switch {
		case err != nil:
			c.storeErr(err)
		case !stored:
			c.w.null()
		default:
			c.touched(key)
			c.w.ok()
		}
		return
	}
	var old []byte
	var found, stored bool
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		old, found, err = tx.Get(key, c.scratch[:0])
		if err != nil {
			return err
		}
		stored, err = tx.Set(key, val, opt)
		return err
	})
	if err != nil {
		c.storeErr(err)
		return
	}
	if stored {
		c.touched(key)
	}
	if found {
		c.w.bulk(old)
	} else {
		c.w.null()
	}
}

func cmdSetNX(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.StoreIfOK, c.replyInt, args[2]) {
		return
	}
	stored, err := c.db.Set(args[1], args[2], store.SetOptions{Cond: store.IfAbsent})
	c.wrote(args[1], stored, err)
}

func cmdSetEX(c *client, args [][]byte)  { setWithExpire(c, args, unitEX) }
func cmdPSetEX(c *client, args [][]byte) { setWithExpire(c, args, unitPX) }

func setWithExpire(c *client, args [][]byte, unit expireUnit) {
	opt, msg := c.expiry(unit, args[2])
	if msg != "" {
		c.w.err(msg)
		return
	}
	if c.l2Writes() && c.l2Forward(args, l2.StoreIfOK, c.replyOK, args[3]) {
		return
	}
	if _, err := c.db.Set(args[1], args[3], opt); err != nil {
		c.storeErr(err)
		return
	}
	c.touched(args[1])
	c.w.ok()
}

func cmdGetSet(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.StoreAlways, c.replyBulk, args[2]) {
		return
	}
	var old []byte
	var found bool
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		old, found, err = tx.Get(args[1], c.scratch[:0])
		if err != nil {
			return err
		}
		_, err = tx.Set(args[1], args[2], store.SetOptions{})
		return err
	})
	if err != nil {
		c.storeErr(err)
		return
	}
	c.touched(args[1])
	if found {
		c.w.bulk(old)
	} else {
		c.w.null()
	}
}

func cmdGetDel(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyBulk) {
		return
	}
	c.getAnd(args[1], func(tx *store.Tx) (bool, string, error) {
		_, err := tx.Delete(args[1])
		return true, "", err
	})
}

func cmdGetEX(c *client, args [][]byte) {
	o, ok := parseSetArgs(args, false)
	if !ok {
		c.w.err(errSyntax)
		return
	}
	if c.l2Writes() {
		if _, msg := c.expiry(o.unit, o.expire); msg != "" {
			c.w.err(msg)
			return
		}
		c.l2Forward(args, l2.StoreReply, c.replyBulk)
		return
	}
	c.getAnd(args[1], func(tx *store.Tx) (changed bool, msg string, err error) {
		var opt store.SetOptions
		if opt, msg = c.expiry(o.unit, o.expire); msg != "" {
			return false, msg, nil
		}
		switch {
		case o.unit == unitEXAT || o.unit == unitPXAT:
			if !opt.ExpireAt.After(tx.Now()) {
				changed, err = tx.Delete(args[1])
			} else {
				changed, err = tx.Expire(args[1], opt.ExpireAt, store.ExpireAlways)
			}
		case o.unit != noExpire:
			changed, err = tx.Expire(args[1], tx.Now().Add(opt.TTL), store.ExpireAlways)
		case o.persist:
			changed, err = tx.Expire(args[1], time.Time{}, store.ExpireAlways)
		}
		return changed, "", err
	})
}

// getAnd reads key and, if it is there, runs act on it in the same transaction. It
// answers with the value read: null for a missing key (or one the store cannot hold),
// a Redis error that act returns instead, or the store's error. act reports whether
// it changed the key.
func (c *client) getAnd(key []byte, act func(tx *store.Tx) (changed bool, msg string, err error)) {
	var v []byte
	var found, changed bool
	var msg string
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		v, found, err = tx.Get(key, c.scratch[:0])
		if err != nil || !found {
			return err
		}
		changed, msg, err = act(tx)
		return err
	})
	switch {
	case err != nil && keyErr(err):
		c.w.null()
	case err != nil:
		c.storeErr(err)
	case !found:
		c.w.null()
	case msg != "":
		c.w.err(msg)
	default:
		if changed {
			c.touched(key)
		}
		c.w.bulk(v)
	}
}

func cmdMGet(c *client, args [][]byte) {
	if c.l2Reads() {
		mgetThrough(c, args)
		return
	}
	c.w.array(len(args) - 1)
	for _, k := range args[1:] {
		if c.w.over {
			return // the client will be disconnected: reading more values is waste
		}
		if ok, err := c.bulkValue(k); err != nil || !ok {
			c.w.null()
		}
	}
}

// checkKeys replies with an error and returns false if a key can never be stored: a
// multi-key write checks all of them before it writes any.
func (c *client) checkKeys(args [][]byte, step int) bool {
	maxKey := c.srv.st.Config().MaxKeySize
	for i := 1; i < len(args); i += step {
		switch {
		case len(args[i]) == 0:
			c.w.err(errEmptyKey)
			return false
		case len(args[i]) > maxKey:
			c.w.err(errKeyTooBig)
			return false
		}
	}
	return true
}

func cmdMSet(c *client, args [][]byte) {
	if !c.msetLocally(args, c.replyOK) {
		return
	}
	err := c.db.Atomic(func(tx *store.Tx) error { return setPairs(tx, args) })
	c.touchedPairs(args)
	if err != nil {
		c.storeErr(err)
		return
	}
	c.w.ok()
}

func cmdMSetNX(c *client, args [][]byte) {
	if !c.msetLocally(args, c.replyInt) {
		return
	}
	set := false
	err := c.db.Atomic(func(tx *store.Tx) error {
		for i := 1; i < len(args); i += 2 {
			if tx.Exists(args[i]) {
				return nil
			}
		}
		set = true
		return setPairs(tx, args)
	})
	if set {
		c.touchedPairs(args)
	}
	if err != nil {
		c.storeErr(err)
		return
	}
	if set {
		c.w.int(1)
	} else {
		c.w.int(0)
	}
}

// msetLocally checks the key-value pairs of MSET or MSETNX and, with write-through,
// runs the command in L2, which answers with reply. It reports whether the command is
// left to run in L1.
func (c *client) msetLocally(args [][]byte, reply func(l2.Reply)) bool {
	if len(args)%2 == 0 {
		c.w.err(errArgs(c.cmd.name))
		return false
	}
	if !c.checkKeys(args, 2) {
		return false
	}
	return !(c.l2Writes() && c.l2Forward(args, l2.StoreIfOK, reply, values(args)...))
}

// setPairs stores the key-value pairs of args[1:].
func setPairs(tx *store.Tx, args [][]byte) error {
	for i := 1; i < len(args); i += 2 {
		if _, err := tx.Set(args[i], args[i+1], store.SetOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// touchedPairs marks the keys of args[1:]'s key-value pairs as written.
func (c *client) touchedPairs(args [][]byte) {
	for i := 1; i < len(args); i += 2 {
		c.touched(args[i])
	}
}

func cmdIncr(c *client, args [][]byte) {
	if !c.l2Writes() || !c.l2Forward(args, l2.StoreReply, c.replyInt) {
		incrBy(c, args[1], 1)
	}
}

func cmdDecr(c *client, args [][]byte) {
	if !c.l2Writes() || !c.l2Forward(args, l2.StoreReply, c.replyInt) {
		incrBy(c, args[1], -1)
	}
}

func cmdIncrBy(c *client, args [][]byte) { incrByArg(c, args, 1) }
func cmdDecrBy(c *client, args [][]byte) { incrByArg(c, args, -1) }

// incrByArg is INCRBY (sign 1) and DECRBY (sign -1), whose increment is args[2].
func incrByArg(c *client, args [][]byte, sign int64) {
	n, ok := c.localIntArg(args, l2.StoreReply)
	if !ok {
		return
	}
	if sign < 0 && n == math.MinInt64 {
		c.w.err("ERR decrement would overflow")
		return
	}
	incrBy(c, args[1], sign*n)
}

// localIntArg starts a write whose args[2] is an integer: with write-through it runs
// the command in L2 (effect says what L1 does after, and the reply is L2's integer);
// otherwise it parses the integer, answering "not an integer" when it is not one. It
// reports the integer and whether the command goes on in L1.
func (c *client) localIntArg(args [][]byte, effect l2.Effect) (int64, bool) {
	if c.l2Writes() && c.l2Forward(args, effect, c.replyInt) {
		return 0, false
	}
	n, ok := parseInt(args[2])
	if !ok {
		c.w.err(errNotInt)
	}
	return n, ok
}

// incrBy adds delta to the integer at key, keeping its expiry.
func incrBy(c *client, key []byte, delta int64) {
	var result int64
	c.modify(key, func(v []byte, found bool) ([]byte, string) {
		var cur int64
		if found {
			var ok bool
			if cur, ok = parseInt(v); !ok {
				return nil, errNotInt
			}
		}
		if delta < 0 && cur < math.MinInt64-delta || delta > 0 && cur > math.MaxInt64-delta {
			return nil, errOverflow
		}
		result = cur + delta
		return strconv.AppendInt(v[:0], result, 10), ""
	}, func() { c.w.int(result) })
}

func cmdIncrByFloat(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.StoreReply, c.replyBulk) {
		return
	}
	var out []byte
	c.modify(args[1], func(v []byte, found bool) ([]byte, string) {
		cur := new(big.Float)
		if found {
			var ok bool
			if cur, ok = parseLongDouble(v); !ok {
				return nil, errNotFloat
			}
		}
		incr, ok := parseLongDouble(args[2])
		if !ok {
			return nil, errNotFloat
		}
		r, ok := addLongDouble(cur, incr)
		if !ok {
			return nil, "ERR increment would produce NaN or Infinity"
		}
		out = formatLongDouble(r)
		return out, ""
	}, func() { c.w.bulk(out) })
}

// wrote answers a write to one key: 1 if it changed the key (which it marks written,
// for WATCH), 0 if not, or the store's error.
func (c *client) wrote(key []byte, changed bool, err error) {
	switch {
	case err != nil:
		c.storeErr(err)
	case changed:
		c.touched(key)
		c.w.int(1)
	default:
		c.w.int(0)
	}
}

// modify runs a read-modify-write of key in one store transaction, keeping the key's
// TTL: fn gets the current value (found false when there is none) and returns the new
// one, or a Redis error to reply with instead, storing nothing. reply answers a
// success.
func (c *client) modify(key []byte, fn func(v []byte, found bool) ([]byte, string), reply func()) {
	var msg string
	err := c.db.Update(func(tx *store.Tx) error {
		v, found, err := tx.Get(key, c.scratch[:0])
		if err != nil {
			return err
		}
		var nv []byte
		if nv, msg = fn(v, found); msg != "" {
			return nil
		}
		_, err = tx.Set(key, nv, store.SetOptions{KeepTTL: true})
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case msg != "":
		c.w.err(msg)
	default:
		c.touched(key)
		reply()
	}
}

func (c *client) maxValue() int { return c.srv.st.Config().MaxValueSize }

func cmdAppend(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyInt) {
		return
	}
	var n int
	c.modify(args[1], func(v []byte, _ bool) ([]byte, string) {
		if len(v)+len(args[2]) > c.maxValue() {
			return nil, errTooBig
		}
		v = append(v, args[2]...)
		n = len(v)
		return v, ""
	}, func() { c.w.int(int64(n)) })
}

func cmdStrlen(c *client, args [][]byte) {
	v, ok, err := c.value(args[1])
	if err != nil {
		c.storeErr(err)
		return
	}
	if !ok && c.l2Reads() && c.readThrough(args[1:2], func(vs []l2.Value) { c.w.int(int64(len(vs[0].Data))) }) {
		return
	}
	c.w.int(int64(len(v)))
}

func cmdGetRange(c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.w.err(errNotInt)
		return
	}
	v, ok, err := c.value(args[1])
	if err != nil {
		c.storeErr(err)
		return
	}
	if !ok && c.l2Reads() && c.readThrough(args[1:2], func(vs []l2.Value) { writeRange(c, vs[0].Data, start, end) }) {
		return
	}
	writeRange(c, v, start, end)
}

// writeRange replies with GETRANGE's substring of v.
func writeRange(c *client, v []byte, start, end int64) {
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		c.w.bulk(nil)
		return
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		c.w.bulk(nil)
		return
	}
	c.w.bulk(v[start : end+1])
}

func cmdSetRange(c *client, args [][]byte) {
	off, ok := parseInt(args[2])
	if !ok {
		c.w.err(errNotInt)
		return
	}
	if off < 0 {
		c.w.err("ERR offset is out of range")
		return
	}
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyInt) {
		return
	}
	val := args[3]
	if len(val) == 0 {
		// Nothing to write: Redis answers with the length as it is, 0 for a key the
		// store cannot hold.
		v, _, err := c.db.Get(args[1], c.scratch[:0])
		if err != nil && !keyErr(err) {
			c.storeErr(err)
			return
		}
		c.w.int(int64(len(v)))
		return
	}
	var n int
	c.modify(args[1], func(v []byte, _ bool) ([]byte, string) {
		if off > int64(c.maxValue()-len(val)) {
			return nil, errTooBig
		}
		if end := int(off) + len(val); end > len(v) {
			v = append(v, make([]byte, end-len(v))...)
		}
		copy(v[off:], val)
		n = len(v)
		return v, ""
	}, func() { c.w.int(int64(n)) })
}

// bulkOrNull replies with a read-through's value.
func (c *client) bulkOrNull(v l2.Value) {
	if v.Found {
		c.w.bulk(v.Data)
	} else {
		c.w.null()
	}
}

// values lists the values of MSET's key-value pairs.
func values(args [][]byte) [][]byte {
	var vs [][]byte
	for i := 2; i < len(args); i += 2 {
		vs = append(vs, args[i])
	}
	return vs
}

// mgetThrough is MGET with read-through: the keys L1 lacks are read from L2 in one
// round trip, and the reply merges both.
func mgetThrough(c *client, args [][]byte) {
	keys := args[1:]
	vals := make([][]byte, len(keys))
	found := make([]bool, len(keys))
	var missing [][]byte
	var at []int
	for i, k := range keys {
		v, ok, err := c.value(k)
		if err == nil && ok {
			vals[i], found[i] = append([]byte(nil), v...), true
			continue
		}
		missing = append(missing, k)
		at = append(at, i)
	}
	reply := func() {
		c.w.array(len(keys))
		for i := range keys {
			if found[i] {
				c.w.bulk(vals[i])
			} else {
				c.w.null()
			}
		}
	}
	if len(missing) > 0 && c.readThrough(missing, func(vs []l2.Value) {
		for j, v := range vs {
			vals[at[j]], found[at[j]] = v.Data, v.Found
		}
		reply()
	}) {
		return
	}
	reply()
}
