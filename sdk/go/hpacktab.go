package cachee

import (
	"time"

	"golang.org/x/net/http2/hpack"
)

// Request header blocks. Every call of a method repeats the same fields (:path,
// :authority, content-type, te, the token) and a grpc-timeout. Sent as literals, the
// server's HPACK decoder parses each and makes a string of it, seven a call: on
// cachee's fast path, half of a Get's allocations. So the first block of a
// connection that has a field adds it to the server's dynamic table, and later blocks
// send its index, one byte; grpc-timeout's name likewise, its value a literal. The
// token is never indexed (RFC 7541, 7.1.3: a secret).
//
// The table only grows: the Client's fields take a few hundred bytes of the 4,096
// HTTP/2 gives it, so no entry is ever evicted, and a field that would not fit is
// sent as a literal that is not added. hpackTable is h2conn's, under its mu: the
// blocks are appended to wbuf in the order they are written, which is the order the
// server decodes them in.
type hpackTable struct {
	max, size int                       // the table's limit and what the entries take, in HPACK's sizes
	n         int                       // entries added
	at        map[hpack.HeaderField]int // an entry's number (1 the first added)
	timeoutAt int                       // the number of the grpc-timeout entry, whose name blocks refer to (0: none)
	resize    bool                      // the limit changed: the next block starts with size updates
	blocks    map[*h2Method]hpackBlock  // a method's fields, as the table stood when encoded
}

// hpackBlock is a method's fields, encoded when the table had n entries: valid until
// an entry is added, which moves the indexes.
type hpackBlock struct {
	n       int
	b       []byte
	timeout int // grpc-timeout's name index (0: the name is a literal)
}

// hpackDefaultTable is HTTP/2's initial SETTINGS_HEADER_TABLE_SIZE.
const hpackDefaultTable = 4096

func newHpackTable() *hpackTable {
	return &hpackTable{max: hpackDefaultTable, at: map[hpack.HeaderField]int{}, blocks: map[*h2Method]hpackBlock{}}
}

// setMax applies the server's SETTINGS_HEADER_TABLE_SIZE. Less than the limit in use,
// the table is emptied, and the next block says so (a size update to 0, then to the
// new limit); more, the limit stays: a decoder allows any limit up to its setting.
func (t *hpackTable) setMax(v uint32) {
	if int64(v) >= int64(t.max) {
		return
	}
	t.max, t.size, t.timeoutAt, t.resize = int(v), 0, 0, true
	clear(t.at)
	clear(t.blocks)
}

// appendHeaders appends the header block of a call of m: its fields, and a
// grpc-timeout of d unless d is negative.
func (t *hpackTable) appendHeaders(b []byte, m *h2Method, d time.Duration) []byte {
	if t.resize {
		b = appendHpackInt(b, 0x20, 5, 0)
		b = appendHpackInt(b, 0x20, 5, t.max)
		t.resize = false
	}
	blk, ok := t.blocks[m]
	timeoutName := blk.timeout
	if !ok || blk.n != t.n {
		n := t.n
		start := len(b)
		b = append(b, 0x83, 0x86) // :method POST, :scheme http (static table 3 and 6)
		b = t.appendField(b, 4, ":path", m.path)
		b = t.appendField(b, 1, ":authority", m.authority)
		b = t.appendField(b, 31, "content-type", "application/grpc")
		b = t.appendField(b, 0, "te", "trailers")
		if m.token != "" {
			b = appendLiteral(b, hpackNeverIndexed, 23, "", "Bearer "+m.token)
		}
		timeoutName = t.timeoutName()
		if t.n == n { // nothing added: later calls send the same bytes
			t.blocks[m] = hpackBlock{n: n, b: append(blk.b[:0], b[start:]...), timeout: timeoutName}
		}
	} else {
		b = append(b, blk.b...)
	}
	if d < 0 {
		return b
	}
	if timeoutName != 0 {
		return appendTimeout(b, hpackLiteral, timeoutName, d)
	}
	if t.fits("grpc-timeout", "99999999u") {
		// Added with the first value: its name is what later blocks refer to.
		t.add(hpack.HeaderField{Name: "grpc-timeout", Value: timeoutValue(d)})
		t.timeoutAt = t.n
		return appendTimeout(b, hpackIncremental, 0, d)
	}
	return appendTimeout(b, hpackLiteral, 0, d)
}

// appendField appends a field: its index if the table has it, else a literal that
// adds it if it fits, else one that does not. nameIndex is its name's index in the
// static table (0: none).
func (t *hpackTable) appendField(b []byte, nameIndex int, name, value string) []byte {
	f := hpack.HeaderField{Name: name, Value: value}
	if k, ok := t.at[f]; ok {
		return appendHpackInt(b, 0x80, 7, t.index(k))
	}
	if !t.fits(name, value) {
		return appendLiteral(b, hpackLiteral, nameIndex, name, value)
	}
	t.add(f)
	return appendLiteral(b, hpackIncremental, nameIndex, name, value)
}

// fits reports whether an entry of this name and value fits without evicting any.
func (t *hpackTable) fits(name, value string) bool {
	return t.size+len(name)+len(value)+32 <= t.max
}

func (t *hpackTable) add(f hpack.HeaderField) {
	t.n++
	t.size += len(f.Name) + len(f.Value) + 32
	t.at[f] = t.n
}

// index is the HPACK index of entry k: the dynamic table follows the 61 static
// entries, the newest first.
func (t *hpackTable) index(k int) int { return 62 + t.n - k }

// timeoutName is the index of the grpc-timeout entry, 0 if there is none.
func (t *hpackTable) timeoutName() int {
	if t.timeoutAt == 0 {
		return 0
	}
	return t.index(t.timeoutAt)
}
