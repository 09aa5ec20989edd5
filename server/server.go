// Package server serves a store on one Unix socket and one TCP port: connections that
// open with the HTTP/2 preface get gRPC (cachee.v1.CacheService, grpc.health.v1 and
// server reflection), all others go to a ConnHandler (the RESP shim). It also serves
// /health and /ready over HTTP and Prometheus metrics on /metrics. Store errors become
// status codes in one place, toStatus.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	grpcprom "github.com/grpc-ecosystem/go-grpc-prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

// maxRecvSlack is what a request may hold besides one key and one value: field tags,
// lengths, a TTL and a condition, with generous room.
const maxRecvSlack = 4 << 10

// closedChan is a channel that is closed.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// keepaliveMinTime is the shortest interval between a client's pings: pings more
// often end the connection (grpc-go's keepalive enforcement, and the fast path's).
const keepaliveMinTime = 5 * time.Second

var errPanic = errors.New("server: internal error")

// Server serves one store. Create it with New, bind with Listen, then Serve until the
// context ends; Serve drains and returns.
type Server struct {
	cfg      Config
	st       *store.Store
	log      *slog.Logger
	started  time.Time
	ready    Readiness
	draining atomic.Bool
	serving  atomic.Bool

	grpc     *grpc.Server
	health   *health.Server
	healthMu sync.Mutex // orders health updates that follow readiness
	registry *prometheus.Registry
	svc      *service

	sock                *unixSocket
	tcp                 net.Listener
	grpcLn              *connListener
	httpLn, metricsLn   net.Listener
	httpSrv, metricsSrv *http.Server

	acceptors sync.WaitGroup // accept loops
	routes    sync.WaitGroup // one per accepted connection until gRPC takes it or its handler returns

	mu      sync.Mutex
	conns   map[net.Conn]bool // connections being sniffed (false) or with the ConnHandler (true)
	closing bool

	fast      *fastPath              // nil: every gRPC connection goes to grpc-go
	grpcConns atomic.Int64           // open gRPC connections, against MaxConns
	rejected  *prometheus.CounterVec // connections and calls refused, by reason
}

// New builds a server for st, which must be open and stays the caller's to close after
// Serve returns.
func New(cfg Config, st *store.Store) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		st:       st,
		log:      cfg.Logger,
		started:  time.Now(),
		health:   health.NewServer(),
		registry: prometheus.NewRegistry(),
		conns:    make(map[net.Conn]bool),
	}
	// notify first, so that grpc.health.v1 (SERVING when created) follows the first hold.
	s.ready.notify = s.followReadiness
	s.ready.Hold("serving", "starting")

	lat := newLatency()
	// Counters only: the handling-time histogram would cost a clock read and another
	// label lookup per call, and with Prometheus's default buckets (5 ms and up) every
	// call of a microsecond-scale cache would land in the first bucket anyway.
	grpcMetrics := grpcprom.NewServerMetrics()
	var grpcCollector prometheus.Collector = grpcMetrics
	var fm *fastMetrics
	if cfg.FastPath {
		// The fast path adds its own calls to these series (see fastmetrics.go).
		fm = newFastMetrics(grpcMetrics, cacheev1.CacheService_ServiceDesc.ServiceName, unaryMethods(&cacheev1.CacheService_ServiceDesc))
		grpcCollector = fm
	}
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStoreCollector(st),
		lat.summary,
		grpcCollector,
	)

	scfg := st.Config()
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
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		s.log.ErrorContext(ctx, "panic in gRPC handler", "panic", p, "stack", string(debug.Stack()))
		return toStatus(errPanic)
	})

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
	maxRecv := cfg.MaxRecvMsgSize
	if maxRecv == 0 {
		maxRecv = scfg.MaxKeySize + scfg.MaxValueSize + maxRecvSlack
	}
	s.registerLimitMetrics()
	pool := newBufferPool(cfg.Budget)
	gate := &readGate{budget: cfg.Budget, maxRecv: int64(maxRecv), refused: func() { s.rejected.WithLabelValues("client_memory").Inc() }}
	au := &auth{token: cfg.AuthToken, rejected: func(reason string) { s.rejected.WithLabelValues(reason).Inc() }}
	// The fast path runs the same interceptors around its calls, but counts them in
	// fm where grpcMetrics's interceptor stands (see fastpath.go).
	beforeMetrics := []grpc.UnaryServerInterceptor{au.unary}
	afterMetrics := []grpc.UnaryServerInterceptor{
		logUnary,
		recovery.UnaryServerInterceptor(recoverOpt),
		validationUnary(lim),
	}
	unary := slices.Concat(beforeMetrics, []grpc.UnaryServerInterceptor{grpcMetrics.UnaryServerInterceptor()}, afterMetrics)
	s.grpc = grpc.NewServer(
		experimental.BufferPool(pool),
		grpc.ForceServerCodecV2(codec{pool}),
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.InitialWindowSize(grpcStreamWindow),
		grpc.InitialConnWindowSize(grpcConnWindow),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveMinTime, // pings more often than this end the connection
			PermitWithoutStream: true,             // SDKs keep idle connections alive
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second, MaxConnectionIdle: cfg.IdleTimeout}),
		// Outermost first: metrics and logs see the final code, which recovery makes
		// INTERNAL on a panic; validation sits next to the handler. A unary request
		// has been read (through the gate, see gatedRegistrar) before the first runs.
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(
			gate.stream,
			au.stream,
			grpcMetrics.StreamServerInterceptor(),
			logging.StreamServerInterceptor(logger, logOpts...),
			recovery.StreamServerInterceptor(recoverOpt),
			validationStream(lim),
		),
	)
	tier := cfg.Tier
	if tier == nil {
		tier = storeTier{st}
	}
	s.svc = &service{
		st:        st,
		tier:      tier,
		lat:       lat,
		started:   s.started,
		prewarmer: cfg.Prewarmer,
		prewarm:   cfg.Prewarm,
		budget:    cfg.Budget,
		// A BatchGet answer is bounded as a request is: no message either way is
		// larger than maxRecv.
		maxBatchResp: maxRecv,
	}
	if cfg.FastPath {
		s.fast = newFastPath(s, beforeMetrics, fm, afterMetrics, gate, maxRecv, cfg.Tier != nil)
	}
	reg := gatedRegistrar{s.grpc, gate}
	cacheev1.RegisterCacheServiceServer(reg, s.svc)
	healthpb.RegisterHealthServer(reg, s.health)
	reflection.Register(reg)
	grpcMetrics.InitializeMetrics(s.grpc)
	return s, nil
}

// isDataPath reports whether a method is one of the cache's per-key RPCs, which
// applications call at high rates.
func isDataPath(service, method string) bool {
	if service != cacheev1.CacheService_ServiceDesc.ServiceName {
		return false
	}
	switch method {
	case "Get", "Set", "Delete", "BatchGet", "BatchSet", "RecordAccess":
		return true
	}
	return false
}

// Readiness is the gate behind /ready, for other parts to hold (prewarm, hit rate).
func (s *Server) Readiness() *Readiness { return &s.ready }

// Registry is the Prometheus registry /metrics serves, for other parts' metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Listen binds the socket, the TCP port and the HTTP ports.
func (s *Server) Listen() (err error) {
	var closers []func()
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
		}
	}()
	if s.sock, err = listenUnix(s.cfg.Socket); err != nil {
		return fmt.Errorf("socket %s: %w", s.cfg.Socket, err)
	}
	closers = append(closers, func() { s.sock.Close(); s.sock.remove() })
	for _, l := range []struct {
		ln   *net.Listener
		addr string
	}{{&s.tcp, s.cfg.Addr}, {&s.httpLn, s.cfg.HTTPAddr}, {&s.metricsLn, s.cfg.MetricsAddr}} {
		if *l.ln, err = net.Listen("tcp", l.addr); err != nil {
			return err
		}
		closers = append(closers, func() { (*l.ln).Close() })
	}
	s.grpcLn = newConnListener(s.sock.Addr())
	return nil
}

// Addrs are the addresses a listening server is bound to.
type Addrs struct {
	Socket, TCP, HTTP, Metrics string
}

// Addrs reports where the server listens; valid after Listen.
func (s *Server) Addrs() Addrs {
	return Addrs{
		Socket:  s.sock.path,
		TCP:     s.tcp.Addr().String(),
		HTTP:    s.httpLn.Addr().String(),
		Metrics: s.metricsLn.Addr().String(),
	}
}

// Serve serves until ctx ends, then drains: health turns NOT_SERVING and /ready 503,
// the listeners close, and in-flight calls get the grace period to finish. It returns
// nil after a clean drain, or the error that stopped a listener early.
func (s *Server) Serve(ctx context.Context) error {
	if s.grpcLn == nil {
		return errors.New("server: Serve before Listen")
	}
	errc := make(chan error, 3)
	go func() {
		if err := s.grpc.Serve(s.grpcLn); err != nil {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	}()
	s.httpSrv = &http.Server{Handler: s.healthMux(), ReadHeaderTimeout: 10 * time.Second}
	s.metricsSrv = &http.Server{Handler: s.metricsMux(), ReadHeaderTimeout: 10 * time.Second}
	for _, h := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{s.httpSrv, s.httpLn}, {s.metricsSrv, s.metricsLn}} {
		go func() {
			if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http %s: %w", h.ln.Addr(), err)
			}
		}()
	}
	s.acceptors.Add(2)
	go s.accept(s.sock)
	go s.accept(s.tcp)

	s.health.SetServingStatus(cacheev1.CacheService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	prewarmDone := s.startupPrewarm()
	defer func() { <-prewarmDone }()
	gateCtx, stopGate := context.WithCancel(ctx)
	defer stopGate()
	s.gateOnHitRate(gateCtx)
	s.serving.Store(true)
	s.ready.Release("serving") // grpc.health.v1 follows (see followReadiness)
	a := s.Addrs()
	s.log.Info("serving", "socket", a.Socket, "addr", a.TCP, "http", a.HTTP, "metrics", a.Metrics,
		"segment", s.st.SegmentPath(), "resp", s.cfg.ConnHandler != nil)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		s.log.Error("listener failed; shutting down", "err", err)
	}
	s.shutdown()
	return err
}

// followReadiness makes grpc.health.v1's server-wide status ("") say what /ready says:
// SERVING only while no condition holds readiness. It recomputes from the current
// state under its own lock, so concurrent changes cannot leave a stale status behind.
// After shutdown began, the health server ignores it (Shutdown pins NOT_SERVING).
//
// The status of cachee.v1.CacheService itself says whether the API answers, which it
// does from the moment the listeners accept until the drain, warm or not: a startup or
// liveness probe asks for that name, a readiness probe for "".
func (s *Server) followReadiness() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok, _ := s.ready.Ready(); ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
}

// startupPrewarm runs the prewarm that PrewarmAtStart asks for in the background,
// holding readiness until it ends. It takes the service's one prewarm slot, so the
// Prewarm RPC answers PREWARM_RUNNING meanwhile. The returned channel closes when it
// is over.
func (s *Server) startupPrewarm() <-chan struct{} {
	done := make(chan struct{})
	opts := s.cfg.Prewarm
	if !s.cfg.PrewarmAtStart || s.cfg.Prewarmer == nil || opts.Keys == 0 || !s.svc.warming.CompareAndSwap(false, true) {
		close(done)
		return done
	}
	src := RedactURL(opts.Source)
	if src == "" {
		src = "L2"
	}
	s.ready.Hold("prewarm", fmt.Sprintf("loading up to %d keys from %s", opts.Keys, src))
	go func() {
		defer close(done)
		defer s.ready.Release("prewarm")
		defer s.svc.warming.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
		defer cancel()
		c, err := s.cfg.Prewarmer.Prewarm(ctx, opts, func(PrewarmCounts) {})
		attrs := []any{"source", src, "requested", c.Requested, "loaded", c.Loaded,
			"skipped", c.Skipped, "failed", c.Failed, "elapsed", c.Elapsed}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			s.log.Warn("startup prewarm ran out of time; serving with what it loaded", append(attrs, "timeout", opts.Timeout)...)
		case err != nil:
			s.log.Warn("startup prewarm failed; serving without it", append(attrs, "err", err)...)
		default:
			s.log.Info("startup prewarm done", attrs...)
		}
	}()
	return done
}

// RedactURL hides the user information of a URL (a password) for logs and errors.
func RedactURL(u string) string {
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "xxxxx" + u[at:]
		}
	}
	return u
}

// phase names the server's state for /health.
func (s *Server) phase() string {
	switch {
	case s.draining.Load():
		return "draining"
	case s.serving.Load():
		return "ok"
	}
	return "starting"
}

func (s *Server) accept(ln net.Listener) {
	defer s.acceptors.Done()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "addr", ln.Addr().String(), "err", err, "after", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if !s.track(c, false) {
			c.Close()
			continue
		}
		s.routes.Add(1)
		go s.route(c)
	}
}

// track records c as being sniffed or handled; false means the server is closing.
func (s *Server) track(c net.Conn, handled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = handled
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// route tells gRPC from everything else by the first bytes, in the connection's own
// goroutine and under a read deadline, so a slow or silent client holds up no one.
func (s *Server) route(c net.Conn) {
	defer s.routes.Done()
	if ok, why := s.peerAllowed(c); !ok {
		s.untrack(c)
		c.Close()
		s.rejected.WithLabelValues("peer_credentials").Inc()
		s.log.Warn("refused a connection on the socket", "reason", why)
		return
	}
	var buf [len(h2Preface)]byte
	c.SetReadDeadline(time.Now().Add(s.cfg.DetectTimeout))
	n, isHTTP2, err := sniff(c, buf[:])
	if err != nil {
		s.untrack(c)
		c.Close()
		s.log.Debug("connection closed before its protocol was known", "err", err)
		return
	}
	c.SetReadDeadline(time.Time{})
	if isHTTP2 {
		s.untrack(c)
		ac, ok := s.admitGRPC(c)
		if !ok {
			c.Close()
			return
		}
		if s.fast != nil && s.fast.serve(c, ac, buf[:n]) {
			return
		}
		if !s.grpcLn.push(&replayConn{Conn: ac, pending: buf[:n]}) {
			ac.Close()
		}
		return
	}
	if s.cfg.ConnHandler == nil {
		s.untrack(c)
		c.Close()
		why := s.cfg.NoConnHandlerReason
		if why == "" {
			why = "no RESP handler is configured"
		}
		s.log.Warn("closed a connection that is not gRPC: "+why, "remote", remote(c), "first_bytes", string(buf[:n]))
		return
	}
	if !s.track(c, true) {
		s.untrack(c)
		c.Close()
		return
	}
	defer func() {
		s.untrack(c)
		c.Close()
	}()
	s.cfg.ConnHandler.ServeConn(c, buf[:n])
}

// remote names a peer for logs; Unix socket peers have no address.
func remote(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return c.LocalAddr().Network()
}

// shutdown drains: see Serve.
func (s *Server) shutdown() {
	grace := s.cfg.GracePeriod
	s.log.Info("draining", "grace", grace)
	s.draining.Store(true)
	s.ready.Hold("serving", "draining")
	s.health.Shutdown() // NOT_SERVING, also for Watch streams already open

	s.sock.Close()
	s.sock.remove()
	s.tcp.Close()
	s.acceptors.Wait()

	s.mu.Lock()
	s.closing = true
	for c, handled := range s.conns {
		if !handled {
			c.Close() // still sniffing: nothing in flight yet
		}
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	grpcDone := make(chan struct{})
	var fastDone <-chan struct{} = closedChan
	if s.fast != nil {
		fastDone = s.fast.drain() // GOAWAY on every fast-path connection; calls in flight finish
	}
	go func() {
		s.grpc.GracefulStop() // closes grpcLn, sends GOAWAY, waits for calls in flight
		close(grpcDone)
	}()
	connsDone := make(chan struct{})
	go func() {
		if sh, ok := s.cfg.ConnHandler.(interface{ Shutdown(context.Context) error }); ok {
			if err := sh.Shutdown(ctx); err != nil {
				s.log.Warn("RESP handler shutdown", "err", err)
			}
		}
		s.routes.Wait()
		close(connsDone)
	}()
	for _, done := range []<-chan struct{}{fastDone, grpcDone, connsDone} {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		s.log.Warn("grace period over; closing connections still open")
		if s.fast != nil {
			s.fast.close()
		}
		s.grpc.Stop()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-grpcDone
		<-connsDone
	}

	if s.fast != nil {
		s.fast.close() // stops its loops; its connections are gone by now
	}
	hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
	defer hcancel()
	s.httpSrv.Shutdown(hctx)
	s.metricsSrv.Shutdown(hctx)
	s.log.Info("stopped")
}
