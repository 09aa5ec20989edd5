package cachee

import (
	"log/slog"
	"time"

	"google.golang.org/grpc"
)

// Defaults, as Dial documents them.
const (
	DefaultSocket = "/var/run/cachee/cachee.sock"
	DefaultShmDir = "/dev/shm/cachee"

	DefaultTimeout       = time.Second
	DefaultRetries       = 2
	DefaultRetryBackoff  = 10 * time.Millisecond
	DefaultCheckInterval = 20 * time.Millisecond
	DefaultMaxLag        = 500 * time.Millisecond
	DefaultFlushInterval = 50 * time.Millisecond
)

// reconnectMultiplier is the growth of the wait between attempts to reach a sidecar
// that went away (docs/sdk-contract.md).
const reconnectMultiplier = 1.6

// Option configures a Client in Dial.
type Option func(*options)

type options struct {
	target        string
	token         string
	shmDir        string
	shmSet        bool
	timeout       time.Duration
	retries       int
	retryBase     time.Duration
	retryMax      time.Duration
	reconnectBase time.Duration
	reconnectMax  time.Duration
	checkInterval time.Duration
	maxLag        time.Duration
	flushInterval time.Duration
	logger        *slog.Logger
	dialOptions   []grpc.DialOption
	waitReady     bool
}

func defaultOptions() options {
	return options{
		timeout:       DefaultTimeout,
		retries:       DefaultRetries,
		retryBase:     DefaultRetryBackoff,
		retryMax:      200 * time.Millisecond,
		reconnectBase: 20 * time.Millisecond,
		reconnectMax:  time.Second,
		checkInterval: DefaultCheckInterval,
		maxLag:        DefaultMaxLag,
		flushInterval: DefaultFlushInterval,
	}
}

// WithTarget sets the sidecar's gRPC address: "unix:///path/to.sock", "host:port" or
// any grpc-go target. It overrides the environment (see Dial).
func WithTarget(target string) Option { return func(o *options) { o.target = target } }

// WithShmDir sets the directory of the sidecar's shared-memory segment (its --shm).
// The Client reads the segment only while it is there, valid, written by a live
// sidecar, and the very one the gRPC target serves; otherwise every read goes over
// gRPC. "" turns shared-memory reads off.
func WithShmDir(dir string) Option {
	return func(o *options) { o.shmDir, o.shmSet = dir, true }
}

// WithoutShm turns shared-memory reads off: every call goes over gRPC.
func WithoutShm() Option { return WithShmDir("") }

// WithTimeout bounds each call whose context has no deadline (default 1s). A context
// deadline, when there is one, wins. A call that runs out of this timeout fails with
// an error that matches both ErrUnavailable and context.DeadlineExceeded. Prewarm is
// bounded by the sidecar's own timeout instead.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetries sets how many times a call that failed transiently is tried again
// (default 2), waiting base, 2·base, ... up to max between attempts (default 10ms
// to 200ms, with jitter). A retry never waits past the call's deadline, and none is
// made while the sidecar is known to be down: such calls fail at once with
// ErrUnavailable. Which failures are retried, for which calls, is the SDK contract's
// (docs/sdk-contract.md): refusals the sidecar made before applying anything always,
// a lost connection only for reads, deletes and unconditional writes.
func WithRetries(n int, base, max time.Duration) Option {
	return func(o *options) { o.retries, o.retryBase, o.retryMax = n, base, max }
}

// WithReconnectBackoff sets how quickly the Client tries to reach a sidecar that has
// gone: first after base, growing to max (default 20ms to 1s).
func WithReconnectBackoff(base, max time.Duration) Option {
	return func(o *options) { o.reconnectBase, o.reconnectMax = base, max }
}

// WithStaleness tunes how the Client decides that a mapped segment no longer reflects
// a live sidecar: it checks every interval (default 20ms) that the sidecar still holds
// the segment's lock, still has it at the same path and generation, and that its clock
// lags the wall clock by at most maxLag (default 500ms). A failed check stops
// shared-memory reads until the sidecar is back. The interval is at most 100ms and
// maxLag at most 500ms (store.MaxReaderLag), larger values count as those: the segment's
// expiry rule trusts the sidecar's clock only while it lags this little.
func WithStaleness(interval, maxLag time.Duration) Option {
	return func(o *options) { o.checkInterval, o.maxLag = interval, maxLag }
}

// WithFlushInterval sets how often hits made through shared memory are reported to the
// sidecar (default 50ms), so that they count in its statistics and eviction policy.
func WithFlushInterval(d time.Duration) Option { return func(o *options) { o.flushInterval = d } }

// WithLogger sets where the Client logs connection and segment changes (default
// slog.Default()). It never logs per call.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithDialOptions adds grpc-go dial options, after the Client's own. With them, Get,
// Set and Delete go through grpc-go too (so that its interceptors, say, see every
// call), instead of the Client's own lighter connection.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

// WithWaitReady makes Dial wait, within its context, until the sidecar answers. By
// default Dial returns at once and calls fail with ErrUnavailable until it does, so
// that an application can start before its sidecar.
func WithWaitReady() Option { return func(o *options) { o.waitReady = true } }
