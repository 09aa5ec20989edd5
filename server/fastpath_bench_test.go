package server

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/h2fast"
	"github.com/cachee/cachee/store"
)

// BenchmarkFastGet is the server's side of a fast-path Get alone, without sockets: the
// request's frames (as grpc-go's client sends them, its headers indexed by hpack after
// the first call) fed to the connection, the answer taken from its output.
func BenchmarkFastGet(b *testing.B) {
	st, err := store.Open(store.Config{MaxMemory: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{FastPath: true, Budget: NewBudget(64 << 20)}, st)
	if err != nil {
		b.Fatal(err)
	}
	key := []byte("bench:hot")
	st.Set(key, make([]byte, 100), store.SetOptions{})
	fc := &fastConn{f: s.fast, base: peer.NewContext(context.Background(), &peer.Peer{})}
	fc.c = h2fast.NewConn(s.fast.cfg, fc)
	var in, hb bytes.Buffer
	fr := http2.NewFramer(&in, nil)
	enc := hpack.NewEncoder(&hb)
	msg, _ := proto.Marshal(&cacheev1.GetRequest{Key: key})
	body := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	answer, _ := proto.Marshal(&cacheev1.GetResponse{Found: true, Value: make([]byte, 100)})
	answerLen := 5 + len(answer)
	in.WriteString(http2.ClientPreface)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30)
	fc.c.Feed(in.Bytes())
	in.Reset()
	id := uint32(1)
	request := func() []byte {
		in.Reset()
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/cachee.v1.CacheService/Get"},
			{":authority", "localhost"}, {"content-type", "application/grpc"}, {"user-agent", "grpc-go/1.85.0"}, {"te", "trailers"},
			{"grpc-timeout", strconv.Itoa(29_999_000+int(id%1000)) + "u"}} { // as the Go SDK's 30 s deadline, a little less each time
			// As the Go SDK sends them: the fields in the table after the first call,
			// and grpc-timeout's value a literal that is not added.
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: f[0] == "grpc-timeout" && id > 1})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true})
		fr.WriteData(id, true, body)
		if id%2048 == 1 {
			fr.WriteWindowUpdate(0, uint32(1024*answerLen)) // as a client returns what it read: 1,024 answers' DATA
		}
		id += 2
		return in.Bytes()
	}
	reqs := make([][]byte, b.N+1)
	for i := range reqs {
		reqs[i] = append([]byte(nil), request()...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := fc.c.Feed(reqs[i]); err != nil {
			b.Fatal(err)
		}
		out := fc.c.Output()
		if i == 0 {
			check(b, out)
		}
		fc.c.Wrote(len(out))
	}
}

// check fails unless out holds a successful answer.
func check(b *testing.B, out []byte) {
	rf := http2.NewFramer(nil, bytes.NewReader(out))
	rf.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var fields []string
	for {
		f, err := rf.ReadFrame()
		if err != nil {
			break
		}
		if mh, ok := f.(*http2.MetaHeadersFrame); ok {
			for _, hf := range mh.Fields {
				fields = append(fields, hf.Name+"="+hf.Value)
			}
		}
	}
	if !slices.Contains(fields, "grpc-status=0") {
		b.Fatalf("answer: %v", fields)
	}
}
