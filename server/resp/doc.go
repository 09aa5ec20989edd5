// Package resp serves the Redis protocol (RESP2, and RESP3 after HELLO 3) over a
// store.Store, so that existing Redis clients (redis-cli, redis-py, go-redis,
// redis-benchmark) work against cachee unchanged.
//
// # Serving connections
//
// The listeners live in package server: they detect the protocol of a new connection
// and hand RESP connections to (*Server).ServeConn with the bytes they already read.
// On Linux, TCP and Unix connections are taken over by the Server's epoll event loops
// (ServeConn registers the socket and returns at once); any other net.Conn, and every
// connection when Config.EventLoops is negative, is served by its own goroutine
// (ServeConn returns when the connection ends). Both run the same request handling and
// pass the same tests.
//
// The event loop is the default because it measured cheaper: with redis-benchmark -c 50
// -d 100 on 2 CPUs, without pipelining, the server spent about 7.6 µs of CPU per
// request over TCP and 4.7 µs over a Unix socket with one event loop, against 10.3 µs
// and 7.0 µs with a goroutine per connection (redis-server: 7.0 µs and 4.6 µs). A
// goroutine per connection pays for the scheduler parking and waking a goroutine on
// every request. Run `go run ./bench/resp -modes loop,goroutine` to measure again.
//
// The Server owns every connection given to ServeConn, also after ServeConn returns.
// Shutdown drains them (package server calls it at SIGTERM, as server.ConnHandler
// requires): no new clients are admitted; each connection is served until it has
// nothing in flight, then its sending side is closed and what the client still sends
// is dropped until it closes (see lingerQuiet), so replies already sent are never lost
// to a reset. Close stops at once.
//
// Requests are parsed in place in the read buffer, run in order, and all replies to one
// read leave in one write. Pipelined SETs without options are stored with one
// store.SetMany per read (one lock, clock read and read-buffer drain for the lot); GET
// and MGET read the store without locks, and allocate nothing. Replies that the socket does not take wait while reading
// goes on (a client may write a whole pipeline before it reads any reply); past
// Config.MaxOutput of unread replies the client is disconnected, as Redis disconnects
// one past its output buffer hard limit.
//
// # Limits
//
// Every buffer a client holds is bounded: a request by Config.MaxRequest, unread
// replies by Config.MaxOutput (one command's reply included: an MGET that would build
// more stops building and disconnects), parser slots and queued MULTI commands by the
// request limit, and all clients' buffers together by Config.Memory, a budget shared
// with the gRPC side. A client that would take any of them past its bound is
// disconnected, and INFO stats counts it (client_query_buffer_limit_disconnections,
// client_output_buffer_limit_disconnections, evicted_clients). Config.IdleTimeout
// closes clients that send nothing, as Redis's timeout.
//
// # Transactions
//
// MULTI queues commands (copying their arguments) and EXEC runs the queue inside one
// store.Atomic, so no other write interleaves and lock-free readers see all of it or
// none of it. KEYS and SCAN walk the store under its own lock and cannot run inside a
// store transaction: a queue holding them runs as several transactions, split around
// them.
//
// WATCH aborts EXEC (a null reply) if a watched key was written since: every RESP
// write marks the clients watching its key (as Redis does), and WATCH also records
// each key's value hash and expiry, which EXEC compares under its own lock, so writes
// that never pass through this package (gRPC, other processes, expiry, eviction)
// abort it too.
//
// # L2
//
// With Config.L2, misses read through from a central Redis and, with write-through,
// writes run there first; a command that needs L2 parks its connection (the event
// loop serves the others meanwhile) and resumes it when L2 answers. l2.go lists what
// each command does, and docs/l2.md the whole tier.
//
// # Differences from Redis
//
//   - One database: SELECT 0 is accepted, other indexes get "ERR DB index is out of
//     range"; CONFIG GET databases answers 1.
//   - Empty keys, and keys longer than the store's MaxKeySize, cannot be stored:
//     writes get an -ERR, reads answer as for a missing key.
//   - A bulk string may not exceed Config.MaxBulk (by default the store's largest value
//     or key), where Redis allows 512 MB: larger is "Protocol error: invalid bulk
//     length N: over the limit of M bytes (--max-value-size)", and the rest of that
//     request (up to 512 MB an argument) is read and dropped before the connection
//     closes, so that a client still writing it reads the error instead of a reset.
//     Values the store cannot hold get "string exceeds maximum allowed size".
//   - Expiry times past the year 10000 are "invalid expire time" (the store keeps
//     milliseconds in 48 bits).
//   - An inline or count line longer than 64 KiB is refused even when its end has
//     arrived (Redis's answer depends on how much one read brought in).
//   - An inline request with a NUL byte before its line end runs up to the NUL; Redis
//     7.0 looks for the line end with strchr, which stops at the NUL, and so waits
//     for more until the line passes 64 KiB.
//   - INCRBYFLOAT computes with 64-bit mantissas as x86-64 Redis's long double does,
//     and prints as Redis does.
//   - HELLO ... SETNAME takes effect only after authentication succeeds (Redis 7.0 set
//     the name first; 7.2 fixed that).
//   - MSET is atomic for readers but not all-or-nothing when the store runs out of
//     memory part way (Redis refuses it up front).
//   - Normal clients have an output buffer limit (Config.MaxOutput; Redis's default
//     for them is none), and the client memory budget is on by default in the binary
//     (Redis's maxmemory-clients is off by default). A new client that the budget
//     cannot hold is refused with "ERR client memory limit reached".
//   - With an L2 and write-through, MULTI/EXEC runs in L2 and WATCH is refused;
//     FLUSHDB and FLUSHALL flush only the local L1.
//   - INFO keyspace reports avg_ttl=0 (the store keeps no running TTL average);
//     CONFIG SET is refused; CLIENT LIST's buffer fields are 0.
package resp
