package h2fast

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http2/hpack"
)

// What the gRPC-over-HTTP/2 protocol (grpc/grpc doc/PROTOCOL-HTTP2.md) asks of a
// request the fast path answers, and how it writes the answer. Anything a request
// does that these functions do not accept is left to the backend, so that it gets
// the backend's answer.

// request is what a request's header list says about the call.
type request struct {
	method, path, contentType string
	subtype                   string // of content-type: "" or "proto"
	encoding                  string // grpc-encoding
	timeout                   time.Duration
	hasTimeout, badTimeout    bool
	contentLength             int64 // -1 when absent
	badContentLength          bool
}

// readRequest reads the fields the fast path looks at. It reports a reason when the
// header list is not a valid HTTP/2 request (RFC 9113 §8.2 and §8.3), which is a stream
// error of type PROTOCOL_ERROR.
func readRequest(fields []hpack.HeaderField) (request, string) {
	r := request{contentLength: -1}
	var scheme bool
	for _, f := range fields {
		switch f.Name {
		case ":method":
			r.method = f.Value
		case ":path":
			r.path = f.Value
			if f.Value == "" {
				return r, "empty :path"
			}
		case ":scheme":
			scheme = true
		case ":authority", ":protocol":
		case ":status":
			return r, "a request with :status"
		case "content-type":
			r.contentType = f.Value
		case "grpc-encoding":
			r.encoding = f.Value
		case "grpc-timeout":
			d, err := parseTimeout(f.Value)
			r.timeout, r.hasTimeout, r.badTimeout = d, true, err != nil
		case "te":
			if f.Value != "trailers" {
				return r, `te other than "trailers"`
			}
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return r, "connection-specific field " + f.Name
		case "content-length":
			n, err := strconv.ParseInt(f.Value, 10, 64)
			if err != nil || n < 0 || r.contentLength >= 0 && r.contentLength != n {
				r.badContentLength = true
			}
			r.contentLength = n
		}
	}
	switch {
	case r.method == "":
		return r, "no :method"
	case r.method != "CONNECT" && (!scheme || r.path == ""):
		return r, "no :scheme or :path"
	case r.badContentLength:
		return r, "invalid content-length"
	}
	return r, ""
}

// fast reports whether the request is one the fast path may answer: a POST of
// gRPC's own content type with the proto codec, uncompressed, with a valid timeout.
func (r *request) fast() bool {
	if r.method != "POST" || r.encoding != "" && r.encoding != "identity" || r.badTimeout {
		return false
	}
	sub, ok := contentSubtype(r.contentType)
	r.subtype = sub
	return ok && (sub == "" || sub == "proto")
}

// contentSubtype reads "application/grpc", "application/grpc+SUBTYPE" or
// "application/grpc;...", as grpc-go does.
func contentSubtype(ct string) (string, bool) {
	const base = "application/grpc"
	if !strings.HasPrefix(ct, base) {
		return "", false
	}
	if len(ct) == len(base) {
		return "", true
	}
	switch ct[len(base)] {
	case '+':
		return strings.ToLower(ct[len(base)+1:]), true
	case ';':
		return "", true
	}
	return "", false
}

// parseTimeout reads a grpc-timeout value: at most 8 digits and a unit.
func parseTimeout(s string) (time.Duration, error) {
	if len(s) < 2 || len(s) > 9 {
		return 0, strconv.ErrSyntax
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 64)
	if err != nil {
		return 0, err
	}
	if unit == time.Hour && n > math.MaxInt64/uint64(time.Hour) {
		return math.MaxInt64, nil
	}
	return unit * time.Duration(n), nil
}

// contentType is the answer's content-type: the request's, by its subtype.
func contentType(subtype string) string {
	if subtype == "" {
		return "application/grpc"
	}
	return "application/grpc+" + subtype
}

// encodeStatusMessage percent-encodes a grpc-message value: bytes outside printable
// ASCII, '%', and every byte of a non-ASCII or invalid UTF-8 sequence (invalid ones as
// U+FFFD).
func encodeStatusMessage(msg string) string {
	clean := true
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < ' ' || c > '~' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return msg
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	var rb [utf8.UTFMax]byte
	for len(msg) > 0 {
		r, size := utf8.DecodeRuneInString(msg)
		enc := rb[:utf8.EncodeRune(rb[:], r)]
		for _, c := range enc {
			if size == 1 && c >= ' ' && c <= '~' && c != '%' {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
			}
		}
		msg = msg[size:]
	}
	return b.String()
}

// EncodeBinary is how a binary ("-bin") metadata value travels in a header field.
func EncodeBinary(v []byte) string { return base64.RawStdEncoding.EncodeToString(v) }

// Fields of the answers, shared so that building one does not allocate them.
var (
	fieldStatus200 = hpack.HeaderField{Name: ":status", Value: "200"}
	fieldOK        = hpack.HeaderField{Name: "grpc-status", Value: "0"}
	fieldNoMessage = hpack.HeaderField{Name: "grpc-message", Value: ""}
	codeValues     [17]string
)

func init() {
	for i := range codeValues {
		codeValues[i] = strconv.Itoa(i)
	}
}

func codeValue(code uint32) string {
	if int(code) < len(codeValues) {
		return codeValues[code]
	}
	return strconv.FormatUint(uint64(code), 10)
}
