package resp

import (
	"bytes"
	"cmp"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// Hashes live in the store as one entry each (store/hash.go); every write reads the
// hash, changes it and stores it whole, inside one store transaction.
//
// Hash flags kept with each hash (store.Hash.Flags) say what OBJECT ENCODING answers:
// Redis keeps a small hash as a listpack and converts it, for good, to a hash table
// once it holds more than 128 fields or a field or value longer than 64 bytes; Redis
// 7.4 keeps a small hash whose fields have had an expiry as a listpackex.
const (
	hashLarge    = 1 << 0
	hashVolatile = 1 << 1

	hashMaxListpackEntries = 128 // Redis's hash-max-listpack-entries
	hashMaxListpackValue   = 64  // Redis's hash-max-listpack-value
)

// hashFlags are hs's flags after a write.
func hashFlags(hs *store.Hash) uint8 {
	fl := hs.Flags
	if len(hs.Fields) > hashMaxListpackEntries {
		fl |= hashLarge
	}
	for _, f := range hs.Fields {
		if len(f.Name) > hashMaxListpackValue || len(f.Value) > hashMaxListpackValue {
			fl |= hashLarge
		}
		if f.ExpireAt != 0 {
			fl |= hashVolatile
		}
	}
	return fl
}

// fieldAt returns the index of the field name in hs, or -1.
func fieldAt(hs *store.Hash, name []byte) int {
	return slices.IndexFunc(hs.Fields, func(f store.HashField) bool { return bytes.Equal(f.Name, name) })
}

// readHash reads the hash at args[1] for a command that only reads it, and calls fn.
// With an L2, a key that L1 lacks is asked of L2, which answers the command (reply
// writes its answer); L1 keeps no copy of hashes read from L2.
func (c *client) readHash(args [][]byte, reply func(l2.Reply), fn func(hs *store.Hash, found bool)) {
	var hs store.Hash
	var found bool
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		hs, found, err = tx.Hash(args[1])
		if keyErr(err) {
			err = nil
		}
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case !found && c.l2Ask(args, reply):
	default:
		fn(&hs, found)
	}
}

// l2Ask runs a read-only command in L2 and replies with what L2 answered, leaving L1
// alone. It reports false, doing nothing, when there is no L2 to ask.
func (c *client) l2Ask(args [][]byte, reply func(l2.Reply)) bool {
	if !c.l2Reads() {
		return false
	}
	c.l2Run([]l2.Write{c.l2Write(args, l2.None)}, func(rs []l2.Reply) { reply(rs[0]) })
	return true
}

// writeHash runs fn on the hash at args[1] (empty when the key is missing) in one store
// transaction and stores what fn leaves in hs: no fields deletes the key. fn returns
// false to store nothing, and an error reply in msg. With write-through the command
// runs in L2 instead, which answers it, and L1 drops its copy of the key; reply writes
// L2's answer. It returns true when the caller should reply from what fn computed.
func (c *client) writeHash(args [][]byte, reply func(l2.Reply), fn func(hs *store.Hash, now int64) (write bool, msg string)) bool {
	if c.l2Writes() && c.l2Forward(args, l2.Drop, reply) {
		return false
	}
	var msg string
	var wrote bool
	err := c.db.Update(func(tx *store.Tx) error {
		hs, _, err := tx.Hash(args[1])
		if err != nil {
			return err
		}
		var write bool
		if write, msg = fn(&hs, tx.Now().UnixMilli()); !write || msg != "" {
			return nil
		}
		hs.Flags = hashFlags(&hs)
		wrote = true
		return tx.SetHash(args[1], hs)
	})
	switch {
	case err != nil:
		c.storeErr(err)
		return false
	case msg != "":
		c.w.err(msg)
		return false
	}
	if wrote {
		c.touched(args[1])
	}
	return true
}

func cmdHSet(c *client, args [][]byte) {
	if len(args)%2 != 0 {
		c.w.err(errArgs(c.cmd.name))
		return
	}
	var added int64
	ok := c.writeHash(args, c.replyAsCmd(), func(hs *store.Hash, _ int64) (bool, string) {
		for i := 2; i < len(args); i += 2 {
			if j := fieldAt(hs, args[i]); j >= 0 {
				// A new value drops the field's expiry, as Redis 7.4's HSET does.
				hs.Fields[j].Value, hs.Fields[j].ExpireAt = args[i+1], 0
			} else {
				hs.Fields = append(hs.Fields, store.HashField{Name: args[i], Value: args[i+1]})
				added++
			}
		}
		return true, ""
	})
	switch {
	case !ok:
	case c.cmd.name == "hmset":
		c.w.ok()
	default:
		c.w.int(added)
	}
}

func cmdHSetNX(c *client, args [][]byte) {
	var added int64
	if c.writeHash(args, c.replyInt, func(hs *store.Hash, _ int64) (bool, string) {
		if fieldAt(hs, args[2]) >= 0 {
			return false, ""
		}
		hs.Fields = append(hs.Fields, store.HashField{Name: args[2], Value: args[3]})
		added = 1
		return true, ""
	}) {
		c.w.int(added)
	}
}

func cmdHGet(c *client, args [][]byte) {
	v, ok, err := c.db.HGet(args[1], args[2], c.scratch[:0])
	if cap(v) <= keepBuf {
		c.scratch = v[:0]
	}
	switch {
	case err != nil && keyErr(err):
		c.w.null()
	case err != nil:
		c.storeErr(err)
	case ok:
		c.w.bulk(v)
	case c.l2Reads() && c.readHashThrough(args, c.replyBulk):
	default:
		c.w.null()
	}
}

// readHashThrough asks L2 a read command about a hash key that L1 holds no value for.
// A key L1 holds as a hash without the field is a miss: L1 has the whole hash.
func (c *client) readHashThrough(args [][]byte, reply func(l2.Reply)) bool {
	exists := false
	_ = c.db.Update(func(tx *store.Tx) error { exists = tx.Exists(args[1]); return nil })
	return !exists && c.l2Ask(args, reply)
}

func cmdHMGet(c *client, args [][]byte) {
	c.readHash(args, c.replyAsCmd(), func(hs *store.Hash, _ bool) {
		c.w.array(len(args) - 2)
		for _, name := range args[2:] {
			if j := fieldAt(hs, name); j >= 0 {
				c.w.bulk(hs.Fields[j].Value)
			} else {
				c.w.null()
			}
		}
	})
}

func cmdHGetAll(c *client, args [][]byte) {
	c.readHash(args, c.replyMapOrArray, func(hs *store.Hash, _ bool) {
		c.w.mapLen(len(hs.Fields))
		for _, f := range hs.Fields {
			c.w.bulk(f.Name)
			c.w.bulk(f.Value)
		}
	})
}

func cmdHKeys(c *client, args [][]byte) { hashList(c, args, true) }
func cmdHVals(c *client, args [][]byte) { hashList(c, args, false) }

func hashList(c *client, args [][]byte, names bool) {
	c.readHash(args, c.replyAsCmd(), func(hs *store.Hash, _ bool) {
		c.w.array(len(hs.Fields))
		for _, f := range hs.Fields {
			if names {
				c.w.bulk(f.Name)
			} else {
				c.w.bulk(f.Value)
			}
		}
	})
}

func cmdHLen(c *client, args [][]byte) {
	c.readHash(args, c.replyInt, func(hs *store.Hash, _ bool) { c.w.int(int64(len(hs.Fields))) })
}

func cmdHExists(c *client, args [][]byte) {
	c.readHash(args, c.replyInt, func(hs *store.Hash, _ bool) {
		if fieldAt(hs, args[2]) >= 0 {
			c.w.int(1)
		} else {
			c.w.int(0)
		}
	})
}

func cmdHStrlen(c *client, args [][]byte) {
	c.readHash(args, c.replyInt, func(hs *store.Hash, _ bool) {
		if j := fieldAt(hs, args[2]); j >= 0 {
			c.w.int(int64(len(hs.Fields[j].Value)))
		} else {
			c.w.int(0)
		}
	})
}

func cmdHDel(c *client, args [][]byte) {
	var n int64
	if c.writeHash(args, c.replyInt, func(hs *store.Hash, _ int64) (bool, string) {
		for _, name := range args[2:] {
			if j := fieldAt(hs, name); j >= 0 {
				hs.Fields = slices.Delete(hs.Fields, j, j+1)
				n++
			}
		}
		return n > 0, ""
	}) {
		c.w.int(n)
	}
}

func cmdHIncrBy(c *client, args [][]byte) {
	incr, ok := parseInt(args[3])
	if !ok {
		c.w.err(errNotInt)
		return
	}
	var result int64
	if c.writeHash(args, c.replyInt, func(hs *store.Hash, _ int64) (bool, string) {
		j := fieldAt(hs, args[2])
		var cur int64
		if j >= 0 {
			if cur, ok = parseInt(hs.Fields[j].Value); !ok {
				return false, "ERR hash value is not an integer"
			}
		}
		if incr < 0 && cur < 0 && incr < math.MinInt64-cur || incr > 0 && cur > 0 && incr > math.MaxInt64-cur {
			return false, errOverflow
		}
		result = cur + incr
		setField(hs, j, args[2], strconv.AppendInt(nil, result, 10))
		return true, ""
	}) {
		c.w.int(result)
	}
}

// setField sets field j of hs (appending name when j < 0) to v, keeping its expiry.
func setField(hs *store.Hash, j int, name, v []byte) {
	if j >= 0 {
		hs.Fields[j].Value = v
	} else {
		hs.Fields = append(hs.Fields, store.HashField{Name: name, Value: v})
	}
}

func cmdHIncrByFloat(c *client, args [][]byte) {
	incr, ok := parseLongDouble(args[3])
	if !ok {
		c.w.err(errNotFloat)
		return
	}
	if incr.IsInf() {
		c.w.err("ERR value is NaN or Infinity")
		return
	}
	var out []byte
	if c.writeHash(args, c.replyBulk, func(hs *store.Hash, _ int64) (bool, string) {
		j := fieldAt(hs, args[2])
		cur, _ := parseLongDouble([]byte("0"))
		if j >= 0 {
			if cur, ok = parseLongDouble(hs.Fields[j].Value); !ok {
				return false, "ERR hash value is not a float"
			}
		}
		r, ok := addLongDouble(cur, incr)
		if !ok {
			return false, "ERR increment would produce NaN or Infinity"
		}
		out = formatLongDouble(r)
		setField(hs, j, args[2], out)
		return true, ""
	}) {
		c.w.bulk(out)
	}
}

func cmdHRandField(c *client, args [][]byte) {
	if len(args) == 2 {
		c.readHash(args, c.replyBulk, func(hs *store.Hash, found bool) {
			if !found {
				c.w.null()
				return
			}
			c.w.bulk(hs.Fields[rand.IntN(len(hs.Fields))].Name)
		})
		return
	}
	n, ok := parseInt(args[2])
	switch {
	case !ok:
		c.w.err(errNotInt)
		return
	case n == math.MinInt64:
		c.w.err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		return
	case len(args) > 4 || len(args) == 4 && !eqFold(args[3], "withvalues"):
		c.w.err(errSyntax)
		return
	}
	withValues := len(args) == 4
	if withValues && (n < -math.MaxInt64/2 || n > math.MaxInt64/2) {
		c.w.err("ERR value is out of range")
		return
	}
	c.readHash(args, c.replyAsCmd(), func(hs *store.Hash, found bool) {
		size := len(hs.Fields)
		if !found || n == 0 {
			c.w.array(0)
			return
		}
		// pick(i) is the field of the i-th element: random draws with repetition for a
		// negative count (or 1), the whole hash when the count covers it, otherwise
		// distinct random fields. Draws are made as the reply is written, so that a
		// huge count costs no more than the output limit lets through.
		var count uint64
		var pick func(i uint64) int
		switch {
		case n < 0 || n == 1:
			count = 1
			if n < 0 {
				count = uint64(-n)
			}
			pick = func(uint64) int { return rand.IntN(size) }
		case n >= int64(size):
			count = uint64(size)
			pick = func(i uint64) int { return int(i) }
		default:
			perm := rand.Perm(size)
			count = uint64(n)
			pick = func(i uint64) int { return perm[i] }
		}
		if withValues && c.w.proto == 2 {
			c.w.header('*', int64(2*count))
		} else {
			c.w.header('*', int64(count))
		}
		for i := range count {
			if c.w.over {
				return // the client will be disconnected (output limit)
			}
			f := &hs.Fields[pick(i)]
			if withValues && c.w.proto == 3 {
				c.w.array(2)
			}
			c.w.bulk(f.Name)
			if withValues {
				c.w.bulk(f.Value)
			}
		}
	})
}

var hscanSeed = maphash.MakeSeed()

func cmdHScan(c *client, args [][]byte) {
	cursor, ok := parseUint(args[2])
	if !ok {
		c.w.err("ERR invalid cursor")
		return
	}
	c.readHash(args, c.replyAsCmd(), func(hs *store.Hash, found bool) {
		if !found {
			c.w.array(2)
			c.w.bulkString("0")
			c.w.array(0)
			return
		}
		o, ok := parseScanOptions(c, args[3:], "novalues")
		if !ok {
			return
		}
		count, pat, noValues := o.count, o.match, o.extra != nil
		fs := hs.Fields
		var next uint64
		if hs.Flags&hashLarge != 0 {
			// A large hash is walked in order of its fields' hashes, the cursor being
			// the next hash to return: a field present throughout the walk is returned
			// once, whatever else changes.
			hashOf := func(f store.HashField) uint64 { return maphash.Bytes(hscanSeed, f.Name) }
			fs = slices.Clone(fs)
			slices.SortFunc(fs, func(a, b store.HashField) int { return cmp.Compare(hashOf(a), hashOf(b)) })
			start, _ := slices.BinarySearchFunc(fs, cursor, func(f store.HashField, t uint64) int { return cmp.Compare(hashOf(f), t) })
			end := start + int(min(count, int64(len(fs))))
			for end < len(fs) && end > start && hashOf(fs[end]) == hashOf(fs[end-1]) {
				end++
			}
			end = min(end, len(fs))
			if end < len(fs) {
				next = hashOf(fs[end])
			}
			fs = fs[start:end]
		}
		var out [][]byte
		for _, f := range fs {
			if pat == nil || globMatch(pat, f.Name) {
				out = append(out, f.Name)
				if !noValues {
					out = append(out, f.Value)
				}
			}
		}
		c.w.array(2)
		c.w.bulk(strconv.AppendUint(nil, next, 10))
		c.w.array(len(out))
		for _, b := range out {
			c.w.bulk(b)
		}
	})
}

// replyAsCmd writes any L2 reply as the running command's reply.
func (c *client) replyAsCmd() func(l2.Reply) {
	cmd := c.cmd
	return func(r l2.Reply) { c.writeReply(cmd, r) }
}

// replyMapOrArray writes an L2 reply that is a map (HGETALL's) as a map in RESP3.
func (c *client) replyMapOrArray(r l2.Reply) {
	if r.Kind != l2.ReplyArray || len(r.Array)%2 != 0 {
		c.writeReply(c.cmd, r)
		return
	}
	c.w.mapLen(len(r.Array) / 2)
	for _, e := range r.Array {
		c.writeReply(nil, e)
	}
}
