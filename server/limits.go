package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/tap"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// Budget is a count of bytes that the connections of all clients may hold at once:
// RESP read and reply buffers, gRPC connections and the messages of gRPC calls in
// flight. It is what keeps the process's memory bounded whatever clients do: a
// request that would take the total past the limit is refused (a RESP client is
// disconnected, a gRPC call fails UNAVAILABLE with reason OVERLOADED) instead of
// being served from memory the process was not meant to use. A nil *Budget has no
// limit.
//
// It counts reservations, not allocations: callers reserve what a connection or call
// may hold at most, or what a buffer is about to grow by, before allocating it.
type Budget struct {
	limit     int64
	used      atomic.Int64
	refused   atomic.Int64
	pressure  atomic.Bool  // set by GuardMemory: refuse everything for now
	pressured atomic.Int64 // times pressure began
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

// acquireWithin is TryAcquire, retried for up to wait while the budget is short; a
// refusal counts once.
func (b *Budget) acquireWithin(n int64, wait time.Duration) bool {
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
		if b.tryAcquire(n) {
			return true
		}
		if !time.Now().Before(deadline) {
			b.refused.Add(1)
			return false
		}
	}
}

// Release returns n bytes reserved earlier.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.used.Add(-n)
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

// Errors that access control and admission raise.
var (
	errUnauthenticated  = errors.New("server: missing or wrong bearer token")
	errOverloaded       = errors.New("server: client memory budget exhausted; try again")
	errResponseTooLarge = errors.New("server: response too large")
)

// callCosts are what each data-path call is charged against the Budget for as long
// as it runs: its worst case, since the charge is taken before its request is read.
type callCosts struct {
	small int64 // a request of at most maxRecv and an answer of at most one value
	batch int64 // BatchGet: a request of at most maxRecv and an answer of at most maxBatchResp
}

func newCallCosts(maxRecv, maxBatchResp int) callCosts {
	// A request is held as received and as decoded; an answer as built and as
	// encoded. The two rarely peak together, but the charge must cover the case
	// where they do.
	return callCosts{
		small: 2 * int64(maxRecv),
		batch: int64(maxRecv) + 2*int64(maxBatchResp),
	}
}

// MaxCallCost is the most one gRPC call may be charged against the Budget when
// messages are at most maxRecv bytes (a BatchGet, whose answer is bounded like a
// request): a budget smaller than this plus GRPCConnCost serves no BatchGet at all.
func MaxCallCost(maxRecv int) int64 {
	c := newCallCosts(maxRecv, maxRecv)
	return max(c.small, c.batch)
}

// cost is what a call of fullMethod is charged; 0 for calls that hold little (Stats,
// health, reflection) or that run long on small messages (Prewarm).
func (c callCosts) cost(fullMethod string) int64 {
	svc, method, ok := splitMethod(fullMethod)
	if !ok || svc != cacheev1.CacheService_ServiceDesc.ServiceName {
		return 0
	}
	switch method {
	case "Get", "Set", "Delete", "BatchSet", "RecordAccess":
		return c.small
	case "BatchGet":
		return c.batch
	}
	return 0
}

func splitMethod(full string) (svc, method string, ok bool) {
	full = strings.TrimPrefix(full, "/")
	i := strings.LastIndexByte(full, '/')
	if i < 0 {
		return "", "", false
	}
	return full[:i], full[i+1:], true
}

// batchRespKey carries, in a call's context, the most a BatchGet answer may hold: the
// admission charge assumed it, so the bound travels with the charge.
type batchRespKey struct{}

// maxBatchResponse is the bound on a BatchGet answer in ctx; 0 means none.
func maxBatchResponse(ctx context.Context) int {
	n, _ := ctx.Value(batchRespKey{}).(int)
	return n
}

// admission runs before each gRPC stream is created, before a byte of its request is
// read: it checks the bearer token and charges the call to the Budget, so an
// unauthenticated or over-budget call costs no more than its headers.
type admission struct {
	token        string // "" when no token is required
	budget       *Budget
	costs        callCosts
	maxBatchResp int
	rejected     func(reason string)
	lingering    atomic.Int64 // refused calls whose contexts grpc-go keeps (see refuse)
}

// tap is a grpc.InTapHandle.
func (a *admission) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if a.token != "" && !openWithoutToken(info.FullMethodName) && !bearerMatches(info.Header["authorization"], a.token) {
		// Refused by the first interceptor, not here: a stream refused here keeps its
		// context in grpc-go until its deadline (see refuse), which the client picks.
		// The call is charged below like any other while its request is read.
		ctx = context.WithValue(ctx, unauthenticatedKey{}, true)
	}
	ctx = context.WithValue(ctx, batchRespKey{}, a.maxBatchResp)
	cost := a.costs.cost(info.FullMethodName)
	if cost == 0 || a.budget == nil {
		return ctx, nil
	}
	if !a.budget.acquireWithin(cost, admitWait) {
		return a.refuse(ctx, "client_memory", errOverloaded)
	}
	// The transport cancels a stream's context when the stream ends, however it ends
	// (answered, reset, deadline, connection closed): the charge ends with it.
	context.AfterFunc(ctx, func() { a.budget.Release(cost) })
	return ctx, nil
}

// unauthenticatedKey marks, in a call's context, a call without the bearer token.
type unauthenticatedKey struct{}

// authUnary and authStream refuse the calls that admission marked unauthenticated.
func (a *admission) authUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if ctx.Value(unauthenticatedKey{}) != nil {
		a.rejected("unauthenticated")
		return nil, toStatus(errUnauthenticated)
	}
	return h(ctx, req)
}

func (a *admission) authStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if ss.Context().Value(unauthenticatedKey{}) != nil {
		a.rejected("unauthenticated")
		return toStatus(errUnauthenticated)
	}
	return h(srv, ss)
}

// refuse refuses the stream whose context is ctx.
//
// grpc-go (v1.85; grpc/grpc-go#2976) does not cancel the context of a stream that its
// InTapHandle refuses: when the call has a deadline, that context and its timer (about
// 240 bytes) live until the deadline passes, whatever becomes of the connection. A
// client that keeps making calls we refuse, with long deadlines (an application
// hammering an overloaded sidecar) would grow the heap at that rate. Three things
// bound it: each refusal takes admitWait, so one connection cannot be refused more
// than 20 times a second; admission counts the refused calls whose contexts are still
// alive; and past maxLingering, a connection that has a call refused is closed and new
// gRPC connections are refused until deadlines pass. Calls without the token are not
// refused here (see authUnary), so only clients allowed in can cause that.
func (a *admission) refuse(ctx context.Context, reason string, err error) (context.Context, error) {
	a.rejected(reason)
	if d, ok := ctx.Deadline(); ok {
		n := a.lingering.Add(1)
		// A timer of our own, rather than context.AfterFunc, which would keep the
		// stream's metadata alive with it.
		time.AfterFunc(time.Until(d), func() { a.lingering.Add(-1) })
		if n > maxLingering {
			if p, ok := peer.FromContext(ctx); ok {
				if ca, ok := p.Addr.(*connAddr); ok {
					ca.conn.Close()
				}
			}
		}
	}
	return nil, toStatus(err)
}

// admitWait is how long a call waits for client memory before it is refused. The wait
// holds up the connection's other frames too (the tap runs on its reader, under the
// transport's lock, so the connection's writes wait as well), which is the point: a
// client that sends faster than the budget frees is slowed to the pace of the calls
// that finish, instead of being refused as fast as it can send.
const admitWait = 50 * time.Millisecond

// overLingering reports whether refused calls' contexts have piled up past
// maxLingering; new gRPC connections are then refused until enough deadlines pass.
func (a *admission) overLingering() bool { return a != nil && a.lingering.Load() > maxLingering }

// maxLingering is how many refused calls' contexts may be alive before connections
// that have calls refused are closed: with our own timer, about 400 bytes each.
var maxLingering int64 = 2048 // a variable for tests

// openWithoutToken reports the methods that need no token: grpc.health.v1, because
// Kubernetes gRPC probes cannot send headers and health says nothing but SERVING or
// NOT_SERVING.
func openWithoutToken(fullMethod string) bool {
	svc, _, _ := splitMethod(fullMethod)
	return svc == "grpc.health.v1.Health"
}

// bearerMatches checks the "authorization" metadata: exactly one value, "Bearer
// <token>" (the scheme in any case, RFC 6750), compared in time that does not depend
// on how much of the token matched.
func bearerMatches(values []string, token string) bool {
	const scheme = "bearer "
	if len(values) != 1 {
		return false
	}
	h := values[0]
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
	addr    connAddr
}

func (c *admittedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// RemoteAddr is the peer's address, wrapped so that admission can find the connection
// from a stream's context (grpc-go puts it in the context's peer.Peer).
func (c *admittedConn) RemoteAddr() net.Addr {
	if c.addr.Addr == nil {
		return nil
	}
	return &c.addr
}

// connAddr is an admitted connection's remote address; String and Network are the
// underlying address's.
type connAddr struct {
	net.Addr
	conn *admittedConn
}

// admitGRPC charges a new gRPC connection, or refuses it when there are MaxConns
// already or the Budget cannot hold another one.
func (s *Server) admitGRPC(c net.Conn) (net.Conn, bool) {
	if n, max := s.grpcConns.Add(1), s.cfg.MaxConns; max > 0 && n > int64(max) {
		s.grpcConns.Add(-1)
		s.reject("max_clients", c)
		return nil, false
	}
	if s.admission.overLingering() || !s.cfg.Budget.TryAcquire(GRPCConnCost) {
		s.grpcConns.Add(-1)
		s.reject("client_memory", c)
		return nil, false
	}
	ac := &admittedConn{Conn: c, release: func() {
		s.grpcConns.Add(-1)
		s.cfg.Budget.Release(GRPCConnCost)
	}}
	ac.addr = connAddr{Addr: c.RemoteAddr(), conn: ac}
	return ac, true
}

// reject counts and logs a connection or call refused by a limit or access control.
func (s *Server) reject(reason string, c net.Conn) {
	s.rejected.WithLabelValues(reason).Inc()
	if c != nil {
		s.log.Warn("refused a connection", "reason", reason, "remote", remote(c))
	}
}

// admissionOption sets up what refuses connections and calls (the counter of refusals,
// the budget's gauges) and returns the gRPC option that admits calls.
func (s *Server) admissionOption(maxRecv int) grpc.ServerOption {
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
			Help: "Bytes of the client memory budget reserved by connections and calls in flight.",
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
	// A BatchGet answer is bounded as a request is: no message either way is larger
	// than maxRecv, so no call holds more than a few of them.
	batchResp := maxRecv
	a := &admission{
		token:        s.cfg.AuthToken,
		budget:       b,
		costs:        newCallCosts(maxRecv, batchResp),
		maxBatchResp: batchResp,
		rejected:     func(reason string) { s.rejected.WithLabelValues(reason).Inc() },
	}
	s.admission = a
	return grpc.InTapHandle(a.tap)
}
