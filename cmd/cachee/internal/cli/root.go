// Package cli is the cachee command line: one file per subcommand.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // a runtime failure, or a key that was not found
	exitUsage = 2 // a bad flag, flag value, environment variable or argument
)

// usageError is a mistake in how cachee was invoked.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError ends the command with code, printing msg (if any) to stderr.
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

// Main runs the command line and returns the process's exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	var ue usageError
	var ee exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cachee: %v (see 'cachee --help')\n", oneLine(err))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "cachee: %v\n", oneLine(err))
		return exitError
	}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	serve := newServeOptions()
	root := &cobra.Command{
		Use:   "cachee [start] [flags]",
		Short: "A cache sidecar: an LFU cache on a Unix socket, for gRPC and Redis clients",
		Long: `cachee keeps a memory-bounded cache beside an application. Run without a
subcommand (or with "start") it serves gRPC and RESP on --socket and on --bind:--port,
/health and /ready on --http-port and Prometheus metrics on --metrics-port.
Every flag can also be set as CACHEE_<FLAG>, e.g. CACHEE_MAX_MEMORY=1gb.`,
		Args:              usageArgs(cobra.NoArgs),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd.Flags()) },
		RunE:              func(cmd *cobra.Command, _ []string) error { return serve.run(cmd) },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	serve.register(root.Flags())
	root.AddCommand(
		newStartCmd(),
		newGetCmd(),
		newSetCmd(),
		newDelCmd(),
		newStatsCmd(),
		newPrewarmCmd(),
		newVersionCmd(),
	)
	root.Version = buildInfo().version
	root.SetVersionTemplate(buildInfo().String())
	return root
}

// usageArgs marks argument errors as usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// envName is the environment variable that stands in for a flag.
func envName(flag string) string {
	return "CACHEE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from CACHEE_<FLAG>.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = usagef("%s: %v", name, serr)
		}
	})
	return err
}
