package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// Version and Commit are set when the release is linked (make release passes
// -X .../cli.Version=... and .Commit=...). A plain go build leaves them empty, and
// what the Go toolchain recorded stands in (see buildInfo).
var (
	Version string
	Commit  string
)

// build describes this binary: the release's version and commit, and the Go release
// and platform it was built with.
type build struct {
	version, commit, goVersion, platform string
}

func buildInfo() build {
	b := build{version: Version, commit: Commit, goVersion: runtime.Version(), platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.version = info.Main.Version // go install github.com/cachee/cachee/cmd/cachee@vX
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.commit == "" {
					b.commit = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && Commit == "" && b.commit != "" {
			b.commit += "-dirty"
		}
	}
	if b.version == "" {
		b.version = "devel"
	}
	if b.commit == "" {
		b.commit = "unknown"
	}
	return b
}

func (b build) String() string {
	return fmt.Sprintf("cachee %s\ncommit %s\n%s %s\n", b.version, b.commit, b.goVersion, b.platform)
}

// collector exports the build as cachee_build_info, a constant 1 with the build in its
// labels, so that dashboards can show what runs and alerts can tell cachee's
// processes from others' (process_start_time_seconds is every Go program's).
func (b build) collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "cachee_build_info",
		Help:        "A constant 1, labelled with the version, commit and Go release of this cachee.",
		ConstLabels: prometheus.Labels{"version": b.version, "commit": b.commit, "goversion": b.goVersion},
	}, func() float64 { return 1 })
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go release cachee was built with",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.Print(buildInfo().String())
			return nil
		},
	}
}
