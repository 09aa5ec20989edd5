package h2fast

import (
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A request's header block is decoded here rather than by the Framer's ReadMetaHeaders,
// which allocates a frame, a closure and a growing field list for every block, most of
// a fast call's allocations. The connection keeps one decoder, whose
// emit function is bound once, and one field list, which a stream copies into room of
// its own. The checks are the Framer's, in the same order and with the same errors
// (h2spec holds both to RFC 9113 §8.2 and §8.3): field names and values, pseudo-header
// fields before regular ones, the header list size, and CONTINUATION after a block
// already found malformed or too large.

// headerBlock is the header block being read: its HEADERS frame's facts, then the
// fields of that frame and of the CONTINUATION frames that complete it.
type headerBlock struct {
	id          uint32
	endStream   bool
	hasPriority bool
	dep         uint32 // the stream it depends on, when hasPriority

	fields        []hpack.HeaderField
	remain        uint32 // header list bytes still allowed, trailer declarations aside
	trailerRemain uint32 // the same for the "trailer" field's names
	sawRegular    bool
	invalid       string // why the block is malformed, once it is: a stream error
	truncated     bool   // past MaxHeaderListSize: the fields after it were dropped
}

// pseudo is the block's pseudo-header fields, which all come first.
func (b *headerBlock) pseudo() []hpack.HeaderField {
	for i, f := range b.fields {
		if !strings.HasPrefix(f.Name, ":") {
			return b.fields[:i]
		}
	}
	return b.fields
}

// streamFields is how many fields a stream holds without an allocation of their own:
// a gRPC client sends seven to ten.
const streamFields = 12

// beginBlock starts reading the header block of a HEADERS frame.
func (c *Conn) beginBlock(f *http2.HeadersFrame) {
	clear(c.hb.fields)
	c.hb = headerBlock{
		id:            f.StreamID,
		endStream:     f.StreamEnded(),
		hasPriority:   f.HasPriority(),
		dep:           f.Priority.StreamDep,
		fields:        c.hb.fields[:0],
		remain:        c.cfg.MaxHeaderListSize,
		trailerRemain: c.cfg.MaxHeaderListSize,
	}
	c.dec.SetEmitEnabled(true)
	c.blockFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// blockFragment decodes one fragment of the block; the last one ends it.
func (c *Conn) blockFragment(frag []byte, ended bool) {
	b := &c.hb
	// A fragment much larger than what the list may still hold is not decoded, and
	// nothing after a malformed field is tracked: the connection ends, as the
	// Framer's reader ends it.
	if int64(len(frag)) > 2*(int64(b.remain)+int64(b.trailerRemain)) {
		c.fail(http2.ErrCodeProtocol, "header list too large")
		return
	}
	if b.invalid != "" {
		c.fail(http2.ErrCodeProtocol, b.invalid)
		return
	}
	if _, err := c.dec.Write(frag); err != nil {
		c.fail(http2.ErrCodeCompression, err.Error())
		return
	}
	if !ended {
		return
	}
	if err := c.dec.Close(); err != nil {
		c.fail(http2.ErrCodeCompression, err.Error())
		return
	}
	if b.invalid == "" {
		b.invalid = checkPseudo(b.pseudo())
	}
	if b.invalid != "" {
		c.readError(nil, http2.StreamError{StreamID: b.id, Code: http2.ErrCodeProtocol})
		return
	}
	c.onHeaders(b)
}

// onField takes one decoded field of the block being read.
func (c *Conn) onField(f hpack.HeaderField) {
	b := &c.hb
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		b.invalid = "invalid value of header field " + f.Name // the value may be a secret
	}
	if strings.HasPrefix(f.Name, ":") {
		if b.sawRegular {
			b.invalid = "pseudo-header field after a regular one"
		}
	} else {
		b.sawRegular = true
		if !validFieldName(f.Name) {
			b.invalid = "invalid header field name " + f.Name
		}
	}
	if b.invalid != "" {
		c.dec.SetEmitEnabled(false)
		return
	}
	remain, size := &b.remain, f.Size()
	if f.Name == "trailer" {
		// The names it declares are counted as fields of their own, without values.
		n := uint32(strings.Count(f.Value, ",") + 1)
		remain, size = &b.trailerRemain, uint32(len(f.Value))-n+1+n*hpack.HeaderField{}.Size()
	}
	if size > *remain {
		c.dec.SetEmitEnabled(false)
		b.truncated = true
		b.remain, b.trailerRemain = 0, 0
		return
	}
	*remain -= size
	b.fields = append(b.fields, f)
}

// validFieldName reports whether name may be sent in HTTP/2: a token, in lower case.
func validFieldName(name string) bool {
	if !httpguts.ValidHeaderFieldName(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			return false
		}
	}
	return true
}

// checkPseudo reports why a block's pseudo-header fields are malformed, if they are:
// one unknown, one twice, or those of a request beside a response's.
func checkPseudo(pf []hpack.HeaderField) string {
	var request, response bool
	for i, f := range pf {
		switch f.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return "unknown pseudo-header field " + f.Name
		}
		for _, g := range pf[:i] {
			if f.Name == g.Name {
				return "pseudo-header field " + f.Name + " twice"
			}
		}
	}
	if request && response {
		return "pseudo-header fields of a request and of a response"
	}
	return ""
}
