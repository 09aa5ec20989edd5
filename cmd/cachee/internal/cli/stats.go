package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	cachee "github.com/cachee/cachee/sdk/go"
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
			return o.run(cmd, func(ctx context.Context, c *cachee.Client) error {
				st, err := c.Stats(ctx)
				if err != nil {
					return err
				}
				if output.v == "json" {
					b, err := json.Marshal(statsJSON(st))
					if err != nil {
						return err
					}
					cmd.Println(string(b))
					return nil
				}
				printStats(cmd, st)
				return nil
			})
		},
	}
	o.register(cmd, true)
	cmd.Flags().VarP(output, "output", "o", "table or json")
	return cmd
}

// statsOutput is stats -o json: the StatsResponse fields under their proto names, with
// counters as JSON numbers, durations as protobuf's JSON writes them ("0.000012s"), and
// the generation, an identifier that a JSON number could round, as a decimal string.
type statsOutput struct {
	Hits             uint64  `json:"hits"`
	Misses           uint64  `json:"misses"`
	Sets             uint64  `json:"sets"`
	Deletes          uint64  `json:"deletes"`
	Evictions        uint64  `json:"evictions"`
	Expirations      uint64  `json:"expirations"`
	Entries          int64   `json:"entries"`
	MemoryUsedBytes  int64   `json:"memory_used_bytes"`
	MemoryLimitBytes int64   `json:"memory_limit_bytes"`
	HitRate          float64 `json:"hit_rate"`
	Uptime           string  `json:"uptime"`
	LatencyP50       string  `json:"latency_p50"`
	LatencyP95       string  `json:"latency_p95"`
	LatencyP99       string  `json:"latency_p99"`
	Generation       string  `json:"generation"`
	Eviction         string  `json:"eviction"`
	SegmentPath      string  `json:"segment_path"`
}

func statsJSON(st cachee.Stats) statsOutput {
	return statsOutput{
		Hits: st.Hits, Misses: st.Misses, Sets: st.Sets, Deletes: st.Deletes, Evictions: st.Evictions,
		Expirations: st.Expirations, Entries: st.Entries, MemoryUsedBytes: st.MemoryUsed,
		MemoryLimitBytes: st.MemoryLimit, HitRate: st.HitRate, Uptime: jsonDuration(st.Uptime),
		LatencyP50: jsonDuration(st.LatencyP50), LatencyP95: jsonDuration(st.LatencyP95),
		LatencyP99: jsonDuration(st.LatencyP99), Generation: strconv.FormatUint(st.Generation, 10),
		Eviction: st.Eviction, SegmentPath: st.SegmentPath,
	}
}

// jsonDuration writes d as protobuf's JSON mapping writes a Duration: seconds, "s".
func jsonDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func printStats(cmd *cobra.Command, st cachee.Stats) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	row := func(name string, v any) { fmt.Fprintf(w, "%s\t%v\n", name, v) }
	segment := st.SegmentPath
	if segment == "" {
		segment = "(private memory)"
	}
	row("entries", st.Entries)
	row("memory used", fmt.Sprintf("%s (%d bytes)", server.HumanBytes(st.MemoryUsed), st.MemoryUsed))
	row("memory limit", fmt.Sprintf("%s (%d bytes)", server.HumanBytes(st.MemoryLimit), st.MemoryLimit))
	row("hit rate", fmt.Sprintf("%.1f%%", 100*st.HitRate))
	row("hits", st.Hits)
	row("misses", st.Misses)
	row("sets", st.Sets)
	row("deletes", st.Deletes)
	row("evictions", st.Evictions)
	row("expirations", st.Expirations)
	row("latency p50", st.LatencyP50)
	row("latency p95", st.LatencyP95)
	row("latency p99", st.LatencyP99)
	row("uptime", st.Uptime.Round(time.Second))
	row("eviction", st.Eviction)
	row("segment", segment)
	w.Flush()
}
