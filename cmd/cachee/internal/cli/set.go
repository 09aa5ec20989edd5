package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	cachee "github.com/cachee/cachee/sdk/go"
)

func newSetCmd() *cobra.Command {
	var (
		o      clientOptions
		ttl    durationFlag
		nx, xx bool
	)
	cmd := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Store VALUE under KEY (VALUE - reads standard input); exit 1 if --nx/--xx kept it from being stored",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if nx && xx {
				return usagef("--nx and --xx exclude each other")
			}
			value := []byte(args[1])
			if args[1] == "-" {
				var err error
				if value, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			opts := []cachee.SetOption{cachee.WithTTL(ttl.d)}
			switch {
			case nx:
				opts = append(opts, cachee.IfAbsent)
			case xx:
				opts = append(opts, cachee.IfPresent)
			}
			return o.run(cmd, func(ctx context.Context, c *cachee.Client) error {
				stored, err := c.Set(ctx, args[0], value, opts...)
				return answer(cmd, stored, err, "OK", "(not stored)")
			})
		},
	}
	o.register(cmd, true)
	cmd.Flags().Var(&ttl, "ttl", "time to live, e.g. 30s or 5m (default: no expiry)")
	cmd.Flags().BoolVar(&nx, "nx", false, "store only if KEY is absent")
	cmd.Flags().BoolVar(&xx, "xx", false, "store only if KEY is present")
	return cmd
}
