package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	cachee "github.com/cachee/cachee/sdk/go"
)

func newGetCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY; exit 1 if it is not there",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *cachee.Client) error {
				v, found, err := c.Get(ctx, args[0])
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
		},
	}
	o.register(cmd, true)
	return cmd
}
