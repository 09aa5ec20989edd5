// Package cachee is the Go client of the cachee sidecar, with a fast path that reads
// the sidecar's shared-memory segment in-process.
//
// # Three ways to reach the sidecar
//
// A cachee sidecar runs beside the application, in the same pod. The application
// reaches it in one of three ways, fastest first.
//
// Shared memory, through this package. When the pod shares the sidecar's --shm
// directory (an emptyDir with medium Memory, mounted at /dev/shm/cachee in both
// containers), Get maps the segment read-only and serves hits in-process: no
// syscall, no lock, and with GetInto no allocation. Everything else (writes, misses,
// expired keys, a segment that is stale or busy) goes over gRPC:
//
//	c, err := cachee.Dial(ctx) // unix:///var/run/cachee/cachee.sock, /dev/shm/cachee
//	if err != nil { ... }
//	defer c.Close()
//	c.Set(ctx, "user:42", data, cachee.WithTTL(5*time.Minute))
//	buf := make([]byte, 0, 4096)
//	v, found, err := c.GetInto(ctx, "user:42", buf) // tens of nanoseconds on a hit
//
// gRPC, from any language: the cachee.v1.CacheService API (proto/cachee/v1) on the
// Unix socket or on localhost:6380. This package uses it for everything but hits;
// WithoutShm makes it use nothing else. Get, Set and Delete go over a connection of
// the Client's own, which speaks just those unary calls (2 allocations a Get, 5 when
// its context can be cancelled, against grpc-go's client's 85 or so) and reads the
// answer on the calling goroutine when no other call is reading; everything else,
// and everything when WithDialOptions gives grpc-go options, goes through grpc-go.
// From the shell:
//
//	grpcurl -plaintext -unix -d '{"key":"dXNlcjo0Mg=="}' /var/run/cachee/cachee.sock cachee.v1.CacheService/Get
//
// RESP, with any Redis client, on the same socket and port (the sidecar tells the
// protocols apart by their first bytes), as the article's manifest does it with
// CACHE_HOST=localhost and CACHE_PORT=6380:
//
//	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: "/var/run/cachee/cachee.sock"})
//	rdb.Set(ctx, "user:42", data, 5*time.Minute)
//
// # Hits in shared memory
//
// A Client reads a segment only while its checks pass: the file is a segment in
// state active, the sidecar holds the segment's lock, its clock lags the wall clock
// by less than WithStaleness's maxLag, and the sidecar at the gRPC target reports the
// segment's generation (so the segment and the socket are the same sidecar's). Each
// Get also checks the segment's state and generation, so a sidecar that stops or
// restarts on the same file is noticed at the next Get; one that is killed is
// noticed by the background check within its interval (20ms by default). The Client
// then reads over gRPC and maps the new segment once the sidecar is back.
//
// Hits made in shared memory count in the sidecar's statistics and eviction policy:
// the Client reports them with the RecordAccess call every 50ms, through a lossy
// buffer that keeps a sample when hits outrun it.
//
// # Failures
//
// Errors are *Error values that match sentinels with errors.Is: ErrUnavailable when
// the sidecar cannot be reached (calls then fail at once while the Client reconnects
// in the background), ErrValueTooLarge, ErrKeyTooLarge, ErrInvalidArgument,
// ErrOutOfMemory and others, mapped from the sidecar's status codes and
// google.rpc.ErrorInfo reasons. GetOrLoad is the pattern for a cache that must never
// become a dependency: a sidecar failure there is counted, not returned.
package cachee
