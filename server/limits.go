package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Budget is a count of bytes that the connections of all clients may hold at once:
// RESP read and reply buffers, gRPC connections, and the buffers and messages of gRPC
// calls in flight. It is what keeps the process's memory bounded whatever clients do:
// a request that would take the total past the limit is refused (a RESP client is
// disconnected, a gRPC call fails UNAVAILABLE with reason OVERLOADED) instead of being
// served from memory the process was not meant to use. A nil *Budget has no limit.
//
// Most of what it counts is reserved before it is allocated: what a RESP buffer is
// about to grow by, what a gRPC answer is about to hold, the largest message a gRPC
// read may bring in. gRPC's own buffers are charged as grpc-go takes them (see
// bufferPool); those charges are never refused, so the total may pass the limit by
// what they hold, and reservations are refused until it is back under.
type Budget struct {
	limit     int64
	used      atomic.Int64
	refused   atomic.Int64
	pressure  atomic.Bool  // set by GuardMemory: refuse everything for now
	pressured atomic.Int64 // times pressure began

	// Waiting for memory to be released (see waitFreed).
	waiters atomic.Int32
	mu      sync.Mutex
	freed   chan struct{} // closed at the next Release while someone waits
}

// NewBudget returns a budget of limit bytes; limit <= 0 means no limit (nil).
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit}
}

// pressureMin is the smallest reservation refused under memory pressure: smaller ones
// (connections, first buffers) are what keeps a client served at all.
const pressureMin = 256 << 10

// TryAcquire reserves n bytes, or reports false and reserves nothing when that would
// take the total past the limit, or when n is large and the process's memory is under
// pressure (see GuardMemory).
func (b *Budget) TryAcquire(n int64) bool {
	if b.tryAcquire(n) {
		return true
	}
	b.refused.Add(1)
	return false
}

func (b *Budget) tryAcquire(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	if n >= pressureMin && b.pressure.Load() {
		return false
	}
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// tight reports whether the budget would refuse a large reservation now: under memory
// pressure, or too full to hold pressureMin more.
func (b *Budget) tight() bool {
	return b != nil && (b.pressure.Load() || b.used.Load()+pressureMin > b.limit)
}

// Charge counts n bytes that are already held, whether or not they fit: memory that
// grpc-go has taken, a message that has been read, an answer that has been built.
// Release returns them.
func (b *Budget) Charge(n int64) {
	if b != nil && n > 0 {
		b.used.Add(n)
	}
}

// Release returns n bytes reserved or charged earlier.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.used.Add(-n)
	b.wake()
}

// relieve ends memory pressure. Reservations refused only because of it may fit now,
// so their waiters try again: on an idle sidecar no Release may come to wake them
// before they give up.
func (b *Budget) relieve() {
	if b.pressure.Swap(false) {
		b.wake()
	}
}

// wake wakes those waiting for memory (see waitFreed) to try their reservations again.
func (b *Budget) wake() {
	if b.waiters.Load() > 0 {
		b.mu.Lock()
		if b.freed != nil {
			close(b.freed)
			b.freed = nil
		}
		b.mu.Unlock()
	}
}

// waitFreed returns a channel that is closed the next time memory is released or
// memory pressure ends. The caller must count itself in b.waiters first, and try its
// reservation again after taking the channel, so that a release between the two is
// not missed.
func (b *Budget) waitFreed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.freed == nil {
		b.freed = make(chan struct{})
	}
	return b.freed
}

// Used is the number of bytes reserved now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit is the budget's size; 0 for no limit.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Refused counts the reservations refused so far.
func (b *Budget) Refused() int64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}

// Pressured counts the times memory pressure began (see GuardMemory).
func (b *Budget) Pressured() int64 {
	if b == nil {
		return 0
	}
	return b.pressured.Load()
}

// GRPCConnCost is what one gRPC connection is charged against the Budget while it is
// open: grpc-go keeps a 32 KiB read buffer, a write buffer of the same size while it
// writes, an HTTP/2 framer and decoder, and three goroutines per connection.
// Measured with many idle and busy connections (see docs/security.md), the heap grew
// by 80 to 90 KiB per connection.
const GRPCConnCost = 96 << 10

// MinBudget is the smallest Budget that serves gRPC calls of messages up to maxRecv
// bytes: one connection, with a read's reservation, or an answer of the largest value
// and its encoding.
func MinBudget(maxRecv int) int64 { return GRPCConnCost + int64(max(readCap(maxRecv), 2*maxRecv)) }

// Errors that access control and the Budget raise.
var (
	errUnauthenticated  = errors.New("server: missing or wrong bearer token")
	errOverloaded       = errors.New("server: client memory budget exhausted; try again")
	errResponseTooLarge = errors.New("server: response too large")
)

// auth refuses calls without the bearer token, as the first interceptor: by then
// the request has been read like any other (and charged while it was), so a refused
// call ends like an answered one. Refusing earlier, in an InTapHandle, would leave
// the stream's context alive in grpc-go until its deadline (grpc/grpc-go#2976),
// which the client picks.
type auth struct {
	token    string // "" when no token is required
	rejected func(reason string)
}

func (a *auth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !a.allowed(ctx, info.FullMethod) {
		return nil, toStatus(errUnauthenticated)
	}
	return h(ctx, req)
}

func (a *auth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !a.allowed(ss.Context(), info.FullMethod) {
		return toStatus(errUnauthenticated)
	}
	return h(srv, ss)
}

func (a *auth) allowed(ctx context.Context, fullMethod string) bool {
	if a.token == "" || openWithoutToken(fullMethod) {
		return true
	}
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	var first string
	if len(vals) > 0 {
		first = vals[0]
	}
	return a.allowedBearer(fullMethod, first, len(vals))
}

// allowedBearer is allowed for a call with n "authorization" values, the first of
// them given: the fast path finds them in the header list without building metadata.
func (a *auth) allowedBearer(fullMethod, authorization string, n int) bool {
	if a.token == "" || openWithoutToken(fullMethod) || n == 1 && bearerMatches(authorization, a.token) {
		return true
	}
	a.rejected("unauthenticated")
	return false
}

// openWithoutToken reports the methods that need no token: grpc.health.v1, because
// Kubernetes gRPC probes cannot send headers and health says nothing but SERVING or
// NOT_SERVING.
func openWithoutToken(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// bearerMatches checks the one "authorization" value a call must have: "Bearer
// <token>" (the scheme in any case, RFC 6750), compared in time that does not depend
// on how much of the token matched.
func bearerMatches(h, token string) bool {
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return false
	}
	got := strings.TrimLeft(h[len(scheme):], " ")
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// admittedConn is a gRPC connection charged to the Budget and counted against
// MaxConns until it is closed.
type admittedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *admittedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// admitGRPC charges a new gRPC connection, or refuses it when there are MaxConns
// already or the Budget cannot hold another one.
func (s *Server) admitGRPC(c net.Conn) (net.Conn, bool) {
	if n, max := s.grpcConns.Add(1), s.cfg.MaxConns; max > 0 && n > int64(max) {
		s.grpcConns.Add(-1)
		s.reject("max_clients", c)
		return nil, false
	}
	if !s.cfg.Budget.TryAcquire(GRPCConnCost) {
		s.grpcConns.Add(-1)
		s.reject("client_memory", c)
		return nil, false
	}
	return &admittedConn{Conn: c, release: func() {
		s.grpcConns.Add(-1)
		s.cfg.Budget.Release(GRPCConnCost)
	}}, true
}

// reject counts and logs a connection or call refused by a limit or access control.
func (s *Server) reject(reason string, c net.Conn) {
	s.rejected.WithLabelValues(reason).Inc()
	if c != nil {
		s.log.Warn("refused a connection", "reason", reason, "remote", remote(c))
	}
}

// registerLimitMetrics registers the counter of refusals and the budget's gauges.
func (s *Server) registerLimitMetrics() {
	s.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cachee_rejected_total",
		Help: "Connections and calls refused, by reason: peer_credentials, unauthenticated, max_clients, client_memory.",
	}, []string{"reason"})
	for _, r := range []string{"peer_credentials", "unauthenticated", "max_clients", "client_memory"} {
		s.rejected.WithLabelValues(r)
	}
	b := s.cfg.Budget
	s.registry.MustRegister(s.rejected,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cachee_client_memory_bytes",
			Help: "Bytes of the client memory budget held by client buffers, connections and calls in flight.",
		}, func() float64 { return float64(b.Used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cachee_client_memory_limit_bytes",
			Help: "The client memory budget; 0 when unbounded.",
		}, func() float64 { return float64(b.Limit()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cachee_memory_pressure_total",
			Help: "Times the Go runtime's memory passed its mark, so that client memory was refused until it came down.",
		}, func() float64 { return float64(b.Pressured()) }),
	)
}
