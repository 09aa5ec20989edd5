package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
)

// clientOptions are the flags every client subcommand shares.
type clientOptions struct {
	addr    string
	timeout time.Duration
}

func (o *clientOptions) register(cmd *cobra.Command) {
	o.registerAddr(cmd)
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Second, "how long the call may take")
}

func (o *clientOptions) registerAddr(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.addr, "addr", "", "server address: unix:///path/to.sock or host:port (default unix://$CACHEE_SOCKET, else unix://"+server.DefaultSocket+")")
}

// target is the gRPC target to dial.
func (o *clientOptions) target() string {
	if o.addr != "" {
		return o.addr
	}
	sock := os.Getenv("CACHEE_SOCKET")
	if sock == "" {
		sock = server.DefaultSocket
	}
	return "unix://" + sock
}

// dial connects lazily; the first call reports an unreachable server.
func (o *clientOptions) dial() (cacheev1.CacheServiceClient, func(), error) {
	conn, err := grpc.NewClient(o.target(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Values may be far larger than gRPC's default 4 MiB receive limit.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		return nil, nil, usagef("invalid --addr %q: %v", o.addr, err)
	}
	return cacheev1.NewCacheServiceClient(conn), func() { conn.Close() }, nil
}

func (o *clientOptions) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), o.timeout)
}

// callError describes a failed call in one line: code, reason and message.
func callError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return errors.New(st.Code().String() + " " + info.GetReason() + ": " + st.Message())
		}
	}
	return fmt.Errorf("%s: %s", st.Code(), st.Message())
}
