package cli

import (
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
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
			req := &cacheev1.SetRequest{Key: []byte(args[0]), Value: value}
			if ttl.d > 0 {
				req.Ttl = durationpb.New(ttl.d)
			}
			switch {
			case nx:
				req.Condition = cacheev1.SetCondition_SET_CONDITION_IF_ABSENT
			case xx:
				req.Condition = cacheev1.SetCondition_SET_CONDITION_IF_PRESENT
			}
			c, done, err := o.dial()
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := o.context(cmd)
			defer cancel()
			resp, err := c.Set(ctx, req)
			if err != nil {
				return callError(err)
			}
			if !resp.GetStored() {
				return exitCodeError{code: exitError, msg: "(not stored)"}
			}
			cmd.Println("OK")
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().Var(&ttl, "ttl", "time to live, e.g. 30s or 5m (default: no expiry)")
	cmd.Flags().BoolVar(&nx, "nx", false, "store only if KEY is absent")
	cmd.Flags().BoolVar(&xx, "xx", false, "store only if KEY is present")
	return cmd
}
