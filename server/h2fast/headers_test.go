package h2fast

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// nopHandler routes nothing: every stream would go to a backend, which is never read.
type nopHandler struct{}

func (nopHandler) Route(string) (int, bool) { return 0, false }
func (nopHandler) Serve(*Conn, *Call) bool  { return true }
func (nopHandler) Cancel(*Call)             {}
func (nopHandler) Overloaded(*Call)         {}

// headerSeeds are header lists that each break one of the rules the decoder checks,
// and some that break none.
func headerSeeds() [][]hpack.HeaderField {
	req := []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/grpc.health.v1.Health/Check"}, {Name: ":authority", Value: "x"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}, {Name: "grpc-timeout", Value: "1S"}}
	with := func(fs ...hpack.HeaderField) []hpack.HeaderField { return append(slices.Clone(req), fs...) }
	return [][]hpack.HeaderField{
		req,
		with(hpack.HeaderField{Name: "Upper", Value: "v"}),
		with(hpack.HeaderField{Name: ":path", Value: "/twice"}),
		with(hpack.HeaderField{Name: ":status", Value: "200"}),
		append([]hpack.HeaderField{{Name: ":unknown", Value: "v"}}, req...),
		with(hpack.HeaderField{Name: "bad value", Value: "v"}),
		with(hpack.HeaderField{Name: "x", Value: "line\nbreak"}),
		with(hpack.HeaderField{Name: "trailer", Value: "a, b, c"}),
		with(hpack.HeaderField{Name: "big", Value: strings.Repeat("v", DefaultMaxHeaderListSize)}),
		with(hpack.HeaderField{Name: "trailer", Value: strings.Repeat("t,", DefaultMaxHeaderListSize/2)}),
		{{Name: "grpc-status", Value: "0"}}, // trailers
	}
}

// FuzzHeaderBlock holds the connection's header block decoding to the Framer's
// (ReadMetaHeaders), which it replaces: for any block, split anywhere into HEADERS and
// CONTINUATION, both must end the connection with the same code, or refuse the stream,
// or take the same fields.
func FuzzHeaderBlock(f *testing.F) {
	for _, fs := range headerSeeds() {
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for _, hf := range fs {
			enc.WriteField(hf)
		}
		f.Add(b.Bytes(), uint16(b.Len()/2), true)
		f.Add(b.Bytes(), uint16(0), false)
	}
	f.Fuzz(func(t *testing.T, block []byte, split uint16, endStream bool) {
		var frames bytes.Buffer
		fw := http2.NewFramer(&frames, nil)
		at := min(int(split), len(block), maxFrameRead)
		if at == 0 {
			at = min(len(block), maxFrameRead)
		}
		fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:at], EndStream: endStream, EndHeaders: at == len(block)})
		for rest := block[at:]; len(rest) > 0; {
			n := min(len(rest), maxFrameRead)
			fw.WriteContinuation(1, n == len(rest), rest[:n])
			rest = rest[n:]
		}

		fr := http2.NewFramer(nil, bytes.NewReader(frames.Bytes()))
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		fr.MaxHeaderListSize = DefaultMaxHeaderListSize
		fr.SetMaxReadFrameSize(maxFrameRead)
		want, werr := fr.ReadFrame()

		c := NewConn(Config{}, nopHandler{})
		var in bytes.Buffer
		in.WriteString(http2.ClientPreface)
		http2.NewFramer(&in, nil).WriteSettings()
		in.Write(frames.Bytes())
		c.Feed(in.Bytes())
		goAway, reset := outcome(t, c.Output())

		var ce http2.ConnectionError
		var se http2.StreamError
		switch {
		case errors.As(werr, &ce):
			if goAway != http2.ErrCode(ce) {
				t.Fatalf("the Framer ends the connection with %v; the Conn: GOAWAY %v, RST_STREAM %v", http2.ErrCode(ce), goAway, reset)
			}
		case errors.As(werr, &se):
			if goAway != 0 || reset != http2.ErrCodeProtocol {
				t.Fatalf("the Framer refuses the stream (%v); the Conn: GOAWAY %v, RST_STREAM %v", se, goAway, reset)
			}
		case werr != nil:
			t.Fatalf("the Framer: %v", werr)
		default:
			mh := want.(*http2.MetaHeadersFrame)
			if goAway != 0 {
				t.Fatalf("the Framer takes the block; the Conn ends the connection (%v)", goAway)
			}
			if mh.Truncated != c.hb.truncated || !slices.Equal(mh.Fields, c.hb.fields) {
				t.Fatalf("the Framer takes %v (truncated %v); the Conn %v (truncated %v)", mh.Fields, mh.Truncated, c.hb.fields, c.hb.truncated)
			}
		}
	})
}

// outcome reads a Conn's output: the GOAWAY code, if it ended the connection with an
// error, and the RST_STREAM code of stream 1, if it reset it.
func outcome(t *testing.T, out []byte) (goAway, reset http2.ErrCode) {
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	fr.SetMaxReadFrameSize(1 << 24)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return goAway, reset
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goAway = f.ErrCode
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				reset = f.ErrCode
			}
		}
	}
}
