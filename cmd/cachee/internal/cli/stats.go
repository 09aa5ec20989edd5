package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
)

func newStatsCmd() *cobra.Command {
	var o clientOptions
	output := newChoice("table", "table", "json")
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the server's counters, hit rate, memory and latency",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := o.dial()
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := o.context(cmd)
			defer cancel()
			st, err := c.Stats(ctx, &cacheev1.StatsRequest{})
			if err != nil {
				return callError(err)
			}
			if output.v == "json" {
				b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(st)
				if err != nil {
					return err
				}
				cmd.Println(string(b))
				return nil
			}
			printStats(cmd, st)
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().VarP(output, "output", "o", "table or json")
	return cmd
}

func printStats(cmd *cobra.Command, st *cacheev1.StatsResponse) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(w, "%s\t%v\n", name, v) }
	segment := st.GetSegmentPath()
	if segment == "" {
		segment = "(private memory)"
	}
	row("entries", st.GetEntries())
	row("memory used", fmt.Sprintf("%s (%d bytes)", server.HumanBytes(st.GetMemoryUsedBytes()), st.GetMemoryUsedBytes()))
	row("memory limit", fmt.Sprintf("%s (%d bytes)", server.HumanBytes(st.GetMemoryLimitBytes()), st.GetMemoryLimitBytes()))
	row("hit rate", fmt.Sprintf("%.1f%%", 100*st.GetHitRate()))
	row("hits", st.GetHits())
	row("misses", st.GetMisses())
	row("sets", st.GetSets())
	row("deletes", st.GetDeletes())
	row("evictions", st.GetEvictions())
	row("expirations", st.GetExpirations())
	row("latency p50", st.GetLatencyP50().AsDuration())
	row("latency p95", st.GetLatencyP95().AsDuration())
	row("latency p99", st.GetLatencyP99().AsDuration())
	row("uptime", st.GetUptime().AsDuration().Round(time.Second))
	row("eviction", st.GetEviction())
	row("segment", segment)
	w.Flush()
}
