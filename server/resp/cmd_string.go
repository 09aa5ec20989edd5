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
	room := max(c.bulkRoom, 4) // "$0\r\n" at least
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
	c.bulkRoom = len(h)
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
		case eqFold(opt, "ex") && !o.keepTTL && !o.persist && (o.unit == noExpire || o.unit == unitEX) && hasNext:
			o.unit, o.expire = unitEX, args[j+1]
			j++
		case eqFold(opt, "px") && !o.keepTTL && !o.persist && (o.unit == noExpire || o.unit == unitPX) && hasNext:
			o.unit, o.expire = unitPX, args[j+1]
			j++
		case eqFold(opt, "exat") && !o.keepTTL && !o.persist && (o.unit == noExpire || o.unit == unitEXAT) && hasNext:
			o.unit, o.expire = unitEXAT, args[j+1]
			j++
		case eqFold(opt, "pxat") && !o.keepTTL && !o.persist && (o.unit == noExpire || o.unit == unitPXAT) && hasNext:
			o.unit, o.expire = unitPXAT, args[j+1]
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
	switch unit {
	case unitEX, unitPX:
		if ms > math.MaxInt64/int64(time.Millisecond) {
			return opt, errExpire(c.cmd.name)
		}
		opt.TTL = time.Duration(ms) * time.Millisecond
	default:
		opt.ExpireAt = time.UnixMilli(ms)
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
	if err != nil {
		c.storeErr(err)
		return
	}
	if stored {
		c.touched(args[1])
		c.w.int(1)
	} else {
		c.w.int(0)
	}
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
	var v []byte
	var found bool
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		v, found, err = tx.Get(args[1], c.scratch[:0])
		if err != nil || !found {
			return err
		}
		_, err = tx.Delete(args[1])
		return err
	})
	switch {
	case err != nil && keyErr(err):
		c.w.null()
	case err != nil:
		c.storeErr(err)
	case !found:
		c.w.null()
	default:
		c.touched(args[1])
		c.w.bulk(v)
	}
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
	var v []byte
	var found, changed bool
	var msg string
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		v, found, err = tx.Get(args[1], c.scratch[:0])
		if err != nil || !found {
			return err
		}
		var opt store.SetOptions
		if opt, msg = c.expiry(o.unit, o.expire); msg != "" {
			return nil
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
			c.touched(args[1])
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
	if len(args)%2 == 0 {
		c.w.err(errArgs(c.cmd.name))
		return
	}
	if !c.checkKeys(args, 2) {
		return
	}
	if c.l2Writes() && c.l2Forward(args, l2.StoreIfOK, c.replyOK, values(args)...) {
		return
	}
	err := c.db.Atomic(func(tx *store.Tx) error {
		for i := 1; i < len(args); i += 2 {
			if _, err := tx.Set(args[i], args[i+1], store.SetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	for i := 1; i < len(args); i += 2 {
		c.touched(args[i])
	}
	if err != nil {
		c.storeErr(err)
		return
	}
	c.w.ok()
}

func cmdMSetNX(c *client, args [][]byte) {
	if len(args)%2 == 0 {
		c.w.err(errArgs(c.cmd.name))
		return
	}
	if !c.checkKeys(args, 2) {
		return
	}
	if c.l2Writes() && c.l2Forward(args, l2.StoreIfOK, c.replyInt, values(args)...) {
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
		for i := 1; i < len(args); i += 2 {
			if _, err := tx.Set(args[i], args[i+1], store.SetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	if set {
		for i := 1; i < len(args); i += 2 {
			c.touched(args[i])
		}
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

func cmdIncrBy(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.StoreReply, c.replyInt) {
		return
	}
	n, ok := parseInt(args[2])
	if !ok {
		c.w.err(errNotInt)
		return
	}
	incrBy(c, args[1], n)
}

func cmdDecrBy(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.StoreReply, c.replyInt) {
		return
	}
	n, ok := parseInt(args[2])
	if !ok {
		c.w.err(errNotInt)
		return
	}
	if n == math.MinInt64 {
		c.w.err("ERR decrement would overflow")
		return
	}
	incrBy(c, args[1], -n)
}

// incrBy adds delta to the integer at key, keeping its expiry.
func incrBy(c *client, key []byte, delta int64) {
	var result int64
	var msg string
	err := c.db.Update(func(tx *store.Tx) error {
		v, found, err := tx.Get(key, c.scratch[:0])
		if err != nil {
			return err
		}
		var cur int64
		if found {
			var ok bool
			if cur, ok = parseInt(v); !ok {
				msg = errNotInt
				return nil
			}
		}
		if delta < 0 && cur < math.MinInt64-delta || delta > 0 && cur > math.MaxInt64-delta {
			msg = errOverflow
			return nil
		}
		result = cur + delta
		var num [20]byte
		_, err = tx.Set(key, strconv.AppendInt(num[:0], result, 10), store.SetOptions{KeepTTL: true})
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case msg != "":
		c.w.err(msg)
	default:
		c.touched(key)
		c.w.int(result)
	}
}

func cmdIncrByFloat(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.StoreReply, c.replyBulk) {
		return
	}
	var out []byte
	var msg string
	key := args[1]
	err := c.db.Update(func(tx *store.Tx) error {
		v, found, err := tx.Get(key, c.scratch[:0])
		if err != nil {
			return err
		}
		cur := new(big.Float)
		if found {
			var ok bool
			if cur, ok = parseLongDouble(v); !ok {
				msg = errNotFloat
				return nil
			}
		}
		incr, ok := parseLongDouble(args[2])
		if !ok {
			msg = errNotFloat
			return nil
		}
		r, ok := addLongDouble(cur, incr)
		if !ok {
			msg = "ERR increment would produce NaN or Infinity"
			return nil
		}
		out = formatLongDouble(r)
		_, err = tx.Set(key, out, store.SetOptions{KeepTTL: true})
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case msg != "":
		c.w.err(msg)
	default:
		c.touched(key)
		c.w.bulk(out)
	}
}

func (c *client) maxValue() int { return c.srv.st.Config().MaxValueSize }

func cmdAppend(c *client, args [][]byte) {
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyInt) {
		return
	}
	var n int
	var msg string
	err := c.db.Update(func(tx *store.Tx) error {
		v, _, err := tx.Get(args[1], c.scratch[:0])
		if err != nil {
			return err
		}
		if len(v)+len(args[2]) > c.maxValue() {
			msg = errTooBig
			return nil
		}
		v = append(v, args[2]...)
		n = len(v)
		_, err = tx.Set(args[1], v, store.SetOptions{KeepTTL: true})
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case msg != "":
		c.w.err(msg)
	default:
		c.touched(args[1])
		c.w.int(int64(n))
	}
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
	var n int
	var msg string
	err := c.db.Update(func(tx *store.Tx) error {
		v, found, err := tx.Get(args[1], c.scratch[:0])
		if err != nil && !(keyErr(err) && len(val) == 0) {
			return err
		}
		if len(val) == 0 {
			n = len(v)
			return nil
		}
		if off > int64(c.maxValue()-len(val)) {
			msg = errTooBig
			return nil
		}
		end := int(off) + len(val)
		if end > len(v) {
			v = append(v, make([]byte, end-len(v))...)
		}
		copy(v[off:], val)
		n = len(v)
		_, err = tx.Set(args[1], v, store.SetOptions{KeepTTL: found})
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case msg != "":
		c.w.err(msg)
	default:
		if len(val) > 0 {
			c.touched(args[1])
		}
		c.w.int(int64(n))
	}
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
