package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/server/l2"
	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

// DefaultShm is where the shared-memory segment lives when that directory exists.
const DefaultShm = "/dev/shm/cachee"

func newStartCmd() *cobra.Command {
	o := newServeOptions()
	cmd := &cobra.Command{
		Use:   "start [flags]",
		Short: "Serve the cache (the default when no subcommand is given)",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.register(cmd.Flags())
	return cmd
}

// serveOptions are the flags of `cachee [start]`.
type serveOptions struct {
	port           int
	bind           string
	socket         string
	httpPort       int
	metricsPort    int
	maxMemory      *sizeValue
	maxValueSize   *sizeValue
	eviction       *choiceValue
	respCompat     bool
	requirePass    string
	prewarmSource  string
	prewarmKeys    int
	prewarmTimeout time.Duration
	l2             string
	l1TTL          time.Duration
	negativeTTL    time.Duration
	l2Write        *choiceValue
	l2Invalidate   *choiceValue
	l2Timeout      time.Duration
	hotsetKey      string
	hotsetInterval time.Duration
	readyHitRate   float64
	readyMaxWait   time.Duration
	shm            string
	gracePeriod    time.Duration
	grpcFastPath   bool
	logLevel       *choiceValue
	logFormat      *choiceValue
	limits         limitOptions // limits_flags.go
}

func newServeOptions() *serveOptions {
	return &serveOptions{
		maxMemory:    sizeOf(store.DefaultConfig().MaxMemory),
		maxValueSize: &sizeValue{}, // zero: the store's default
		eviction:     newChoice(store.EvictionLFU, store.EvictionLFU, store.EvictionLRU, store.EvictionNone),
		l2Write:      newChoice(l2.WriteThrough, l2.WriteThrough, l2.WriteNone),
		l2Invalidate: newChoice(l2.InvalidateTracking, l2.InvalidateTracking, l2.InvalidateNone),
		logLevel:     newChoice("info", "debug", "info", "warn", "error"),
		logFormat:    newChoice("text", "text", "json"),
	}
}

func (o *serveOptions) register(fs *pflag.FlagSet) {
	fs.IntVar(&o.port, "port", 6380, "TCP port for gRPC and RESP (0 picks a free port)")
	fs.StringVar(&o.bind, "bind", "127.0.0.1", "address the TCP port listens on")
	fs.StringVar(&o.socket, "socket", server.DefaultSocket, "Unix socket for gRPC and RESP")
	fs.IntVar(&o.httpPort, "http-port", 6381, "port for /health and /ready, on every interface (0 picks a free port)")
	fs.IntVar(&o.metricsPort, "metrics-port", 9090, "port for Prometheus /metrics, on every interface (0 picks a free port)")
	fs.Var(o.maxMemory, "max-memory", "memory budget for data, index and metadata: bytes, or 256mb, 1gb, 512MiB (mb = MiB, m = 10^6, as in Redis)")
	fs.Var(o.maxValueSize, "max-value-size", "largest value accepted, same units as --max-memory (default "+
		sizeOf(int64(store.DefaultConfig().MaxValueSize)).String()+", or a quarter of --max-memory if that is less)")
	fs.Var(o.eviction, "eviction", "eviction policy: cachee-lfu, lru or noeviction (writes fail when full)")
	fs.BoolVar(&o.respCompat, "resp-compat", true, "serve the Redis protocol (RESP) on the socket and TCP port")
	fs.StringVar(&o.requirePass, "requirepass", "", "password RESP clients must give with AUTH, as Redis's requirepass (prefer the CACHEE_REQUIREPASS environment variable: flags show in ps)")
	fs.StringVar(&o.prewarmSource, "prewarm-source", "", "cache to prewarm from, e.g. redis://redis:6379 (default: --l2)")
	fs.StringVar(&o.l2, "l2", "", "central Redis behind the cache (L2): redis://[user:password@]HOST:PORT[/DB], rediss://..., or redis+cluster://H1:P1,H2:P2 (prefer CACHEE_L2 when it holds a password)")
	fs.DurationVar(&o.l1TTL, "l1-ttl", l2.DefaultL1TTL, "longest an L2 value stays in L1; a shorter TTL in L2 wins")
	fs.DurationVar(&o.negativeTTL, "negative-ttl", 0, "remember a key L2 lacks for this long (0: off)")
	fs.Var(o.l2Write, "l2-write", "through (writes go to L2, then L1, before the reply) or none (writes stay local)")
	fs.Var(o.l2Invalidate, "l2-invalidate", "tracking (L2 pushes invalidations, RESP3 CLIENT TRACKING) or none (L1 copies live until --l1-ttl)")
	fs.DurationVar(&o.l2Timeout, "l2-timeout", l2.DefaultTimeout, "longest a miss or a write waits for L2")
	fs.StringVar(&o.hotsetKey, "hotset-key", l2.DefaultHotsetKey, "sorted set in L2 where sidecars publish their hottest keys for prewarms (\"\": do not publish)")
	fs.DurationVar(&o.hotsetInterval, "hotset-interval", l2.DefaultHotsetInterval, "how often this sidecar publishes its hottest keys")
	fs.Float64Var(&o.readyHitRate, "ready-hit-rate", 0, "hold /ready until the hit rate over the last 10s reaches this (0: off)")
	fs.DurationVar(&o.readyMaxWait, "ready-max-wait", server.DefaultReadyMaxWait, "longest --ready-hit-rate holds /ready")
	fs.IntVar(&o.prewarmKeys, "prewarm-keys", server.DefaultPrewarmKeys, "how many hot keys a prewarm loads")
	fs.DurationVar(&o.prewarmTimeout, "prewarm-timeout", server.DefaultPrewarmTimeout, "how long a prewarm may take")
	fs.StringVar(&o.shm, "shm", DefaultShm, "directory of the shared-memory segment; the default falls back to private memory when absent, \"\" forces private memory")
	fs.DurationVar(&o.gracePeriod, "grace-period", server.DefaultGracePeriod, "on SIGTERM, how long in-flight calls may take to finish")
	fs.BoolVar(&o.grpcFastPath, "grpc-fast-path", true, "answer CacheService's unary gRPC calls on event loops, relaying other gRPC calls to grpc-go (false: grpc-go serves all of gRPC)")
	fs.Var(o.logLevel, "log-level", "debug, info, warn or error (debug logs every gRPC call)")
	fs.Var(o.logFormat, "log-format", "text or json")
	o.limits.register(fs)
}

// check validates what the flag types alone do not.
func (o *serveOptions) check() error {
	for _, p := range []struct {
		name string
		v    int
	}{{"port", o.port}, {"http-port", o.httpPort}, {"metrics-port", o.metricsPort}} {
		if p.v < 0 || p.v > 65535 {
			return usagef("invalid --%s %d: want 0 to 65535", p.name, p.v)
		}
	}
	switch {
	case o.socket == "":
		return usagef("--socket must not be empty")
	case o.prewarmKeys < 0:
		return usagef("invalid --prewarm-keys %d: must not be negative", o.prewarmKeys)
	case o.prewarmTimeout < 0:
		return usagef("invalid --prewarm-timeout %v: must not be negative", o.prewarmTimeout)
	case o.gracePeriod < 0:
		return usagef("invalid --grace-period %v: must not be negative", o.gracePeriod)
	case o.readyHitRate < 0 || o.readyHitRate > 1:
		return usagef("invalid --ready-hit-rate %v: want 0 to 1", o.readyHitRate)
	case o.readyMaxWait < 0:
		return usagef("invalid --ready-max-wait %v: must not be negative", o.readyMaxWait)
	case o.l1TTL <= 0:
		return usagef("invalid --l1-ttl %v: must be positive", o.l1TTL)
	case o.l2Timeout <= 0:
		return usagef("invalid --l2-timeout %v: must be positive", o.l2Timeout)
	case o.negativeTTL < 0:
		return usagef("invalid --negative-ttl %v: must not be negative", o.negativeTTL)
	case o.hotsetInterval <= 0:
		return usagef("invalid --hotset-interval %v: must be positive", o.hotsetInterval)
	case o.maxMemory.n < store.MinMemory || o.maxMemory.n > store.MaxMemory:
		return usagef("invalid --max-memory %s: want %s to %s", o.maxMemory, server.HumanBytes(store.MinMemory), server.HumanBytes(store.MaxMemory))
	case o.maxValueSize.n > o.maxMemory.n/2:
		return usagef("invalid --max-value-size %s: at most half of --max-memory", o.maxValueSize)
	}
	if o.bind != "" && net.ParseIP(o.bind) == nil && o.bind != "localhost" {
		return usagef("invalid --bind %q: want an IP address", o.bind)
	}
	if o.l2 != "" {
		if err := o.l2Config(nil).Validate(); err != nil {
			return usagef("invalid --l2 settings: %v", err)
		}
	}
	if o.prewarmSource != "" {
		if _, err := l2.ParseURL(o.prewarmSource); err != nil {
			return usagef("invalid --prewarm-source: %v", err)
		}
	}
	return nil
}

// l2Config configures the L2 tier.
func (o *serveOptions) l2Config(log *slog.Logger) l2.Config {
	return l2.Config{
		URL:            o.l2,
		L1TTL:          o.l1TTL,
		NegativeTTL:    o.negativeTTL,
		Write:          o.l2Write.v,
		Invalidate:     o.l2Invalidate.v,
		Timeout:        o.l2Timeout,
		HotsetKey:      o.hotsetKey, // "" turns publishing off
		HotsetInterval: o.hotsetInterval,
		HotsetSize:     max(o.prewarmKeys, 1),
		Logger:         log,
	}
}

func (o *serveOptions) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(o.logLevel.v)) // the choice value admits only valid levels
	hopts := &slog.HandlerOptions{Level: lvl}
	if o.logFormat.v == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// storeConfig is the store's configuration; shm says whether --shm was given.
func (o *serveOptions) storeConfig(shmGiven bool, log *slog.Logger) store.Config {
	dir := o.shm
	if !shmGiven && dir == DefaultShm {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			log.Info("shared-memory directory absent; keeping the cache in private memory, where the Go SDK cannot map it", "dir", dir)
			dir = ""
		}
	}
	return store.Config{
		Dir:          dir,
		MaxMemory:    o.maxMemory.n,
		MaxKeySize:   int(o.limits.maxKeySize.n),
		MaxValueSize: int(o.maxValueSize.n),
		Eviction:     o.eviction.v,
		Logger:       log,
	}
}

func (o *serveOptions) serverConfig(log *slog.Logger) server.Config {
	cfg := server.DefaultConfig()
	cfg.Socket = o.socket
	cfg.Addr = net.JoinHostPort(o.bind, strconv.Itoa(o.port))
	cfg.HTTPAddr = ":" + strconv.Itoa(o.httpPort)
	cfg.MetricsAddr = ":" + strconv.Itoa(o.metricsPort)
	cfg.GracePeriod = o.gracePeriod
	cfg.FastPath = o.grpcFastPath
	cfg.Prewarm = tier.PrewarmOptions{Source: o.prewarmSource, Keys: o.prewarmKeys, Timeout: o.prewarmTimeout}
	cfg.PrewarmAtStart = o.l2 != "" || o.prewarmSource != ""
	cfg.ReadyHitRate = o.readyHitRate
	cfg.ReadyMaxWait = o.readyMaxWait
	cfg.Logger = log
	// The RESP shim is plugged in once the store is open (see run).
	if !o.respCompat {
		cfg.NoConnHandlerReason = "RESP is disabled (--resp-compat=false)"
	}
	o.limits.applyServer(&cfg)
	return cfg
}

// respConfig configures the RESP shim.
func (o *serveOptions) respConfig(log *slog.Logger) resp.Config {
	cfg := resp.DefaultConfig()
	cfg.RequirePass = o.requirePass
	cfg.Port = o.port
	cfg.Logger = log
	o.limits.applyRESP(&cfg)
	return cfg
}

// tier starts the L2 tier and plugs it into cfg: with --l2 it serves the data path and
// prewarms (from --l2 unless --prewarm-source names another cache); with only
// --prewarm-source it just prewarms, and what it loads is not kept coherent with that
// source (it lives until --l1-ttl). It returns nil when neither is set.
func (o *serveOptions) tier(st *store.Store, cfg *server.Config, log *slog.Logger) (*l2.Tier, error) {
	var lc l2.Config
	switch {
	case o.l2 != "":
		lc = o.l2Config(log)
	case o.prewarmSource != "":
		lc = l2.Config{URL: o.prewarmSource, L1TTL: o.l1TTL, Write: l2.WriteNone, Invalidate: l2.InvalidateNone,
			Timeout: o.l2Timeout, CanaryInterval: -1, Logger: log}
		cfg.Prewarm.Source = "" // the tier's own endpoint
	default:
		return nil, nil
	}
	tier, err := l2.New(lc, st)
	if err != nil {
		return nil, usageError{err}
	}
	if o.l2 != "" {
		cfg.Tier = tier
	}
	cfg.Prewarmer = tier
	return tier, nil
}

func (o *serveOptions) run(cmd *cobra.Command) error {
	if err := o.check(); err != nil {
		return err
	}
	if err := o.limits.check(o); err != nil {
		return err
	}
	log := o.logger(cmd.ErrOrStderr())
	scfg := o.storeConfig(cmd.Flags().Changed("shm"), log)
	if err := scfg.Validate(); err != nil {
		return usageError{err}
	}
	o.limits.apply(scfg.MaxMemory, log)
	cfg := o.serverConfig(log)
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	st, err := store.Open(scfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	tier, err := o.tier(st, &cfg, log)
	if err != nil {
		return err
	}
	if tier != nil {
		defer tier.Close()
	}
	if o.respCompat {
		rcfg := o.respConfig(log)
		if o.l2 != "" {
			rcfg.L2 = tier
		}
		// One cachee_latency_seconds for both protocols.
		cfg.Latency = server.NewLatency()
		rcfg.Latency = cfg.Latency.Observe
		if err := rcfg.Validate(); err != nil {
			return usageError{err}
		}
		cfg.ConnHandler = resp.New(st, rcfg) // Serve drains and closes it (ConnHandler.Shutdown)
	}
	srv, err := server.New(cfg, st)
	if err != nil {
		return err
	}
	srv.Registry().MustRegister(buildInfo().collector())
	if tier != nil {
		srv.Registry().MustRegister(tier.Collectors()...)
	}
	if err := srv.Listen(); err != nil {
		return listenHint(err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go server.GuardMemory(ctx, o.limits.budget, debug.SetMemoryLimit(-1), log)
	go func() {
		<-ctx.Done()
		stop() // a second signal during the drain ends the process at once
	}()
	return srv.Serve(ctx)
}
