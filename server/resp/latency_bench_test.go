package resp

import (
	"testing"
	"time"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// BenchmarkProcessLatency is the event loop's work per command, without its system
// calls, with and without RESP latency sampling into the server's summary: a pipeline
// of 16 GETs of a present key, as redis-benchmark -P 16 sends. Without the system
// calls the work per command is smallest, so the sampling's share is largest. Compare
// instruction counts under callgrind (docs/performance.md):
//
//	go test -c -o resp.test ./server/resp
//	valgrind --tool=callgrind ./resp.test -test.run='^$' -test.bench=ProcessLatency/off -test.benchtime=160000x
func BenchmarkProcessLatency(b *testing.B) {
	for _, tc := range []struct {
		name string
		lat  func(time.Duration)
	}{{"off", nil}, {"on", server.NewLatency().Observe}} {
		b.Run(tc.name, func(b *testing.B) {
			s := testServer(b, Config{Latency: tc.lat})
			if _, err := s.st.Set([]byte("key:000000000042"), make([]byte, 100), store.SetOptions{}); err != nil {
				b.Fatal(err)
			}
			cl := newClient(s, nil)
			var req []byte
			for range 16 {
				req = append(req, "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n"...)
			}
			b.ResetTimer()
			for range b.N / 16 {
				cl.makeRoom()
				cl.wi += copy(cl.in[cl.wi:], req)
				cl.process()
				cl.w.b = cl.w.b[:0]
			}
		})
	}
}
