package h2fast_test

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/cachee/cachee/server/h2fast"
)

// seedFrames are a client's frames for the corpus: a call, pings, settings, window
// updates, a header block in CONTINUATION pieces, a reset, a relayed stream.
func seedFrames() [][]byte {
	var seeds [][]byte
	var buf, hb bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	enc := hpack.NewEncoder(&hb)
	block := func(path string) []byte {
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", "x"},
			{"content-type", "application/grpc"}, {"te", "trailers"}, {"grpc-timeout", "1S"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	take := func() {
		seeds = append(seeds, append([]byte(nil), buf.Bytes()...))
		buf.Reset()
		enc = hpack.NewEncoder(&hb) // each seed is a connection of its own
	}
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(checkPath), EndHeaders: true})
	fr.WriteData(1, true, []byte{0, 0, 0, 0, 2, 10, 0})
	take()
	fr.WriteSettings()
	fr.WritePing(false, [8]byte{1})
	fr.WriteWindowUpdate(0, 1000)
	fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	take()
	fr.WriteSettings()
	b := block(checkPath)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:3]})
	fr.WriteContinuation(1, true, b[3:])
	fr.WriteData(1, false, []byte{0, 0, 0})
	fr.WriteRSTStream(1, http2.ErrCodeCancel)
	take()
	fr.WriteSettings()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block("/other/Method"), EndHeaders: true})
	fr.WriteData(3, true, []byte{0, 0, 0, 0, 0})
	fr.WritePriority(5, http2.PriorityParam{StreamDep: 5})
	take()
	return seeds
}

// FuzzConn feeds a Conn a client's bytes after the preface, in two pieces: whatever
// they are, it must not panic, must stop at a GOAWAY when it fails, and must give back
// every byte it charged to the memory budget once closed.
func FuzzConn(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s, uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		m := &budget{limit: 1 << 20}
		c := h2fast.NewConn(h2fast.Config{Memory: m, MaxRecvMsgSize: 1 << 16}, &checkHandler{})
		c.Feed([]byte(http2.ClientPreface))
		at := min(int(split), len(in))
		for _, p := range [][]byte{in[:at], in[at:]} {
			if err := c.Feed(p); err != nil {
				break
			}
			c.Wrote(len(c.Output()))
			for _, b := range c.Unattached() {
				b.Wrote(len(b.Output()))
			}
		}
		c.Close()
		if m.used.Load() != 0 {
			t.Fatalf("%d bytes of the budget still held after Close", m.used.Load())
		}
	})
}

// FuzzBackend feeds a relayed stream's backend anything: the Conn must survive it.
func FuzzBackend(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		m := &budget{limit: 1 << 20}
		c := h2fast.NewConn(h2fast.Config{Memory: m}, &checkHandler{})
		seeds := seedFrames()
		c.Feed(append([]byte(http2.ClientPreface), seeds[len(seeds)-1]...))
		bs := c.Unattached()
		if len(bs) != 1 {
			t.Fatalf("%d backends for one relayed stream", len(bs))
		}
		bs[0].Feed(in)
		c.Wrote(len(c.Output()))
		bs[0].Wrote(len(bs[0].Output()))
		c.Close()
		if m.used.Load() != 0 {
			t.Fatalf("%d bytes of the budget still held after Close", m.used.Load())
		}
	})
}
