package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	cachee "github.com/cachee/cachee/sdk/go"
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
			bar := progressBar{w: cmd.ErrOrStderr(), on: isTerminal(cmd.ErrOrStderr())}
			opts := []cachee.PrewarmOption{cachee.WithPrewarmKeys(keys), cachee.WithProgress(bar.draw)}
			// The call must outlive the prewarm, which the server bounds by its timeout.
			o.timeout = time.Minute
			if timeout.d > 0 {
				opts = append(opts, cachee.WithPrewarmTimeout(timeout.d))
				o.timeout = timeout.d + 10*time.Second
			}
			return o.run(cmd, func(ctx context.Context, c *cachee.Client) error {
				n, err := c.Prewarm(ctx, opts...)
				bar.clear()
				if err != nil {
					return err
				}
				cmd.Printf("prewarm: requested %d, loaded %d, skipped %d, failed %d in %v\n",
					n.Requested, n.Loaded, n.Skipped, n.Failed, n.Elapsed.Round(time.Millisecond))
				return nil
			})
		},
	}
	o.register(cmd, false)
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

func (b *progressBar) draw(c cachee.PrewarmProgress) {
	if !b.on || c.Done {
		return
	}
	const width = 30
	done := c.Loaded + c.Skipped + c.Failed
	filled := 0
	if r := c.Requested; r > 0 {
		filled = int(min(done, r) * width / r)
	}
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d loaded %d skipped %d failed %d",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		done, c.Requested, c.Loaded, c.Skipped, c.Failed)
	b.drawn = true
}

func (b *progressBar) clear() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
