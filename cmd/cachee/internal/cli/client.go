package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	cachee "github.com/cachee/cachee/sdk/go"
)

// clientOptions are the flags every client subcommand shares. The subcommands are
// built on the Go SDK (without shared memory), so they find the server, send the token
// and report errors as every SDK does.
type clientOptions struct {
	addr    string
	token   string
	timeout time.Duration
}

// register adds the shared flags; withTimeout adds --timeout, which prewarm uses for
// its own meaning.
func (o *clientOptions) register(cmd *cobra.Command, withTimeout bool) {
	cmd.Flags().StringVar(&o.addr, "addr", "", "server address: unix:///path/to.sock or host:port (default: $CACHEE_SOCKET, else $CACHE_HOST:$CACHE_PORT, else unix://"+cachee.DefaultSocket+", as the SDKs resolve it)")
	cmd.Flags().StringVar(&o.token, "auth-token", "", "token of a server started with --auth-token (prefer CACHEE_AUTH_TOKEN: flags show in ps)")
	if withTimeout {
		cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Second, "how long the call may take")
	}
}

// run dials the server, runs call within the timeout, and turns its error into one
// line. call's own errors (exitCodeError, usageError) pass through unchanged.
func (o *clientOptions) run(cmd *cobra.Command, call func(ctx context.Context, c *cachee.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	opts := []cachee.Option{
		cachee.WithoutShm(),
		// Values may be far larger than the SDK's receive limit, which suits batches.
		cachee.WithDialOptions(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1 << 30))),
	}
	if o.addr != "" {
		opts = append(opts, cachee.WithTarget(o.addr))
	}
	if o.token != "" {
		opts = append(opts, cachee.WithAuthToken(o.token))
	}
	c, err := cachee.Dial(ctx, opts...)
	if err != nil {
		return usagef("invalid --addr %q: %v", o.addr, err)
	}
	defer c.Close()
	return callError(call(ctx, c))
}

// answer ends a subcommand whose call answers yes or no: it prints yes, or exits 1
// with no on stderr.
func answer(cmd *cobra.Command, ok bool, err error, yes, no string) error {
	switch {
	case err != nil:
		return err
	case !ok:
		return exitCodeError{code: exitError, msg: no}
	}
	cmd.Println(yes)
	return nil
}

// callError describes a failed call in one line: code, reason and message.
func callError(err error) error {
	e, ok := errors.AsType[*cachee.Error](err)
	if !ok {
		return err
	}
	head := e.Code.String()
	if e.Reason != "" {
		head += " " + e.Reason
	}
	msg := e.Message
	if msg == "" {
		msg = e.Error()
	}
	return errors.New(head + ": " + msg)
}
