package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	grpcprom "github.com/grpc-ecosystem/go-grpc-prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// maxRecvSlack is what a request may hold besides one key and one value: field tags,
// lengths, a TTL and a condition, with generous room.
const maxRecvSlack = 4 << 10

// DefaultMaxRecvMsgSize is the gRPC message size limit of a server whose store takes
// keys of up to maxKey bytes and values of up to maxValue: a Set of the largest key
// and value fits. A BatchGet answer is bounded by it too.
func DefaultMaxRecvMsgSize(maxKey, maxValue int) int { return maxKey + maxValue + maxRecvSlack }

var errPanic = errors.New("server: internal error")

// grpcLimits are the message limits of the gRPC server.
type grpcLimits struct {
	maxRecv int    // the message size limit
	raise   string // what raises it, for the error of a message over it
}

// buildGRPC is the last phase of New: the gRPC server, its services and what stands
// between them, and the fast path when the Config asks for it.
func (s *Server) buildGRPC(lat *Latency) {
	lim := s.grpcLimits()
	pool := newBufferPool(s.cfg.Budget)
	gate := newReadGate(s.cfg.Budget, lim.maxRecv, lim.raise, func() { s.rejected.WithLabelValues("client_memory").Inc() })
	// Counters only: a handling-time histogram would cost a clock read and another
	// label lookup per call, and with Prometheus's default buckets (5 ms and up) every
	// call of a microsecond-scale cache would land in the first bucket anyway. The
	// data-path handlers and the fast path add their calls to these series without a
	// lookup per call (fastmetrics.go).
	metrics := grpcprom.NewServerMetrics()
	fm := newFastMetrics(metrics, cacheev1.CacheService_ServiceDesc.ServiceName, unaryMethods(&cacheev1.CacheService_ServiceDesc))
	s.registry.MustRegister(fm)
	au := &auth{token: s.cfg.AuthToken, rejected: func(reason string) { s.rejected.WithLabelValues(reason).Inc() }}
	ics, unary := s.interceptors(gate, metrics, au)
	s.grpc = grpc.NewServer(append(s.transportOptions(pool, lim), ics...)...)
	s.svc = s.newService(lat, lim)
	data := s.newDataPath(gate, pool, au, fm)
	reg := registrar{Server: s.grpc, gate: gate, fast: data.handlers}
	cacheev1.RegisterCacheServiceServer(reg, s.svc)
	healthpb.RegisterHealthServer(reg, s.health)
	reflection.Register(reg)
	metrics.InitializeMetrics(s.grpc)
	if s.cfg.FastPath {
		// Requests over readCap go to grpc-go, which refuses them as it refuses any.
		s.fast = newFastPath(s, unary, data, fm, gate, readCap(lim.maxRecv))
	}
}

// grpcLimits derives the message size limit from the store's, unless the Config sets
// one.
func (s *Server) grpcLimits() grpcLimits {
	if n := s.cfg.MaxRecvMsgSize; n != 0 {
		return grpcLimits{maxRecv: n, raise: "raise --grpc-max-msg-size"}
	}
	scfg := s.st.Config()
	return grpcLimits{
		maxRecv: DefaultMaxRecvMsgSize(scfg.MaxKeySize, scfg.MaxValueSize),
		raise: fmt.Sprintf("it follows --max-value-size (%d bytes) and --max-key-size (%d bytes): raise --max-value-size, or set --grpc-max-msg-size",
			scfg.MaxValueSize, scfg.MaxKeySize),
	}
}

// transportOptions are the options of grpc-go's transport: message sizes, streams,
// flow control, the memory the server's buffers come from, keepalive.
func (s *Server) transportOptions(pool *bufferPool, lim grpcLimits) []grpc.ServerOption {
	return []grpc.ServerOption{
		experimental.BufferPool(pool),
		grpc.ForceServerCodecV2(codec{pool}),
		grpc.MaxRecvMsgSize(readCap(lim.maxRecv)), // the server's own limit is maxRecv: see readCap
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
		grpc.InitialWindowSize(grpcStreamWindow),
		grpc.InitialConnWindowSize(grpcConnWindow),
		// Calls run on long-lived workers rather than a goroutine each: a fresh
		// goroutine's stack grows by copying, which took a tenth of the server's CPU
		// time with one client calling Get in a loop. When every worker is busy,
		// grpc-go starts a goroutine for the call.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveMinTime, // pings more often than this end the connection
			PermitWithoutStream: true,             // SDKs keep idle connections alive
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second, MaxConnectionIdle: s.cfg.IdleTimeout}),
	}
}

// keepaliveMinTime is the shortest interval between a client's pings: pings more
// often end the connection (grpc-go's keepalive enforcement, and the fast path's).
const keepaliveMinTime = 5 * time.Second

// unaryChain is the unary interceptor chain in the two parts around the metrics
// interceptor, whose place the fast path gives to its own counting (fastmetrics.go).
type unaryChain struct {
	beforeMetrics, afterMetrics []grpc.UnaryServerInterceptor
}

// interceptors are the unary and stream interceptor chains. Outermost first: metrics
// and logs see the final code, which recovery makes INTERNAL on a panic; validation
// sits next to the handler. A unary request has been read (through the gate, see
// registrar) before the first runs; a stream's messages are read through it by the
// first stream interceptor. On grpc-go, the data-path methods have handlers that do
// what the chain does in one function (datapath.go), unless debug logging asks for
// every call to be logged; the fast path runs the chain for them.
func (s *Server) interceptors(gate *readGate, metrics *grpcprom.ServerMetrics, au *auth) ([]grpc.ServerOption, unaryChain) {
	scfg := s.st.Config()
	lim := limits{maxKey: scfg.MaxKeySize, maxValue: scfg.MaxValueSize}
	logger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		s.log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(func(c codes.Code) logging.Level {
			if c == codes.OK {
				return logging.LevelDebug
			}
			return logging.DefaultServerCodeToLevel(c)
		}),
	}
	recoverOpt := recovery.WithRecoveryHandlerContext(s.panicked)
	// The logging interceptor costs about 5 µs and 44 allocations a call, measured,
	// more than the whole 10% budget of a Get. Unless debug logging asks for every
	// call, the data-path RPCs skip it (their outcomes are counted per code in
	// grpc_server_handled_total; panics are logged by recovery); the others keep it,
	// so their failures are logged.
	logUnary := logging.UnaryServerInterceptor(logger, logOpts...)
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		logUnary = selector.UnaryServerInterceptor(logUnary, selector.MatchFunc(
			func(_ context.Context, c interceptors.CallMeta) bool { return !isDataPath(c.Service, c.Method) }))
	}
	unary := unaryChain{
		beforeMetrics: []grpc.UnaryServerInterceptor{au.unary},
		afterMetrics: []grpc.UnaryServerInterceptor{
			logUnary,
			recovery.UnaryServerInterceptor(recoverOpt),
			validationUnary(lim),
		},
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(slices.Concat(unary.beforeMetrics,
			[]grpc.UnaryServerInterceptor{metrics.UnaryServerInterceptor()}, unary.afterMetrics)...),
		grpc.ChainStreamInterceptor(
			gate.stream,
			au.stream,
			metrics.StreamServerInterceptor(),
			logging.StreamServerInterceptor(logger, logOpts...),
			recovery.StreamServerInterceptor(recoverOpt),
			validationStream(lim),
		),
	}, unary
}

// panicked logs a panic in a handler and returns what the call answers: INTERNAL.
func (s *Server) panicked(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in gRPC handler", "panic", p, "stack", string(debug.Stack()))
	return toStatus(errPanic)
}

// newDataPath returns what serves the data-path methods on grpc-go and on the fast
// path (datapath.go), or nil when debug logging is on: then every call is logged, and
// only the chain of interceptors does that.
func (s *Server) newDataPath(gate *readGate, pool *bufferPool, au *auth, fm *fastMetrics) *dataPath {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	scfg := s.st.Config()
	_, inPlace := s.svc.tier.(storeTier)
	return &dataPath{svc: s.svc, gate: gate, pool: pool, auth: au, fm: fm, panics: s.panicked, inPlace: inPlace,
		lim: limits{maxKey: scfg.MaxKeySize, maxValue: scfg.MaxValueSize}}
}

// newService is the cachee.v1.CacheService the server registers.
func (s *Server) newService(lat *Latency, lim grpcLimits) *service {
	tier := s.cfg.Tier
	if tier == nil {
		tier = storeTier{s.st}
	}
	return &service{
		st:        s.st,
		tier:      tier,
		lat:       lat,
		started:   s.started,
		prewarmer: s.cfg.Prewarmer,
		prewarm:   s.cfg.Prewarm,
		budget:    s.cfg.Budget,
		// A BatchGet answer is bounded as a request is: no message either way is
		// larger than maxRecv.
		maxBatchResp: lim.maxRecv,
	}
}
