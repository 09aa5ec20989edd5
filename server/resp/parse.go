package resp

import (
	"bytes"
	"strconv"
)

// The request parser is written for this project rather than taken from a library,
// because it is where untrusted bytes meet memory: every length it reads is checked
// against a limit before anything is sized from it, it never allocates per request once
// a connection is warm (arguments are slices of the read buffer), and it keeps its place
// across reads so that a request arriving in many pieces is scanned once, not once per
// piece. The protocol errors, and which inputs produce them, follow Redis's
// networking.c (processMultibulkBuffer, processInlineBuffer), since clients and tests
// rely on them.

// parseStatus is the outcome of one parse call.
type parseStatus uint8

const (
	parsedRequest parseStatus = iota // a whole request (possibly empty: skip it)
	parseMore                        // incomplete: read more bytes and call again
	parseError                       // protocol error: reply with perr, then close
)

// span locates an argument within the request: offsets survive the buffer moving.
type span struct{ off, n int }

// parser turns bytes into requests. Its zero value is not usable: see newParser.
type parser struct {
	maxBulk int // bulk length limit for an authenticated client
	maxArgs int // argument count limit

	// A multibulk request in progress: argc > 0 while one is.
	argc  int
	pos   int // bytes of the request consumed so far
	bulk  int // length of the awaited bulk, or -1 while its "$" line is awaited
	spans []span

	args   [][]byte // arguments of the last request, valid until the next call
	quoted []byte   // unescaped bytes of quoted inline arguments

	// The rest of a request refused for an argument over maxBulk, being read and
	// dropped (see discard): the bytes left of the current argument, and the
	// arguments after it.
	dropping  bool
	dropBytes int64
	dropArgs  int
}

// bulkLimitFlag is the setting behind maxBulk that a client can be told to raise: by
// default the largest bulk is the store's largest value.
const bulkLimitFlag = "--max-value-size"

// maxDrop is the longest argument whose bytes are read and dropped after refusing it,
// so that the client, still writing it, sees the error rather than a reset: Redis's
// own largest (proto-max-bulk-len's default). A longer one is not a value any client
// means to send, and its connection is closed at once.
const maxDrop = 512 << 20

func newParser(maxBulk, maxArgs int) parser {
	return parser{maxBulk: maxBulk, maxArgs: maxArgs, bulk: -1}
}

// reset drops a request in progress.
func (p *parser) reset() {
	p.argc, p.pos, p.bulk = 0, 0, -1
	p.spans = p.spans[:0]
}

// need is how many bytes of the request in progress are known to be needed before
// parse can make progress, or 0 when unknown.
func (p *parser) need() int {
	if p.argc > 0 && p.bulk >= 0 {
		return p.pos + p.bulk + 2
	}
	return 0
}

// parse reads one request from the start of b (the start of the request, whatever
// earlier calls consumed of it). It returns the bytes the request took and its
// arguments in p.args; or parseMore; or parseError with the message Redis would give
// after "ERR Protocol error: ". authed selects the limits of an authenticated client.
func (p *parser) parse(b []byte, authed bool) (n int, st parseStatus, perr string) {
	p.args = p.args[:0]
	if p.argc == 0 {
		if len(b) == 0 {
			return 0, parseMore, ""
		}
		if b[0] != '*' {
			return p.inline(b)
		}
		// The count line. Like Redis, look for '\r' and take the byte after it as the
		// '\n' without checking.
		cr := bytes.IndexByte(b, '\r')
		if cr < 0 && len(b) > MaxInline || cr > MaxInline {
			return 0, parseError, "too big mbulk count string"
		}
		if cr < 0 {
			return 0, parseMore, ""
		}
		if cr+2 > len(b) {
			return 0, parseMore, ""
		}
		ll, ok := parseInt(b[1:cr])
		switch {
		case !ok || ll > int64(p.maxArgs):
			return 0, parseError, "invalid multibulk length"
		case ll > unauthMultibulk && !authed:
			return 0, parseError, "unauthenticated multibulk length"
		case ll <= 0:
			return cr + 2, parsedRequest, ""
		}
		p.argc = int(ll)
		p.pos = cr + 2
		p.bulk = -1
		p.spans = p.spans[:0]
	}
	for len(p.spans) < p.argc {
		if p.bulk < 0 {
			rest := b[p.pos:]
			cr := bytes.IndexByte(rest, '\r')
			if cr < 0 && len(rest) > MaxInline || cr > MaxInline {
				return 0, parseError, "too big bulk count string"
			}
			if cr < 0 {
				return 0, parseMore, ""
			}
			if cr+2 > len(rest) {
				return 0, parseMore, ""
			}
			if rest[0] != '$' {
				return 0, parseError, "expected '$', got '" + printable(rest[0]) + "'"
			}
			ll, ok := parseInt(rest[1:cr])
			switch {
			case ok && ll > int64(p.maxBulk) && ll <= maxDrop && authed:
				// A value too large, from a client that may be blocked writing it: refuse
				// it now, and read and drop the rest of the request before closing.
				n = p.pos + cr + 2
				p.dropping, p.dropBytes, p.dropArgs = true, ll+2, p.argc-len(p.spans)-1
				p.reset()
				return n, parseError, "invalid bulk length " + strconv.FormatInt(ll, 10) + ": over the limit of " +
					strconv.Itoa(p.maxBulk) + " bytes (" + bulkLimitFlag + ")"
			case !ok || ll < 0 || ll > int64(p.maxBulk):
				return 0, parseError, "invalid bulk length"
			case ll > unauthBulk && !authed:
				return 0, parseError, "unauthenticated bulk length"
			}
			p.bulk = int(ll)
			p.pos += cr + 2
		}
		// Like Redis, skip the two bytes after the data without checking them.
		if len(b)-p.pos < p.bulk+2 {
			return 0, parseMore, ""
		}
		p.spans = append(p.spans, span{p.pos, p.bulk})
		p.pos += p.bulk + 2
		p.bulk = -1
	}
	for _, s := range p.spans {
		p.args = append(p.args, b[s.off:s.off+s.n:s.off+s.n])
	}
	n = p.pos
	p.reset()
	return n, parsedRequest, ""
}

// discard reads and drops what b holds of a request refused by parse for an argument
// over the limit (p.dropping): the rest of that argument, then each argument after
// it. It returns the bytes it consumed; done when the whole request is consumed, or
// when what follows is not a request's argument (then nothing more can be read in
// step with the client).
func (p *parser) discard(b []byte) (n int, done bool) {
	for {
		k := int(min(int64(len(b)-n), p.dropBytes))
		n += k
		p.dropBytes -= int64(k)
		if p.dropBytes > 0 {
			return n, false
		}
		if p.dropArgs == 0 {
			p.dropping = false
			return n, true
		}
		rest := b[n:]
		cr := bytes.IndexByte(rest, '\r')
		if len(rest) > 0 && rest[0] != '$' || cr < 0 && len(rest) > MaxInline || cr > MaxInline {
			p.dropping = false
			return n, true
		}
		if cr < 0 || cr+2 > len(rest) {
			return n, false
		}
		ll, ok := parseInt(rest[1:cr])
		if !ok || ll < 0 || ll > maxDrop {
			p.dropping = false
			return n, true
		}
		n += cr + 2
		p.dropBytes, p.dropArgs = ll+2, p.dropArgs-1
	}
}

// printable renders the byte Redis puts in "expected '$', got '%c'": raw, except that
// Redis turns '\r' and '\n' in error messages into spaces.
func printable(c byte) string {
	if c == '\r' || c == '\n' {
		return " "
	}
	return string([]byte{c})
}

// inline parses a request in the inline form: one line, arguments split as Redis's
// sdssplitargs splits them (spaces, "double quotes" with \n \r \t \b \a \xHH and \c
// escapes, 'single quotes' with \' only).
func (p *parser) inline(b []byte) (int, parseStatus, string) {
	// Redis looks at most 64 KiB ahead for the end of a line, whatever the reads
	// brought in; so do we, so that the answer does not depend on how bytes arrive.
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 && len(b) > MaxInline || nl > MaxInline {
		return 0, parseError, "too big inline request"
	}
	if nl < 0 {
		return 0, parseMore, ""
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	// Redis splits the line as a C string: a NUL ends it.
	if z := bytes.IndexByte(line, 0); z >= 0 {
		line = line[:z]
	}
	if !p.splitArgs(line) {
		p.args = p.args[:0]
		return 0, parseError, "unbalanced quotes in request"
	}
	return nl + 1, parsedRequest, ""
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// splitArgs fills p.args from line. Arguments without quotes are slices of line;
// quoted ones are unescaped into p.quoted. It reports false on unbalanced quotes.
func (p *parser) splitArgs(line []byte) bool {
	p.quoted = p.quoted[:0]
	// Quoted arguments are recorded as spans of p.quoted (negative offsets mark them)
	// and turned into slices at the end, since p.quoted may move as it grows.
	p.spans = p.spans[:0]
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		start, end := i, i
		qstart := len(p.quoted)
		quoted := false // this argument has been copied to p.quoted
		inq, insq := false, false
		for done := false; !done; i++ {
			if inq || insq {
				if i == len(line) {
					return false // unterminated quotes
				}
				c := line[i]
				switch {
				case inq && c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					p.quoted = append(p.quoted, hexVal(line[i+2])<<4|hexVal(line[i+3]))
					i += 3
				case inq && c == '\\' && i+1 < len(line):
					i++
					p.quoted = append(p.quoted, unescape(line[i]))
				case insq && c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					p.quoted = append(p.quoted, '\'')
				case inq && c == '"', insq && c == '\'':
					// The closing quote must be followed by a space or nothing.
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return false
					}
					done = true
				default:
					p.quoted = append(p.quoted, c)
				}
				continue
			}
			if i == len(line) {
				end = i
				break
			}
			switch c := line[i]; c {
			case ' ', '\n', '\r', '\t':
				end = i
				done = true
			case '"', '\'':
				if !quoted {
					p.quoted = append(p.quoted, line[start:i]...)
					quoted = true
				}
				inq, insq = c == '"', c == '\''
			default:
				if quoted {
					p.quoted = append(p.quoted, c)
				}
			}
		}
		if quoted {
			p.spans = append(p.spans, span{-1 - qstart, len(p.quoted) - qstart})
		} else {
			p.spans = append(p.spans, span{start, end - start})
		}
	}
	for _, s := range p.spans {
		if s.off < 0 {
			o := -1 - s.off
			p.args = append(p.args, p.quoted[o:o+s.n:o+s.n])
		} else {
			p.args = append(p.args, line[s.off:s.off+s.n:s.off+s.n])
		}
	}
	p.spans = p.spans[:0]
	return true
}

// unescape maps the character after a backslash inside double quotes.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
