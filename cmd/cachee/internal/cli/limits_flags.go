package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// Defaults of the limit flags that are not derived from --max-memory.
const (
	defaultMaxClients = 10000 // as Redis's maxclients
	// autoBufferCap bounds the derived per-client buffer limits, as the RESP shim's
	// own defaults do.
	autoBufferCap = 64 << 20
	// minAuthToken is the shortest --auth-token accepted: 16 random bytes in hex is
	// 32 characters; 16 is the floor below which guessing becomes practical.
	minAuthToken = 16
)

// limitOptions are the flags of limits and access control (docs/security.md), and
// what resolve derives from them.
type limitOptions struct {
	maxClients      int
	maxKeySize      *sizeValue
	maxQueryBuffer  *sizeValue // zero: derived
	maxOutputBuffer *sizeValue // zero: derived
	maxClientMemory *sizeValue // zero: derived
	idleTimeout     time.Duration
	grpcMaxMsgSize  *sizeValue // zero: derived
	grpcMaxStreams  int
	authToken       string
	allowUIDs       idList
	allowGIDs       idList

	// Set by check.
	budget                *server.Budget
	query, output, grpcMs int
	streams               uint32
	goLimit               int64
	plan                  memoryPlan
	raised                bool // the budget was raised to hold one call of the largest value
	maxValue              int
}

func (l *limitOptions) register(fs *pflag.FlagSet) {
	l.maxKeySize = sizeOf(int64(store.DefaultConfig().MaxKeySize))
	l.maxQueryBuffer, l.maxOutputBuffer, l.maxClientMemory, l.grpcMaxMsgSize = &sizeValue{}, &sizeValue{}, &sizeValue{}, &sizeValue{}
	fs.IntVar(&l.maxClients, "max-clients", defaultMaxClients, "most RESP clients, and most gRPC connections, open at once; one more RESP client gets \"ERR max number of clients reached\"")
	fs.Var(l.maxKeySize, "max-key-size", "largest key accepted, same units as --max-memory")
	fs.Var(l.maxQueryBuffer, "max-query-buffer", "largest RESP request a client may send (Redis's client-query-buffer-limit); past it the client is disconnected (default: half of --max-client-memory, at most 64mb, at least one SET of the largest key and value)")
	fs.Var(l.maxOutputBuffer, "max-output-buffer", "most RESP replies a client may leave unread (a hard client-output-buffer-limit); past it the client is disconnected (default: half of --max-client-memory, at most 64mb, at least one GET of the largest value)")
	fs.Var(l.maxClientMemory, "max-client-memory", "memory that client buffers and gRPC calls in flight may hold together; past it RESP clients are disconnected and gRPC calls fail UNAVAILABLE (OVERLOADED) (default: derived from --max-memory and the container's limit, see docs/security.md)")
	fs.DurationVar(&l.idleTimeout, "idle-timeout", 0, "close RESP clients that send nothing, and gRPC connections with no call, for this long (0: never, as Redis's timeout)")
	fs.Var(l.grpcMaxMsgSize, "grpc-max-msg-size", "largest gRPC message, request or BatchGet answer (default: --max-key-size + --max-value-size + 4kb)")
	fs.IntVar(&l.grpcMaxStreams, "grpc-max-concurrent-streams", server.DefaultMaxConcurrentStreams, "most gRPC calls in flight on one connection; further calls wait in the client")
	fs.StringVar(&l.authToken, "auth-token", "", "bearer token every gRPC call must carry (authorization: Bearer <token>; grpc.health.v1 excepted); required with a --bind beyond loopback (prefer CACHEE_AUTH_TOKEN: flags show in ps)")
	fs.Var(&l.allowUIDs, "allow-uids", "comma-separated uids allowed to connect to the socket (checked with SO_PEERCRED; default: whoever the socket's mode lets in)")
	fs.Var(&l.allowGIDs, "allow-gids", "comma-separated gids (the peer's primary group) allowed to connect to the socket")
}

// check checks the limit and access flags against the rest of the configuration and
// derives the limits left at their defaults; apply then puts them to work. It runs
// before anything is logged or created, so that a bad flag is one line on stderr.
func (l *limitOptions) check(o *serveOptions) error {
	if l.maxKeySize.n < 1 {
		return usagef("invalid --max-key-size %s: must be at least 1 byte", l.maxKeySize)
	}
	scfg := store.Config{MaxMemory: o.maxMemory.n, MaxKeySize: int(l.maxKeySize.n), MaxValueSize: int(o.maxValueSize.n)}
	if err := scfg.Validate(); err != nil {
		return usageError{err}
	}
	if l.maxClients < 1 {
		return usagef("invalid --max-clients %d: must be at least 1", l.maxClients)
	}
	if l.idleTimeout < 0 {
		return usagef("invalid --idle-timeout %v: must not be negative", l.idleTimeout)
	}
	if l.grpcMaxStreams < 1 || l.grpcMaxStreams > 1<<20 {
		return usagef("invalid --grpc-max-concurrent-streams %d: want 1 to %d", l.grpcMaxStreams, 1<<20)
	}
	if t := l.authToken; t != "" {
		if strings.IndexFunc(t, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			return usagef("invalid --auth-token: use printable ASCII without spaces (it travels as a header value)")
		}
		if len(t) < minAuthToken {
			return usagef("invalid --auth-token: %d characters is guessable; use at least %d (e.g. openssl rand -hex 16)", len(t), minAuthToken)
		}
	}
	if !loopback(o.bind) {
		var missing []string
		if l.authToken == "" {
			missing = append(missing, "--auth-token (for gRPC)")
		}
		if o.respCompat && o.requirePass == "" {
			missing = append(missing, "--requirepass (for RESP, or --resp-compat=false)")
		}
		if len(missing) > 0 {
			return usagef("refusing --bind %q: it is reachable beyond this host, and %s %s not set", o.bind,
				strings.Join(missing, " and "), map[bool]string{true: "is", false: "are"}[len(missing) == 1])
		}
	}

	d := scfg.WithDefaults()
	maxKey, maxValue := d.MaxKeySize, d.MaxValueSize
	plan := planMemory(scfg.MaxMemory, containerMemoryLimit("/"))
	l.plan, l.maxValue = plan, maxValue
	l.grpcMs = server.DefaultMaxRecvMsgSize(maxKey, maxValue)
	if n := l.grpcMaxMsgSize.n; n != 0 {
		if n < int64(l.grpcMs) || n > 1<<31-1 {
			return usagef("invalid --grpc-max-msg-size %s: want %d (a Set of the largest key and value) to 2gb", l.grpcMaxMsgSize, l.grpcMs)
		}
		l.grpcMs = int(n)
	}
	oneCall := server.MinBudget(l.grpcMs) // one connection with any one call in flight
	clientMemory := plan.clientMemory
	switch n := l.maxClientMemory.n; {
	case n != 0 && n < oneCall:
		return usagef("invalid --max-client-memory %s: want at least %d, what one gRPC call of the largest message may hold", l.maxClientMemory, oneCall)
	case n != 0:
		clientMemory = n
	case clientMemory < oneCall:
		clientMemory, l.raised = oneCall, true
	}
	l.goLimit = max(plan.goLimit, 2*clientMemory)

	minQuery, minOutput := maxKey+maxValue+1<<10, maxValue+1<<10
	derived := int(min(clientMemory/2, autoBufferCap))
	l.query, l.output = max(derived, minQuery), max(derived, minOutput)
	if n := l.maxQueryBuffer.n; n != 0 {
		if n < int64(minQuery) || n > 1<<31-1 {
			return usagef("invalid --max-query-buffer %s: want %d (a SET of the largest key and value) to 2gb", l.maxQueryBuffer, minQuery)
		}
		l.query = int(n)
	}
	if n := l.maxOutputBuffer.n; n != 0 {
		if n < int64(minOutput) || n > 1<<31-1 {
			return usagef("invalid --max-output-buffer %s: want %d (a GET of the largest value) to 2gb", l.maxOutputBuffer, minOutput)
		}
		l.output = int(n)
	}
	l.streams = uint32(l.grpcMaxStreams)
	l.budget = server.NewBudget(clientMemory)
	return nil
}

// apply sets the Go runtime's memory limit, unless GOMEMLIMIT already has, and logs
// the limits in force.
func (l *limitOptions) apply(maxMemory int64, log *slog.Logger) {
	if l.raised {
		log.Warn("--max-value-size is large for --max-memory: the client memory budget is raised to hold one call of the largest value, and the process may use more than 1.2 x --max-memory + 32 MiB",
			"max_value_size", l.maxValue, "client_memory", l.budget.Limit())
	}
	attrs := []any{"max_memory", maxMemory, "container_limit", l.plan.container, "client_memory", l.budget.Limit(),
		"grpc_max_msg_size", l.grpcMs, "grpc_max_concurrent_streams", l.streams,
		"max_query_buffer", l.query, "max_output_buffer", l.output}
	if env, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		log.Info("memory limits; GOMEMLIMIT is set, so the Go runtime keeps it", append(attrs, "gomemlimit", env)...)
	} else {
		debug.SetMemoryLimit(l.goLimit)
		log.Info("memory limits", append(attrs, "go_memory_limit", l.goLimit)...)
	}
	if l.plan.squeezed {
		log.Warn("the container's memory limit leaves little room besides --max-memory; the Go heap gets what is left",
			"container_limit", l.plan.container, "go_memory_limit", l.goLimit)
	}
}

// applyServer puts the resolved limits and access controls into the server's
// configuration.
func (l *limitOptions) applyServer(cfg *server.Config) {
	if l.grpcMaxMsgSize.n != 0 {
		cfg.MaxRecvMsgSize = l.grpcMs // otherwise the server derives it, and names --max-value-size when it refuses a message
	}
	cfg.MaxConcurrentStreams = l.streams
	cfg.MaxConns = l.maxClients
	cfg.IdleTimeout = l.idleTimeout
	cfg.Budget = l.budget
	cfg.AuthToken = l.authToken
	cfg.AllowUIDs, cfg.AllowGIDs = l.allowUIDs, l.allowGIDs
}

// applyRESP puts the resolved limits into the RESP shim's configuration.
func (l *limitOptions) applyRESP(cfg *resp.Config) {
	cfg.MaxClients = l.maxClients
	cfg.MaxRequest = l.query
	cfg.MaxOutput = l.output
	cfg.IdleTimeout = l.idleTimeout
	if l.budget != nil {
		cfg.Memory = l.budget
	}
}

// loopback reports whether --bind keeps the TCP port on this host.
func loopback(bind string) bool {
	if bind == "localhost" {
		return true
	}
	ip := net.ParseIP(bind)
	return ip != nil && ip.IsLoopback()
}

// idList is a pflag.Value of comma-separated numeric uids or gids.
type idList []uint32

func (l *idList) Set(s string) error {
	var ids []uint32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a numeric id", f)
		}
		ids = append(ids, uint32(n))
	}
	*l = ids
	return nil
}

func (l *idList) String() string {
	s := make([]string, len(*l))
	for i, id := range *l {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, ",")
}

func (l *idList) Type() string { return "ids" }
