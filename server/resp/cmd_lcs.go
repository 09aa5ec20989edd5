package resp

import (
	"errors"
	"strconv"

	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/store"
)

// maxLCSTable bounds the dynamic-programming table LCS builds: (len(a)+1)·(len(b)+1)
// cells of 4 bytes. Redis refuses when the allocation fails; cachee refuses before.
const maxLCSTable = 64 << 20

func cmdLCS(c *client, args [][]byte) {
	var a, b []byte
	var fa, fb bool
	wrong := false
	err := c.db.Update(func(tx *store.Tx) error {
		for i, k := range args[1:3] {
			v, found, err := tx.Get(k, nil)
			switch {
			case errors.Is(err, store.ErrWrongType):
				wrong = true
				return nil
			case err != nil && !keyErr(err):
				return err
			}
			if i == 0 {
				a, fa = v, found
			} else {
				b, fb = v, found
			}
		}
		return nil
	})
	switch {
	case err != nil:
		c.storeErr(err)
		return
	case wrong:
		c.w.err("ERR The specified keys must contain string values")
		return
	}
	var missing [][]byte
	if !fa {
		missing = append(missing, args[1])
	}
	if !fb {
		missing = append(missing, args[2])
	}
	if len(missing) > 0 && c.readThrough(missing, func(vs []l2.Value) {
		if !fa {
			a, vs = vs[0].Data, vs[1:]
		}
		if !fb {
			b = vs[0].Data
		}
		lcs(c, args, a, b)
	}) {
		return
	}
	lcs(c, args, a, b)
}

// lcs replies to LCS of a and b with the options in args[3:].
func lcs(c *client, args [][]byte, a, b []byte) {
	var getLen, getIdx, withLen bool
	var minLen int64
	for j := 3; j < len(args); j++ {
		switch opt := args[j]; {
		case eqFold(opt, "idx"):
			getIdx = true
		case eqFold(opt, "len"):
			getLen = true
		case eqFold(opt, "withmatchlen"):
			withLen = true
		case eqFold(opt, "minmatchlen") && j+1 < len(args):
			n, ok := parseInt(args[j+1])
			if !ok {
				c.w.err(errNotInt)
				return
			}
			minLen = max(n, 0)
			j++
		default:
			c.w.err(errSyntax)
			return
		}
	}
	if getIdx && getLen {
		c.w.err("ERR If you want both the length and indexes, please just use IDX.")
		return
	}
	alen, blen := len(a), len(b)
	if cells := int64(alen+1) * int64(blen+1); cells > maxLCSTable/4 {
		c.w.err("ERR Insufficient memory, transient memory for LCS exceeds cachee's limit of " +
			strconv.Itoa(maxLCSTable) + " bytes")
		return
	}
	// dp[i*(blen+1)+j] is the length of the LCS of a[:i] and b[:j].
	w := blen + 1
	dp := make([]uint32, (alen+1)*w)
	for i := 1; i <= alen; i++ {
		for j := 1; j <= blen; j++ {
			switch {
			case a[i-1] == b[j-1]:
				dp[i*w+j] = dp[(i-1)*w+j-1] + 1
			default:
				dp[i*w+j] = max(dp[(i-1)*w+j], dp[i*w+j-1])
			}
		}
	}
	total := dp[alen*w+blen]
	if getLen {
		c.w.int(int64(total))
		return
	}
	// Walk back from the end, collecting the common string and, for IDX, the
	// matching ranges (from the last to the first, as Redis lists them).
	type span struct{ a0, a1, b0, b1 int }
	var spans []span
	result := make([]byte, total)
	k := int(total)
	cur := span{a0: -1}
	emit := func() {
		if cur.a0 >= 0 && (minLen == 0 || int64(cur.a1-cur.a0+1) >= minLen) {
			spans = append(spans, cur)
		}
		cur.a0 = -1
	}
	for i, j := alen, blen; i > 0 && j > 0; {
		if a[i-1] == b[j-1] {
			k--
			result[k] = a[i-1]
			if cur.a0 >= 0 && cur.a0 == i && cur.b0 == j {
				cur.a0, cur.b0 = i-1, j-1
			} else {
				emit()
				cur = span{i - 1, i - 1, j - 1, j - 1}
			}
			i, j = i-1, j-1
			if i == 0 || j == 0 {
				emit()
			}
			continue
		}
		if dp[(i-1)*w+j] > dp[i*w+j-1] {
			i--
		} else {
			j--
		}
		emit()
	}
	if !getIdx {
		c.w.bulk(result)
		return
	}
	c.w.mapLen(2)
	c.w.bulkString("matches")
	c.w.array(len(spans))
	for _, s := range spans {
		if withLen {
			c.w.array(3)
		} else {
			c.w.array(2)
		}
		c.w.array(2)
		c.w.int(int64(s.a0))
		c.w.int(int64(s.a1))
		c.w.array(2)
		c.w.int(int64(s.b0))
		c.w.int(int64(s.b1))
		if withLen {
			c.w.int(int64(s.a1 - s.a0 + 1))
		}
	}
	c.w.bulkString("len")
	c.w.int(int64(total))
}
