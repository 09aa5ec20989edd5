package cli

import (
	"context"

	"github.com/spf13/cobra"

	cachee "github.com/cachee/cachee/sdk/go"
)

func newDelCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete KEY; exit 1 if it was not there",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *cachee.Client) error {
				deleted, err := c.Delete(ctx, args[0])
				return answer(cmd, deleted, err, "deleted", "(not found)")
			})
		},
	}
	o.register(cmd, true)
	return cmd
}
