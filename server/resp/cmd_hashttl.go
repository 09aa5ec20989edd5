package resp

import (
	"github.com/cachee/cachee/store"
)

// Per-field expiry, as Redis 7.4 has it: HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT set
// a field's deadline, HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME read it, HPERSIST drops
// it. Every one answers with an array holding one integer per field named.

// Per-field answers.
const (
	fieldMissing  = -2 // no such field (or no such key)
	fieldNoExpiry = -1 // HTTL, HPERSIST: the field has no expiry
	fieldNotMet   = 0  // HEXPIRE: the NX, XX, GT or LT condition was not met
	fieldSet      = 1  // HEXPIRE: set; HPERSIST: removed
	fieldDeleted  = 2  // HEXPIRE: the deadline had passed, so the field was deleted
)

// maxFieldExpiry is the last millisecond a field expiry may name: the store's limit,
// which is also Redis 7.4's (EB_EXPIRE_TIME_MAX, 2^48 - 1).
const maxFieldExpiry = store.MaxExpireAt

// fieldArgs parses "FIELDS numfields field ..." starting at args[at] and returns the
// fields, or the error reply.
func fieldArgs(args [][]byte, at int) ([][]byte, string) {
	if at >= len(args) || !eqFold(args[at], "fields") {
		return nil, "ERR Mandatory argument FIELDS is missing or not at the right position"
	}
	if at+1 >= len(args) {
		return nil, errArgsFields
	}
	n, ok := parseInt(args[at+1])
	if !ok || n < 1 {
		return nil, "ERR Number of fields must be a positive integer"
	}
	if n != int64(len(args)-at-2) {
		return nil, errArgsFields
	}
	return args[at+2:], ""
}

const errArgsFields = "ERR The `numfields` parameter must match the number of arguments"

// fieldReplies writes one integer per field.
func (c *client) fieldReplies(rs []int64) {
	c.w.array(len(rs))
	for _, r := range rs {
		c.w.int(r)
	}
}

func cmdHExpire(c *client, args [][]byte)    { hexpire(c, args, true, true) }
func cmdHPExpire(c *client, args [][]byte)   { hexpire(c, args, true, false) }
func cmdHExpireAt(c *client, args [][]byte)  { hexpire(c, args, false, true) }
func cmdHPExpireAt(c *client, args [][]byte) { hexpire(c, args, false, false) }

func hexpire(c *client, args [][]byte, relative, seconds bool) {
	var rs []int64
	if c.writeHash(args, c.replyAsCmd(), func(hs *store.Hash, now int64) (bool, string) {
		when, ok := parseInt(args[2])
		switch {
		case !ok:
			return false, errNotInt
		case when < 0:
			return false, "ERR invalid expire time, must be >= 0"
		case seconds && when > maxFieldExpiry/1000:
			return false, errExpire(c.cmd.name)
		}
		if seconds {
			when *= 1000
		}
		base := int64(0)
		if relative {
			base = now
		}
		if when > maxFieldExpiry-base {
			return false, errExpire(c.cmd.name)
		}
		when += base
		at := 3
		var nx, xx, gt, lt bool
		switch {
		case eqFold(args[3], "nx"):
			nx = true
		case eqFold(args[3], "xx"):
			xx = true
		case eqFold(args[3], "gt"):
			gt = true
		case eqFold(args[3], "lt"):
			lt = true
		}
		if nx || xx || gt || lt {
			at++
		}
		names, msg := fieldArgs(args, at)
		if msg != "" {
			return false, msg
		}
		rs = make([]int64, len(names))
		changed := false
		for i, name := range names {
			j := fieldAt(hs, name)
			if j < 0 {
				rs[i] = fieldMissing
				continue
			}
			// A field without an expiry counts as expiring never: GT is never met
			// by it, LT always.
			cur := hs.Fields[j].ExpireAt
			switch {
			case nx && cur != 0, xx && cur == 0, gt && (cur == 0 || when <= cur), lt && cur != 0 && when >= cur:
				rs[i] = fieldNotMet
				continue
			}
			changed = true
			if when <= now {
				hs.Fields = append(hs.Fields[:j], hs.Fields[j+1:]...)
				rs[i] = fieldDeleted
			} else {
				hs.Fields[j].ExpireAt = when
				rs[i] = fieldSet
			}
		}
		return changed, ""
	}) {
		c.fieldReplies(rs)
	}
}

func cmdHTTL(c *client, args [][]byte)         { httl(c, args, true, true) }
func cmdHPTTL(c *client, args [][]byte)        { httl(c, args, true, false) }
func cmdHExpireTime(c *client, args [][]byte)  { httl(c, args, false, true) }
func cmdHPExpireTime(c *client, args [][]byte) { httl(c, args, false, false) }

func httl(c *client, args [][]byte, relative, seconds bool) {
	names, msg := fieldArgs(args, 2)
	var rs []int64
	var now int64
	err := c.db.Update(func(tx *store.Tx) error {
		now = tx.Now().UnixMilli()
		hs, _, err := tx.Hash(args[1])
		if err != nil && !keyErr(err) || msg != "" {
			return err
		}
		rs = make([]int64, len(names))
		for i, name := range names {
			j := fieldAt(&hs, name)
			switch {
			case j < 0:
				rs[i] = fieldMissing
			case hs.Fields[j].ExpireAt == 0:
				rs[i] = fieldNoExpiry
			default:
				exp := hs.Fields[j].ExpireAt
				if relative {
					exp -= now
				}
				if seconds {
					exp = (exp + 999) / 1000
				}
				rs[i] = exp
			}
		}
		return nil
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case msg != "":
		c.w.err(msg)
	default:
		c.fieldReplies(rs)
	}
}

func cmdHPersist(c *client, args [][]byte) {
	var rs []int64
	if c.writeHash(args, c.replyAsCmd(), func(hs *store.Hash, _ int64) (bool, string) {
		names, msg := fieldArgs(args, 2)
		if msg != "" {
			return false, msg
		}
		rs = make([]int64, len(names))
		changed := false
		for i, name := range names {
			switch j := fieldAt(hs, name); {
			case j < 0:
				rs[i] = fieldMissing
			case hs.Fields[j].ExpireAt == 0:
				rs[i] = fieldNoExpiry
			default:
				hs.Fields[j].ExpireAt = 0
				rs[i] = fieldSet
				changed = true
			}
		}
		return changed, ""
	}) {
		c.fieldReplies(rs)
	}
}
