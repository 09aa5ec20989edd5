package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
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
// between them.
func (s *Server) buildGRPC(lat *latency) {
	lim := s.grpcLimits()
	pool := newBufferPool(s.cfg.Budget)
	gate := newReadGate(s.cfg.Budget, lim.maxRecv, lim.raise, func() { s.rejected.WithLabelValues("client_memory").Inc() })
	// Counters only: a handling-time histogram would cost a clock read and another
	// label lookup per call, and with Prometheus's default buckets (5 ms and up) every
	// call of a microsecond-scale cache would land in the first bucket anyway.
	metrics := newGRPCMetrics(s.registry)
	au := &auth{token: s.cfg.AuthToken, rejected: func(reason string) { s.rejected.WithLabelValues(reason).Inc() }}
	opts := append(s.transportOptions(pool, lim), s.interceptors(gate, metrics, au)...)
	s.grpc = grpc.NewServer(opts...)
	s.svc = s.newService(lat, lim)
	reg := registrar{Server: s.grpc, gate: gate, metrics: metrics, fast: s.dataPathHandlers(gate, pool, au)}
	cacheev1.RegisterCacheServiceServer(reg, s.svc)
	healthpb.RegisterHealthServer(reg, s.health)
	reflection.Register(reg)
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
			MinTime:             5 * time.Second, // pings more often than this end the connection
			PermitWithoutStream: true,            // SDKs keep idle connections alive
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second, MaxConnectionIdle: s.cfg.IdleTimeout}),
	}
}

// interceptors are the unary and stream interceptor chains. Outermost first: metrics
// and logs see the final code, which recovery makes INTERNAL on a panic; validation
// sits next to the handler. A unary request has been read (through the gate, see
// registrar) before the first runs; a stream's messages are read through it by the
// first stream interceptor. The data-path methods have handlers that do what the
// chain does, in one function (datapath.go), unless debug logging asks for every call
// to be logged.
func (s *Server) interceptors(gate *readGate, metrics *grpcMetrics, au *auth) []grpc.ServerOption {
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
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(
			au.unary,
			metrics.unary,
			logging.UnaryServerInterceptor(logger, logOpts...),
			recovery.UnaryServerInterceptor(recoverOpt),
			validationUnary(lim),
		),
		grpc.ChainStreamInterceptor(
			gate.stream,
			au.stream,
			metrics.stream,
			logging.StreamServerInterceptor(logger, logOpts...),
			recovery.StreamServerInterceptor(recoverOpt),
			validationStream(lim),
		),
	}
}

// panicked logs a panic in a handler and returns what the call answers: INTERNAL.
func (s *Server) panicked(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in gRPC handler", "panic", p, "stack", string(debug.Stack()))
	return toStatus(errPanic)
}

// dataPathHandlers returns what gives the data-path methods their own handlers
// (datapath.go), or nil handlers when debug logging is on: the logging interceptor,
// which logs every call then, costs about 5 µs and 44 allocations a call, and so
// only the chain of interceptors serves them. Without it, their outcomes are counted
// per code in grpc_server_handled_total and panics are logged.
func (s *Server) dataPathHandlers(gate *readGate, pool *bufferPool, au *auth) func(string, *methodCounters) grpc.MethodHandler {
	scfg := s.st.Config()
	_, inPlace := s.svc.tier.(storeTier)
	d := &dataPath{svc: s.svc, gate: gate, pool: pool, auth: au, panics: s.panicked, inPlace: inPlace,
		lim: limits{maxKey: scfg.MaxKeySize, maxValue: scfg.MaxValueSize}}
	debugLog := s.log.Enabled(context.Background(), slog.LevelDebug)
	return func(fullMethod string, c *methodCounters) grpc.MethodHandler {
		svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
		if debugLog || !isDataPath(svc, method) {
			return nil
		}
		return d.handler(fullMethod, c, dataMethods[method])
	}
}

// newService is the cachee.v1.CacheService the server registers.
func (s *Server) newService(lat *latency, lim grpcLimits) *service {
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
