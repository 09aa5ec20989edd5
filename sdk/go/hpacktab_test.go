package cachee

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// wantFields is what a block of m with a timeout of d must decode to.
func wantFields(m *h2Method, d time.Duration) []hpack.HeaderField {
	f := []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: m.path}, {Name: ":authority", Value: m.authority},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}}
	if m.token != "" {
		f = append(f, hpack.HeaderField{Name: "authorization", Value: "Bearer " + m.token, Sensitive: true})
	}
	if d >= 0 {
		f = append(f, hpack.HeaderField{Name: "grpc-timeout", Value: timeoutValue(d)})
	}
	return f
}

// hpackRun encodes blocks with one table and decodes them with one decoder, as the
// server does, and fails unless every block decodes to its fields.
type hpackRun struct {
	t   *testing.T
	tab *hpackTable
	dec *hpack.Decoder
}

func newHpackRun(t *testing.T) *hpackRun {
	return &hpackRun{t: t, tab: newHpackTable(), dec: hpack.NewDecoder(hpackDefaultTable, nil)}
}

// block encodes and decodes one call's block, and returns its length.
func (r *hpackRun) block(m *h2Method, d time.Duration) int {
	r.t.Helper()
	b := r.tab.appendHeaders(nil, m, d)
	got, err := r.dec.DecodeFull(b)
	want := wantFields(m, d)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		r.t.Fatalf("%s, %v: decoded %v %v, want %v", m.path, d, got, err, want)
	}
	return len(b)
}

// setMax is the server's SETTINGS_HEADER_TABLE_SIZE, on both sides.
func (r *hpackRun) setMax(v uint32) {
	r.dec.SetAllowedMaxDynamicTableSize(v)
	r.tab.setMax(v)
}

// A connection's blocks add the repeated fields to the server's table once, and then
// refer to them: a call of a method sent before is a few bytes.
func TestHpackTableIndexesRepeatedFields(t *testing.T) {
	r := newHpackRun(t)
	get := newH2Method("/cachee.v1.CacheService/Get", "localhost", "")
	set := newH2Method("/cachee.v1.CacheService/Set", "localhost", "tok")
	first := r.block(get, time.Second)
	again := r.block(get, 2*time.Second)
	if again >= first/3 {
		t.Errorf("the second Get's block is %d bytes, the first's %d: its fields were not indexed", again, first)
	}
	r.block(set, -1)
	r.block(get, 999*time.Millisecond)
	if n := r.block(get, -1); n != 6 {
		t.Errorf("a Get without a timeout, its fields indexed: %d bytes, want 6 (one each)", n)
	}
	s1, s2 := r.block(set, time.Hour), r.block(set, time.Hour)
	if s2 != s1 || s2 > 6+len("Bearer tok")+2+12 {
		t.Errorf("Set blocks of %d then %d bytes: the token must stay a literal, the rest indexed", s1, s2)
	}
	// The token is never added to the table.
	for f := range r.tab.at {
		if f.Name == "authorization" {
			t.Fatal("the token is in the table")
		}
	}
}

// The server may lower the table's limit: the next block empties the table, and
// fields that no longer fit are sent as literals.
func TestHpackTableFollowsTheServersLimit(t *testing.T) {
	r := newHpackRun(t)
	get := newH2Method("/cachee.v1.CacheService/Get", "localhost", "")
	r.block(get, time.Second)
	r.block(get, time.Second)
	r.setMax(100)
	r.block(get, time.Second)
	r.block(get, time.Second)
	if r.tab.size > 100 {
		t.Fatalf("the table holds %d bytes, over the server's 100", r.tab.size)
	}
	r.setMax(0)
	for range 3 {
		r.block(get, time.Second)
	}
	if r.tab.size != 0 {
		t.Fatalf("a limit of 0 still holds %d bytes", r.tab.size)
	}
	// A larger setting does not grow what the Client uses.
	r.setMax(1 << 20)
	r.block(get, time.Second)
}

// FuzzHpackTable encodes any sequence of calls and limits, and holds the server's
// decoder to each block's fields. Each input byte is one step: a call of one of the
// methods, with or without a timeout, or a new limit.
func FuzzHpackTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0xf0, 0, 1})
	f.Add([]byte{0xff, 0, 0, 5, 0xf3, 6})
	f.Fuzz(func(t *testing.T, steps []byte) {
		methods := []*h2Method{
			newH2Method("/cachee.v1.CacheService/Get", "localhost", ""),
			newH2Method("/cachee.v1.CacheService/Set", "localhost", "t0k"),
			newH2Method("/cachee.v1.CacheService/Delete", "sidecar.example:6380", ""),
			newH2Method("/cachee.v1.CacheService/"+string(make([]byte, 300)), "localhost", ""),
		}
		r := newHpackRun(t)
		for _, s := range steps {
			if s >= 0xf0 {
				r.setMax(uint32(s-0xf0) * 120)
				continue
			}
			d := time.Duration(-1)
			if s&0x10 != 0 {
				d = time.Duration(s) * 37 * time.Millisecond
			}
			r.block(methods[int(s)%len(methods)], d)
		}
	})
}
