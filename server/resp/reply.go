package resp

import (
	"slices"
	"strconv"
	"strings"
)

// writer appends replies in the connection's protocol version (2 or 3) to b.
type writer struct {
	b     []byte
	proto int
	// max, when positive, bounds b: a bulk that would take it past max is not
	// written but sets over, and the client is then disconnected with its replies
	// dropped (as Redis closes a client past its output buffer limit), so that one
	// command (an MGET of many large values) cannot build a reply of any size.
	max  int
	over bool
	// reserve, when set, is asked for the bytes by which b is about to grow for a
	// large write, before it grows: false (the client memory budget cannot hold them)
	// sets over and refused, and the client is disconnected as at max. Growth that
	// happened without asking (small replies) is charged afterwards (client.account).
	reserve func(n int) bool
	refused bool
}

// reserveFrom is the smallest growth of b that fits asks the budget for beforehand.
const reserveFrom = 4 << 10

// fits reports whether n more bytes may be written, and notes when they may not.
func (w *writer) fits(n int) bool {
	if w.max > 0 && len(w.b)+n > w.max {
		w.over = true
	}
	if !w.over && w.reserve != nil && len(w.b)+n > cap(w.b) {
		// Grow here, with the budget's leave, rather than in append, which would
		// allocate first: a reply of a large value is what makes client memory.
		newCap := max(len(w.b)+n, 2*cap(w.b))
		if w.max > 0 {
			newCap = max(len(w.b)+n, min(newCap, w.max)) // never ask for room past the limit
		}
		if grow := newCap - cap(w.b); grow >= reserveFrom && !w.reserve(grow) {
			w.over, w.refused = true, true
		} else {
			w.b = slices.Grow(w.b, newCap-len(w.b))
		}
	}
	return !w.over
}

func (w *writer) raw(s string) {
	if w.fits(len(s)) {
		w.b = append(w.b, s...)
	}
}

func (w *writer) ok() { w.b = append(w.b, "+OK\r\n"...) }

func (w *writer) simple(s string) {
	w.b = append(w.b, '+')
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}

// err writes an error. msg carries its code ("ERR ...", "WRONGTYPE ..."); newlines in it
// become spaces, as Redis does to keep the reply one line.
func (w *writer) err(msg string) {
	w.b = append(w.b, '-')
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	w.b = append(w.b, msg...)
	w.b = append(w.b, '\r', '\n')
}

func (w *writer) header(c byte, n int64) {
	w.b = append(w.b, c)
	w.b = strconv.AppendInt(w.b, n, 10)
	w.b = append(w.b, '\r', '\n')
}

func (w *writer) int(n int64) { w.header(':', n) }

func (w *writer) bulk(v []byte)       { writeBulk(w, v) }
func (w *writer) bulkString(s string) { writeBulk(w, s) }

func writeBulk[T []byte | string](w *writer, v T) {
	if !w.fits(len(v) + 16) {
		return
	}
	w.header('$', int64(len(v)))
	w.b = append(w.b, v...)
	w.b = append(w.b, '\r', '\n')
}

// bulkInt writes n as a bulk string (TIME, INCRBYFLOAT's kin).
func (w *writer) bulkInt(n int64) {
	var tmp [20]byte
	w.bulk(strconv.AppendInt(tmp[:0], n, 10))
}

// null is the reply for a missing value: $-1 in RESP2, _ in RESP3.
func (w *writer) null() {
	if w.proto == 3 {
		w.b = append(w.b, "_\r\n"...)
	} else {
		w.b = append(w.b, "$-1\r\n"...)
	}
}

// nullArray is the reply for a missing aggregate (an aborted EXEC): *-1 in RESP2.
func (w *writer) nullArray() {
	if w.proto == 3 {
		w.b = append(w.b, "_\r\n"...)
	} else {
		w.b = append(w.b, "*-1\r\n"...)
	}
}

func (w *writer) array(n int) { w.header('*', int64(n)) }

// mapLen starts a map of n pairs: a flat array of 2n in RESP2.
func (w *writer) mapLen(n int) {
	if w.proto == 3 {
		w.header('%', int64(n))
	} else {
		w.header('*', int64(2*n))
	}
}

// setLen starts a set: an array in RESP2.
func (w *writer) setLen(n int) {
	if w.proto == 3 {
		w.header('~', int64(n))
	} else {
		w.header('*', int64(n))
	}
}

// verbatim writes text as a verbatim string of format "txt" in RESP3, a bulk string
// in RESP2 (INFO, CLIENT LIST, CLIENT INFO).
func (w *writer) verbatim(s string) {
	if w.proto != 3 {
		w.bulkString(s)
		return
	}
	if !w.fits(len(s) + 20) {
		return
	}
	w.header('=', int64(len(s)+4))
	w.b = append(w.b, "txt:"...)
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}

// errArgs is Redis's arity error.
func errArgs(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

// Errors Redis gives word for word.
const (
	errSyntax     = "ERR syntax error"
	errNotInt     = "ERR value is not an integer or out of range"
	errNotFloat   = "ERR value is not a valid float"
	errOverflow   = "ERR increment or decrement would overflow"
	errOOM        = "OOM command not allowed when used memory > 'maxmemory'."
	errNoAuth     = "NOAUTH Authentication required."
	errWrongPass  = "WRONGPASS invalid username-password pair or user is disabled."
	errTooBig     = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errEmptyKey   = "ERR empty keys are not supported by cachee"
	errKeyTooBig  = "ERR key is larger than cachee's max key size"
	errWrongType  = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errMaxClients = "ERR max number of clients reached"
	// errClientMemory is cachee's own: Redis admits the client and may evict it later.
	errClientMemory = "ERR client memory limit reached"
)

func errExpire(cmd string) string { return "ERR invalid expire time in '" + cmd + "' command" }
