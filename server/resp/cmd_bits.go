package resp

import (
	"math/bits"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// SETBIT, GETBIT, BITCOUNT and BITPOS address a string's bits from the most
// significant bit of its first byte, as Redis does.

const errBitOffset = "ERR bit offset is not an integer or out of range"

// bitOffset parses a bit offset: a non-negative integer whose byte lies within the
// largest value the store holds (Redis's bound is proto-max-bulk-len).
func (c *client) bitOffset(arg []byte) (int64, bool) {
	off, ok := parseInt(arg)
	if !ok || off < 0 || off>>3 >= int64(c.maxValue()) {
		c.w.err(errBitOffset)
		return 0, false
	}
	return off, true
}

func cmdSetBit(c *client, args [][]byte) {
	off, ok := c.bitOffset(args[2])
	if !ok {
		return
	}
	on, ok := parseInt(args[3])
	if !ok || on&^1 != 0 {
		c.w.err("ERR bit is not an integer or out of range")
		return
	}
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyInt) {
		return
	}
	var old int64
	err := c.db.Update(func(tx *store.Tx) error {
		v, found, err := tx.Get(args[1], c.scratch[:0])
		if err != nil {
			return err
		}
		i := int(off >> 3)
		if i >= len(v) {
			v = append(v, make([]byte, i+1-len(v))...)
		}
		mask := byte(0x80) >> (off & 7)
		if v[i]&mask != 0 {
			old = 1
		}
		v[i] = v[i]&^mask | byte(on)<<(7-off&7)
		_, err = tx.Set(args[1], v, store.SetOptions{KeepTTL: found})
		return err
	})
	if err != nil {
		c.storeErr(err)
		return
	}
	c.touched(args[1])
	c.w.int(old)
}

// stringArg reads the string at args[1] for a read command and calls fn with it (nil
// when missing). A key that L1 lacks is read through from L2 when there is one.
func (c *client) stringArg(args [][]byte, fn func(v []byte, found bool)) {
	v, ok, err := c.value(args[1])
	switch {
	case err != nil:
		c.storeErr(err)
	case !ok && c.l2Reads() && c.readThrough(args[1:2], func(vs []l2.Value) { fn(vs[0].Data, vs[0].Found) }):
	default:
		fn(v, ok)
	}
}

func cmdGetBit(c *client, args [][]byte) {
	off, ok := c.bitOffset(args[2])
	if !ok {
		return
	}
	c.stringArg(args, func(v []byte, _ bool) {
		if i := off >> 3; i < int64(len(v)) && v[i]&(0x80>>(off&7)) != 0 {
			c.w.int(1)
		} else {
			c.w.int(0)
		}
	})
}

// bitRange turns BITCOUNT's and BITPOS's start and end (bytes, or bits with BIT) into
// a range of bits of a string of n bytes, clamped as Redis clamps them. empty is true
// when the range holds no bit.
func bitRange(start, end int64, isBit bool, n int64) (first, last int64, empty bool) {
	total := n
	if isBit {
		total = n * 8
	}
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, total-1)
	if start > end {
		return 0, 0, true
	}
	if isBit {
		return start, end, false
	}
	return start * 8, end*8 + 7, false
}

// bitUnit parses BYTE or BIT.
func bitUnit(arg []byte) (isBit, ok bool) {
	switch {
	case eqFold(arg, "bit"):
		return true, true
	case eqFold(arg, "byte"):
		return false, true
	}
	return false, false
}

func cmdBitCount(c *client, args [][]byte) {
	c.stringArg(args, func(v []byte, found bool) {
		if !found {
			c.w.int(0)
			return
		}
		first, last := int64(0), int64(len(v))*8-1
		switch len(args) {
		case 2:
		case 4, 5:
			start, ok1 := parseInt(args[2])
			end, ok2 := parseInt(args[3])
			if !ok1 || !ok2 {
				c.w.err(errNotInt)
				return
			}
			if start < 0 && end < 0 && start > end {
				c.w.int(0)
				return
			}
			isBit := false
			if len(args) == 5 {
				var ok bool
				if isBit, ok = bitUnit(args[4]); !ok {
					c.w.err(errSyntax)
					return
				}
			}
			var empty bool
			if first, last, empty = bitRange(start, end, isBit, int64(len(v))); empty {
				c.w.int(0)
				return
			}
		default:
			c.w.err(errSyntax)
			return
		}
		var n int64
		for i := first; i <= last; {
			if i&7 == 0 && i+7 <= last {
				n += int64(bits.OnesCount8(v[i>>3]))
				i += 8
				continue
			}
			if v[i>>3]&(0x80>>(i&7)) != 0 {
				n++
			}
			i++
		}
		c.w.int(n)
	})
}

func cmdBitPos(c *client, args [][]byte) {
	bit, ok := parseInt(args[2])
	if !ok {
		c.w.err(errNotInt)
		return
	}
	if bit != 0 && bit != 1 {
		c.w.err("ERR The bit argument must be 1 or 0.")
		return
	}
	c.stringArg(args, func(v []byte, found bool) {
		if !found {
			c.w.int(-bit) // no key: an endless run of zeros
			return
		}
		n := int64(len(v))
		first, last := int64(0), n*8-1
		endGiven := false
		switch len(args) {
		case 3:
		case 4, 5, 6:
			start, ok := parseInt(args[3])
			if !ok {
				c.w.err(errNotInt)
				return
			}
			isBit := false
			if len(args) == 6 {
				if isBit, ok = bitUnit(args[5]); !ok {
					c.w.err(errSyntax)
					return
				}
			}
			end := n - 1
			if isBit {
				end = n*8 - 1
			}
			if len(args) >= 5 {
				if end, ok = parseInt(args[4]); !ok {
					c.w.err(errNotInt)
					return
				}
				endGiven = true
			}
			var empty bool
			if first, last, empty = bitRange(start, end, isBit, n); empty {
				c.w.int(-1)
				return
			}
		default:
			c.w.err(errSyntax)
			return
		}
		if n == 0 {
			c.w.int(-1)
			return
		}
		for i := first; i <= last; i++ {
			if int64(v[i>>3]>>(7-i&7)&1) == bit {
				c.w.int(i)
				return
			}
		}
		// Not found. Looking for a clear bit with no end given, the string counts as
		// followed by zeros: the first bit past its end.
		if bit == 0 && !endGiven {
			c.w.int(n * 8)
			return
		}
		c.w.int(-1)
	})
}
