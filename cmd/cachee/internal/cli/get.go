package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	cachee "github.com/cachee/cachee/sdk/go"
)

func newGetCmd() *cobra.Command {
	return keyCmd("get KEY", "Print the value of KEY; exit 1 if it is not there",
		func(ctx context.Context, cmd *cobra.Command, c *cachee.Client, key string) error {
			v, found, err := c.Get(ctx, key)
			if err != nil {
				return err
			}
			if !found {
				return exitCodeError{code: exitError, msg: "(not found)"}
			}
			out := cmd.OutOrStdout()
			out.Write(v)
			if isTerminal(out) {
				io.WriteString(out, "\n")
			}
			return nil
		})
}
