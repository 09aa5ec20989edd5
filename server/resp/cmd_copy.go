package resp

import (
	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// RENAME, RENAMENX and COPY move a key's value whatever its type, with its expiry.

func cmdRename(c *client, args [][]byte)   { rename(c, args, false) }
func cmdRenameNX(c *client, args [][]byte) { rename(c, args, true) }

func rename(c *client, args [][]byte, nx bool) {
	if !c.checkKeys(args, 1) {
		return
	}
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyAsCmd()) {
		return
	}
	src, dst := args[1], args[2]
	var missing, renamed bool
	err := c.db.Update(func(tx *store.Tx) error {
		if !tx.Exists(src) {
			missing = true
			return nil
		}
		if string(src) == string(dst) {
			return nil
		}
		ok, err := tx.Copy(src, dst, !nx)
		if err != nil || !ok {
			return err
		}
		renamed = true
		_, err = tx.Delete(src)
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case missing:
		c.w.err("ERR no such key")
	case nx && renamed:
		c.touched(src)
		c.touched(dst)
		c.w.int(1)
	case nx:
		c.w.int(0)
	default:
		if renamed {
			c.touched(src)
			c.touched(dst)
		}
		c.w.ok()
	}
}

func cmdCopy(c *client, args [][]byte) {
	replace := false
	for j := 3; j < len(args); j++ {
		switch {
		case eqFold(args[j], "replace"):
			replace = true
		case eqFold(args[j], "db") && j+1 < len(args):
			db, ok := parseInt(args[j+1])
			if !ok {
				c.w.err(errNotInt)
				return
			}
			if db != 0 {
				c.w.err("ERR DB index is out of range")
				return
			}
			j++
		default:
			c.w.err(errSyntax)
			return
		}
	}
	if string(args[1]) == string(args[2]) {
		c.w.err("ERR source and destination objects are the same")
		return
	}
	if !c.checkKeys(args[:3], 1) {
		return
	}
	if c.l2Writes() && c.l2Forward(args, l2.Drop, c.replyInt) {
		return
	}
	var copied bool
	err := c.db.Update(func(tx *store.Tx) error {
		var err error
		copied, err = tx.Copy(args[1], args[2], replace)
		return err
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case copied:
		c.touched(args[2])
		c.w.int(1)
	default:
		c.w.int(0)
	}
}

// cmdObjectEncoding answers with the encoding Redis would use for the value: for a
// string "int", "embstr" (up to 44 bytes) or "raw"; for a hash "listpack" (or
// "listpackex" once a field had an expiry) until it grows past Redis's listpack
// limits, "hashtable" from then on.
func cmdObjectEncoding(c *client, args [][]byte) {
	var enc string
	err := c.db.Update(func(tx *store.Tx) error {
		typ, ok := tx.Type(args[2])
		switch {
		case !ok:
		case typ == store.TypeHash:
			hs, _, err := tx.Hash(args[2])
			if err != nil {
				return err
			}
			switch {
			case hs.Flags&hashLarge != 0:
				enc = "hashtable"
			case hs.Flags&hashVolatile != 0:
				enc = "listpackex"
			default:
				enc = "listpack"
			}
		default:
			v, _, err := tx.Get(args[2], c.scratch[:0])
			if err != nil {
				return err
			}
			_, isInt := parseInt(v)
			switch {
			case isInt:
				enc = "int"
			case len(v) <= 44:
				enc = "embstr"
			default:
				enc = "raw"
			}
		}
		return nil
	})
	switch {
	case err != nil:
		c.storeErr(err)
	case enc == "":
		c.w.null()
	default:
		c.w.bulkString(enc)
	}
}
