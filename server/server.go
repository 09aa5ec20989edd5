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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

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
	routes    sync.WaitGroup // one per accepted connection until gRPC takes it or ServeConn returns

	mu      sync.Mutex
	sniffed map[net.Conn]struct{} // connections whose protocol is not known yet
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
	s := newServer(cfg, st)
	lat := s.registerMetrics()
	s.buildGRPC(lat) // grpc.go
	return s, nil
}

// newServer is the first phase of New: the Server and its readiness, which starts
// held ("starting") until Serve releases it.
func newServer(cfg Config, st *store.Store) *Server {
	s := &Server{
		cfg:      cfg,
		st:       st,
		log:      cfg.Logger,
		started:  time.Now(),
		health:   health.NewServer(),
		registry: prometheus.NewRegistry(),
		sniffed:  make(map[net.Conn]struct{}),
	}
	// notify first, so that grpc.health.v1 (SERVING when created) follows the first hold.
	s.ready.notify = s.followReadiness
	s.ready.Hold("serving", "starting")
	return s
}

// registerMetrics registers what /metrics shows besides gRPC's own counters: the Go
// runtime, the process, the store, its latency and the limits. It returns the
// latency the service times the store with.
func (s *Server) registerMetrics() *Latency {
	lat := s.cfg.Latency
	if lat == nil {
		lat = NewLatency()
	}
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStoreCollector(s.st),
		newReadinessCollector(s),
		lat.summary,
	)
	s.registerLimitMetrics()
	return lat
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
		return &ListenError{"socket", s.cfg.Socket, err}
	}
	closers = append(closers, func() { s.sock.Close(); s.sock.remove() })
	for _, l := range []struct {
		ln         *net.Listener
		name, addr string
	}{{&s.tcp, "tcp", s.cfg.Addr}, {&s.httpLn, "http", s.cfg.HTTPAddr}, {&s.metricsLn, "metrics", s.cfg.MetricsAddr}} {
		if *l.ln, err = net.Listen("tcp", l.addr); err != nil {
			return &ListenError{l.name, l.addr, err}
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
// the listeners close, and in-flight gRPC calls and the ConnHandler's connections
// (ConnHandler.Shutdown) get the grace period to finish. It returns nil after a clean
// drain, or the error that stopped a listener early.
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
	src := tier.RedactURL(opts.Source)
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
		c, err := s.cfg.Prewarmer.Prewarm(ctx, opts, func(tier.PrewarmCounts) {})
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
		if !s.track(c) {
			c.Close()
			continue
		}
		s.routes.Add(1)
		go s.route(c)
	}
}

// track records c as being sniffed, for shutdown to close; false means the server is
// closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sniffed[c] = struct{}{}
	return true
}

// untrack hands c, whose protocol is known, to the caller; false means shutdown has
// closed it meanwhile.
func (s *Server) untrack(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sniffed, c)
	return !s.closing
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
	if s.untrack(c) {
		s.cfg.ConnHandler.ServeConn(c, buf[:n]) // c is the handler's now
	}
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
	for c := range s.sniffed {
		c.Close() // nothing in flight yet
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	fastDone := closedChan
	if s.fast != nil {
		fastDone = s.fast.drain() // GOAWAY on every fast-path connection; calls in flight finish
	}
	grpcDone := make(chan struct{})
	go func() {
		s.grpc.GracefulStop() // closes grpcLn, sends GOAWAY, waits for calls in flight
		close(grpcDone)
	}()
	connsDone := make(chan struct{})
	go func() {
		if h := s.cfg.ConnHandler; h != nil {
			// Returns by the end of the grace period, its connections closed.
			if err := h.Shutdown(ctx); err != nil {
				s.log.Warn("RESP connections still open at the end of the grace period were closed", "err", err)
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
