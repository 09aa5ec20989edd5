package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cachee/cachee/server/tier"
)

// Defaults, as the flags of the cachee binary document them.
const (
	DefaultSocket               = "/var/run/cachee/cachee.sock"
	DefaultAddr                 = "127.0.0.1:6380"
	DefaultHTTPAddr             = ":6381"
	DefaultMetricsAddr          = ":9090"
	DefaultGracePeriod          = 10 * time.Second
	DefaultDetectTimeout        = 30 * time.Second
	DefaultMaxConcurrentStreams = 1024
	DefaultPrewarmKeys          = 1000
	DefaultPrewarmTimeout       = 500 * time.Millisecond
	DefaultReadyWindow          = 10 * time.Second
	DefaultReadyMinReads        = 100
	DefaultReadyMaxWait         = 60 * time.Second
)

// Config configures a Server. The zero value is usable: every zero field takes its
// default (see DefaultConfig).
type Config struct {
	// Socket is the Unix socket path for gRPC and RESP. Its parent directory is
	// created with mode 0750 and the socket gets mode 0660.
	Socket string

	// Addr is the TCP address for gRPC and RESP, host:port. Port 0 picks a free port.
	Addr string

	// HTTPAddr serves /health and /ready; MetricsAddr serves /metrics. They listen on
	// every interface by default, so that the kubelet and Prometheus reach them.
	HTTPAddr    string
	MetricsAddr string

	// GracePeriod bounds how long shutdown waits for in-flight calls and RESP
	// connections before closing them.
	GracePeriod time.Duration

	// DetectTimeout bounds how long a new connection may take to send the bytes that
	// tell gRPC from RESP.
	DetectTimeout time.Duration

	// MaxConcurrentStreams bounds concurrent gRPC calls per connection.
	MaxConcurrentStreams uint32

	// ConnHandler serves connections that are not gRPC (RESP). Nil closes them, with
	// a log line that says why.
	ConnHandler ConnHandler
	// NoConnHandlerReason completes that log line, e.g. "--resp-compat=false".
	NoConnHandlerReason string

	// Prewarmer serves the Prewarm RPC; nil answers it with FAILED_PRECONDITION.
	Prewarmer tier.Prewarmer
	// Prewarm holds the defaults of a prewarm: source, key count and timeout.
	Prewarm tier.PrewarmOptions
	// PrewarmAtStart runs one prewarm (with Prewarmer and Prewarm) as Serve starts,
	// holding readiness ("prewarm") until it has finished, failed or timed out.
	PrewarmAtStart bool

	// ReadyHitRate, when positive, holds readiness ("hit-rate") after start until the
	// hit rate over the last ReadyWindow reaches it, with at least ReadyMinReads
	// reads in the window, or until ReadyMaxWait has passed since Serve began. Once
	// released it stays released: it gates a warming pod, not a running one.
	ReadyHitRate  float64
	ReadyWindow   time.Duration // default 10s
	ReadyMinReads uint64        // default 100
	ReadyMaxWait  time.Duration // default 60s

	// Latency is the cachee_latency_seconds summary the server registers and times
	// its data-path calls into; nil makes one. Give the same one to the RESP shim.
	Latency *Latency
	// Tier is what Get, BatchGet, Set, BatchSet and Delete go through; nil is the store
	// alone. An L2 tier (package server/l2) reads misses through and writes through.
	Tier tier.Tier

	// Logger receives the server's log lines and one line per gRPC call at debug
	// level (errors at info or above). Default slog.Default().
	Logger *slog.Logger

	// FastPath serves gRPC connections on event loops, answering CacheService's unary
	// calls there and relaying every other stream to grpc-go (see fastpath.go). False
	// serves every gRPC connection from grpc-go alone.
	FastPath bool

	// Limits and access control (see docs/security.md).

	// MaxRecvMsgSize bounds one gRPC request message. Zero: the store's largest key
	// plus its largest value plus 4 KiB, so that any value the store accepts can be
	// set. A BatchGet answer is bounded by it too.
	MaxRecvMsgSize int
	// MaxConns bounds open gRPC connections; one more is closed at once. Zero: no
	// bound but the Budget's.
	MaxConns int
	// IdleTimeout closes gRPC connections that have had no call for this long (with
	// GOAWAY, which clients answer by reconnecting when they next need to). Zero
	// never closes them.
	IdleTimeout time.Duration
	// Budget bounds the memory that client connections and gRPC calls in flight may
	// hold together; nil has no bound. Share it with the RESP handler.
	Budget *Budget
	// AuthToken, when set, is the bearer token every gRPC call must carry in its
	// "authorization: Bearer <token>" metadata, except grpc.health.v1 calls.
	AuthToken string
	// AllowUIDs and AllowGIDs, when either is set, restrict the Unix socket to peers
	// whose uid, or primary gid, is listed (checked with SO_PEERCRED before the
	// protocol is read); the server's own uid is always allowed.
	AllowUIDs, AllowGIDs []uint32
}

// DefaultConfig returns the configuration that the zero value stands for.
func DefaultConfig() Config {
	return Config{
		Socket:               DefaultSocket,
		Addr:                 DefaultAddr,
		HTTPAddr:             DefaultHTTPAddr,
		MetricsAddr:          DefaultMetricsAddr,
		GracePeriod:          DefaultGracePeriod,
		DetectTimeout:        DefaultDetectTimeout,
		MaxConcurrentStreams: DefaultMaxConcurrentStreams,
		Prewarm:              tier.PrewarmOptions{Keys: DefaultPrewarmKeys, Timeout: DefaultPrewarmTimeout},
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.Socket, d.Socket)
	set(&c.Addr, d.Addr)
	set(&c.HTTPAddr, d.HTTPAddr)
	set(&c.MetricsAddr, d.MetricsAddr)
	if c.GracePeriod == 0 {
		c.GracePeriod = d.GracePeriod
	}
	if c.DetectTimeout == 0 {
		c.DetectTimeout = d.DetectTimeout
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if c.Prewarm.Keys == 0 {
		c.Prewarm.Keys = d.Prewarm.Keys
	}
	if c.Prewarm.Timeout == 0 {
		c.Prewarm.Timeout = d.Prewarm.Timeout
	}
	if c.ReadyWindow == 0 {
		c.ReadyWindow = DefaultReadyWindow
	}
	if c.ReadyMinReads == 0 {
		c.ReadyMinReads = DefaultReadyMinReads
	}
	if c.ReadyMaxWait == 0 {
		c.ReadyMaxWait = DefaultReadyMaxWait
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first invalid field, with defaults applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Socket) > maxSocketPath {
		return fmt.Errorf("server: socket path is %d bytes, longer than the %d a Unix socket allows", len(c.Socket), maxSocketPath)
	}
	for _, a := range []struct{ name, addr string }{{"addr", c.Addr}, {"http addr", c.HTTPAddr}, {"metrics addr", c.MetricsAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("server: %s %q: %w", a.name, a.addr, err)
		}
	}
	switch {
	case c.GracePeriod < 0:
		return errors.New("server: grace period is negative")
	case c.DetectTimeout < 0:
		return errors.New("server: detect timeout is negative")
	case c.Prewarm.Keys < 0:
		return errors.New("server: prewarm keys is negative")
	case c.Prewarm.Timeout < 0:
		return errors.New("server: prewarm timeout is negative")
	case c.MaxRecvMsgSize < 0:
		return errors.New("server: max message size is negative")
	case c.MaxConns < 0:
		return errors.New("server: max connections is negative")
	case c.IdleTimeout < 0:
		return errors.New("server: idle timeout is negative")
	case c.ReadyHitRate < 0 || c.ReadyHitRate > 1:
		return fmt.Errorf("server: ready hit rate %v: want 0 to 1", c.ReadyHitRate)
	case c.ReadyWindow < 0 || c.ReadyMaxWait < 0:
		return errors.New("server: ready window and max wait must not be negative")
	}
	for _, r := range c.AuthToken {
		if r < 0x21 || r > 0x7e {
			return errors.New("server: auth token must be printable ASCII without spaces, as a header value carries it")
		}
	}
	return nil
}
