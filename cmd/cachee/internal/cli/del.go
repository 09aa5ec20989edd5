package cli

import (
	"github.com/spf13/cobra"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

func newDelCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete KEY; exit 1 if it was not there",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := o.dial()
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := o.context(cmd)
			defer cancel()
			resp, err := c.Delete(ctx, &cacheev1.DeleteRequest{Key: []byte(args[0])})
			if err != nil {
				return callError(err)
			}
			if !resp.GetDeleted() {
				return exitCodeError{code: exitError, msg: "(not found)"}
			}
			cmd.Println("deleted")
			return nil
		},
	}
	o.register(cmd)
	return cmd
}
