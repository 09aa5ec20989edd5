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
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/server/resp"
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
	shm            string
	gracePeriod    time.Duration
	logLevel       *choiceValue
	logFormat      *choiceValue
	limits         limitOptions // limits_flags.go
}

func newServeOptions() *serveOptions {
	return &serveOptions{
		maxMemory:    newSize("256mb"),
		maxValueSize: &sizeValue{}, // zero: the store's default
		eviction:     newChoice(store.EvictionLFU, store.EvictionLFU, store.EvictionLRU, store.EvictionNone),
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
	fs.Var(o.maxValueSize, "max-value-size", "largest value accepted, same units as --max-memory (default 1mb, or a quarter of --max-memory if that is less)")
	fs.Var(o.eviction, "eviction", "eviction policy: cachee-lfu, lru or noeviction (writes fail when full)")
	fs.BoolVar(&o.respCompat, "resp-compat", true, "serve the Redis protocol (RESP) on the socket and TCP port")
	fs.StringVar(&o.requirePass, "requirepass", "", "password RESP clients must give with AUTH, as Redis's requirepass (prefer the CACHEE_REQUIREPASS environment variable: flags show in ps)")
	fs.StringVar(&o.prewarmSource, "prewarm-source", "", "L2 cache to prewarm from, e.g. redis://redis:6379")
	fs.IntVar(&o.prewarmKeys, "prewarm-keys", server.DefaultPrewarmKeys, "how many hot keys a prewarm loads")
	fs.DurationVar(&o.prewarmTimeout, "prewarm-timeout", server.DefaultPrewarmTimeout, "how long a prewarm may take")
	fs.StringVar(&o.shm, "shm", DefaultShm, "directory of the shared-memory segment; the default falls back to private memory when absent, \"\" forces private memory")
	fs.DurationVar(&o.gracePeriod, "grace-period", server.DefaultGracePeriod, "on SIGTERM, how long in-flight calls may take to finish")
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
	case o.maxMemory.n < store.MinMemory || o.maxMemory.n > store.MaxMemory:
		return usagef("invalid --max-memory %s: want %s to %s", o.maxMemory, server.HumanBytes(store.MinMemory), server.HumanBytes(store.MaxMemory))
	case o.maxValueSize.n > o.maxMemory.n/2:
		return usagef("invalid --max-value-size %s: at most half of --max-memory", o.maxValueSize)
	}
	if o.bind != "" && net.ParseIP(o.bind) == nil && o.bind != "localhost" {
		return usagef("invalid --bind %q: want an IP address", o.bind)
	}
	return nil
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
	cfg.Prewarm = server.PrewarmOptions{Source: o.prewarmSource, Keys: o.prewarmKeys, Timeout: o.prewarmTimeout}
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
	if o.prewarmSource != "" {
		log.Warn("--prewarm-source is set, but this build has no L2 prewarmer yet; not prewarming", "source", o.prewarmSource)
	}

	st, err := store.Open(scfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if o.respCompat {
		rcfg := o.respConfig(log)
		if err := rcfg.Validate(); err != nil {
			return usageError{err}
		}
		rs := resp.New(st, rcfg)
		defer rs.Close()
		cfg.ConnHandler = rs
	}
	srv, err := server.New(cfg, st)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal during the drain ends the process at once
	}()
	return srv.Serve(ctx)
}
