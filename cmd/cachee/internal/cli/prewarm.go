package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

func newPrewarmCmd() *cobra.Command {
	var (
		o       clientOptions
		keys    int
		timeout durationFlag
	)
	cmd := &cobra.Command{
		Use:   "prewarm",
		Short: "Load the hottest keys from the server's --prewarm-source, showing progress",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keys < 0 {
				return usagef("invalid --keys %d: must not be negative", keys)
			}
			req := &cacheev1.PrewarmRequest{Keys: int32(min(keys, 1<<31-1))}
			// The call must outlive the prewarm, which the server bounds by its timeout.
			o.timeout = time.Minute
			if timeout.d > 0 {
				req.Timeout = durationpb.New(timeout.d)
				o.timeout = timeout.d + 10*time.Second
			}
			c, done, err := o.dial()
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := o.context(cmd)
			defer cancel()
			stream, err := c.Prewarm(ctx, req)
			if err != nil {
				return callError(err)
			}
			bar := progressBar{w: cmd.ErrOrStderr(), on: isTerminal(cmd.ErrOrStderr())}
			for {
				msg, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return errors.New("prewarm ended without final counts")
				}
				if err != nil {
					bar.clear()
					return callError(err)
				}
				if msg.GetDone() {
					bar.clear()
					n := msg.GetCounts()
					cmd.Printf("prewarm: requested %d, loaded %d, skipped %d, failed %d in %v\n",
						n.GetRequested(), n.GetLoaded(), n.GetSkipped(), n.GetFailed(), n.GetElapsed().AsDuration().Round(time.Millisecond))
					return nil
				}
				bar.draw(msg.GetCounts())
			}
		},
	}
	o.registerAddr(cmd)
	cmd.Flags().IntVar(&keys, "keys", 0, "how many hot keys to load (default: the server's --prewarm-keys)")
	cmd.Flags().Var(&timeout, "timeout", "how long the prewarm may take (default: the server's --prewarm-timeout)")
	return cmd
}

// progressBar redraws one line on a terminal, and stays silent elsewhere.
type progressBar struct {
	w     io.Writer
	on    bool
	drawn bool
}

func (b *progressBar) draw(c *cacheev1.PrewarmCounts) {
	if !b.on {
		return
	}
	const width = 30
	done := c.GetLoaded() + c.GetSkipped() + c.GetFailed()
	filled := 0
	if r := c.GetRequested(); r > 0 {
		filled = int(min(done, r) * width / r)
	}
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d loaded %d skipped %d failed %d",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		done, c.GetRequested(), c.GetLoaded(), c.GetSkipped(), c.GetFailed())
	b.drawn = true
}

func (b *progressBar) clear() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
