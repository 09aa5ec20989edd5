// Package h2fast serves gRPC unary calls over HTTP/2 without a goroutine per call: the
// server side of one HTTP/2 connection as a state machine that is fed the bytes read
// from the client and leaves in its output the bytes to write back. Whoever owns the
// socket (an event loop) reads, calls Feed, and writes Output; nothing here blocks,
// starts a goroutine or touches a socket, which is what lets a test drive a
// connection byte by byte, and a fuzzer feed it anything.
//
// The calls a Handler routes to itself are decoded and answered on the goroutine that
// fed the request, in the same batch of output as the other answers of that read: one
// read and one write for many calls. Every other stream (another service, a streaming
// method, a request that is not plainly one uncompressed message) is relayed to a
// backend HTTP/2 server, grpc-go's, over a connection of its own that the Conn speaks
// as a client (see Backend): the backend answers it exactly as it would have answered
// the client directly.
//
// It does HTTP/2 (RFC 9113) as a server must: connection and stream flow control in
// both directions, SETTINGS and their acknowledgement, PING, GOAWAY and a two-step
// graceful shutdown, RST_STREAM, CONTINUATION, limits on header lists and concurrent
// streams, and grpc-go's defences against abuse: pings more often than a minimum
// interval end the connection (ENHANCE_YOUR_CALM, "too_many_pings"), a client that
// does not read its answers stops being read (which bounds SETTINGS and PING floods),
// and streams the client resets while their handler still runs keep counting against
// the concurrent-stream limit, so resetting streams cannot start more work than the
// limit allows (CVE-2023-44487). Frames are read and written by golang.org/x/net/http2's
// Framer and header blocks coded by its hpack package.
package h2fast
