package cli

import (
	"github.com/spf13/cobra"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

func newGetCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY; exit 1 if it is not there",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := o.dial()
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := o.context(cmd)
			defer cancel()
			resp, err := c.Get(ctx, &cacheev1.GetRequest{Key: []byte(args[0])})
			if err != nil {
				return callError(err)
			}
			if !resp.GetFound() {
				return exitCodeError{code: exitError, msg: "(not found)"}
			}
			out := cmd.OutOrStdout()
			out.Write(resp.GetValue())
			if isTerminal(out) {
				out.Write([]byte("\n"))
			}
			return nil
		},
	}
	o.register(cmd)
	return cmd
}
