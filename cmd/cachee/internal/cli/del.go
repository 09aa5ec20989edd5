package cli

import (
	"context"

	"github.com/spf13/cobra"

	cachee "github.com/cachee/cachee/sdk/go"
)

func newDelCmd() *cobra.Command {
	return keyCmd("del KEY", "Delete KEY; exit 1 if it was not there",
		func(ctx context.Context, cmd *cobra.Command, c *cachee.Client, key string) error {
			deleted, err := c.Delete(ctx, key)
			return answer(cmd, deleted, err, "deleted", "(not found)")
		})
}
