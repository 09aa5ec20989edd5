// Command app is cachee's example application: a small HTTP service that reads items
// through cachee (shared memory first, then the sidecar's socket) and falls back to a
// slow origin, the way an application uses the sidecar pattern. The manifests in
// deploy/ run it beside cachee, and `make pod` drives load at it.
//
//	GET /item/{id}            the item, and the tier that served it (X-Cache-Tier)
//	GET /item/{id}?via=socket the same, skipping the shared-memory read
//	GET /stats                requests, hit rate, p50/p99 per tier
//	GET /healthz, /readyz     probes; they never depend on cachee
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type config struct {
	listen          string
	socket          string
	shm             string
	ttl             time.Duration
	originLatency   time.Duration
	valueSize       int
	cacheTimeout    time.Duration
	shutdownTimeout time.Duration
}

// parseFlags reads flags, each defaulting to its CACHEE_/APP_ environment variable, so
// that a pod spec can set them either way (cachee's own CLI reads CACHEE_SOCKET too).
func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", envOr("APP_LISTEN", ":8080"), "HTTP address")
	fs.StringVar(&c.socket, "socket", envOr("CACHEE_SOCKET", "/var/run/cachee/cachee.sock"), "cachee's Unix socket")
	fs.StringVar(&c.shm, "shm", envOr("CACHEE_SHM", ""), "directory of cachee's shared-memory segment; empty reads over the socket only")
	fs.DurationVar(&c.ttl, "ttl", 60*time.Second, "TTL of what the app stores in cachee (the article's L1 TTL)")
	fs.DurationVar(&c.originLatency, "origin-latency", 2*time.Millisecond, "how long the simulated origin (a database) takes per read")
	fs.IntVar(&c.valueSize, "value-size", 512, "bytes per item")
	fs.DurationVar(&c.cacheTimeout, "cache-timeout", 100*time.Millisecond, "longest wait for cachee before going to the origin")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, how long requests in flight get")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.valueSize < 1 || c.valueSize > 1<<20 {
		return c, fmt.Errorf("-value-size %d: want 1 to 1048576", c.valueSize)
	}
	return c, nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(cfg, log); err != nil {
		log.Error("app failed", "err", err)
		os.Exit(1)
	}
}

func run(cfg config, log *slog.Logger) error {
	c, err := newCache(cfg.socket, cfg.shm, log)
	if err != nil {
		return err
	}
	defer c.Close()
	a := newApp(cfg, c, log)
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving", "addr", ln.Addr().String(), "socket", cfg.socket, "shm", cfg.shm)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("draining", "timeout", cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
