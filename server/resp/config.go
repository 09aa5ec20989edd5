package resp

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cachee/cachee/server/l2"
)

// Limits that Redis fixes and so do we.
const (
	// MaxInline bounds an inline request line, and the count line of a multibulk
	// request, as Redis's PROTO_INLINE_MAX_SIZE does.
	MaxInline = 64 << 10
	// unauthMultibulk and unauthBulk are what a client that has not authenticated may
	// send (Redis: 10 arguments, 16 KiB each).
	unauthMultibulk = 10
	unauthBulk      = 16 << 10
)

// Config configures a Server. The zero value is safe: every zero field takes the default
// that DefaultConfig shows.
type Config struct {
	// RequirePass, when set, makes clients authenticate (AUTH or HELLO ... AUTH) before
	// anything else, as Redis's requirepass does. The user name is "default".
	RequirePass string

	// MaxClients bounds concurrent RESP connections; one more gets
	// "-ERR max number of clients reached" and is closed. Default 10000.
	MaxClients int

	// MaxBulk bounds one bulk string of a request. Zero: the larger of the store's
	// MaxValueSize and MaxKeySize, so nothing the store could hold is refused and nothing
	// larger is read into memory.
	MaxBulk int

	// MaxArgs bounds the argument count of one request. Default 1<<20.
	MaxArgs int

	// MaxRequest bounds the bytes of one request (and of a MULTI queue); a client that
	// goes past it is closed, as Redis closes one past client-query-buffer-limit.
	// Default 64 MiB.
	MaxRequest int

	// MaxOutput bounds the replies a client has not read yet. cachee keeps reading
	// while replies wait (so that a client may write a long pipeline before it reads),
	// but a client with more than this waiting, or one command whose replies alone go
	// past it, is disconnected and its replies dropped, as Redis does past a
	// client-output-buffer-limit hard limit. (Stopping to read instead would leave a
	// client that writes its whole pipeline before reading blocked forever, and the
	// server with it.) Default 64 MiB.
	MaxOutput int

	// Memory, when set, is a budget shared with the rest of the process that every
	// client's buffers are charged against; a client whose buffers cannot grow within
	// it is disconnected (see Memory).
	Memory Memory

	// IdleTimeout closes a client that has sent nothing (and read none of its replies)
	// for this long, as Redis's timeout. Zero never does.
	IdleTimeout time.Duration

	// EventLoops is the number of epoll loops that serve connections whose file
	// descriptor can be taken over (TCP and Unix sockets, on Linux). Zero picks one per
	// two CPUs, at least one. Negative serves every connection from its own goroutine.
	EventLoops int

	// Port is reported as tcp_port in INFO (and CONFIG GET port); it opens nothing.
	// Default 6380, the RESP port the design fixes.
	Port int

	// L2, when set, is the tier behind the store: misses read through from it and, in
	// write-through mode, writes go to it first (see l2.go). Nil serves the store alone.
	L2 *l2.Tier

	// Latency, when set, receives the time one command took, for one command in
	// latencyEvery (512) on each connection: the cachee binary passes the server's
	// cachee_latency_seconds (server.Latency.Observe). A command that waits for L2 is
	// timed until its reply is written.
	Latency func(time.Duration)

	// Logger receives connection-level events. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the configuration the zero value stands for (MaxBulk, zero,
// follows the store).
func DefaultConfig() Config {
	return Config{
		MaxClients: 10000,
		MaxArgs:    1 << 20,
		MaxRequest: 64 << 20,
		MaxOutput:  64 << 20,
		Port:       6380,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxClients == 0 {
		c.MaxClients = d.MaxClients
	}
	if c.MaxArgs == 0 {
		c.MaxArgs = d.MaxArgs
	}
	if c.MaxRequest == 0 {
		c.MaxRequest = d.MaxRequest
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = d.MaxOutput
	}
	if c.Port == 0 {
		c.Port = d.Port
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.MaxClients < 1 {
		errs = append(errs, fmt.Errorf("resp: max clients %d is not positive", c.MaxClients))
	}
	if c.MaxBulk < 0 {
		errs = append(errs, fmt.Errorf("resp: max bulk %d is negative", c.MaxBulk))
	}
	if c.MaxArgs < 1 || c.MaxArgs > 1<<30 {
		errs = append(errs, fmt.Errorf("resp: max args %d out of range [1, %d]", c.MaxArgs, 1<<30))
	}
	if c.MaxRequest < MaxInline {
		errs = append(errs, fmt.Errorf("resp: max request %d below %d", c.MaxRequest, MaxInline))
	}
	if c.MaxOutput < 0 {
		errs = append(errs, fmt.Errorf("resp: max output %d is negative", c.MaxOutput))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("resp: idle timeout %v is negative", c.IdleTimeout))
	}
	if c.MaxBulk > c.MaxRequest {
		errs = append(errs, fmt.Errorf("resp: max bulk %d above max request %d", c.MaxBulk, c.MaxRequest))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("resp: port %d out of range", c.Port))
	}
	for _, r := range c.RequirePass {
		if r == '\r' || r == '\n' {
			errs = append(errs, errors.New("resp: requirepass contains a newline"))
			break
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
