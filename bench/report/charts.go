package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/cachee/cachee/bench/internal/hitsim"
)

const (
	chartW = 9 * vg.Inch
	chartH = 4.5 * vg.Inch
)

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// logY puts the Y axis on a log scale with readable tick labels.
func logY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
}

// latencyChart draws p50, p99 and p999 per path, on a log scale in µs.
func latencyChart(file, title string, rs []latencyResult) error {
	p := newPlot(title, "", "µs per call (log scale)")
	logY(p)
	var names []string
	for _, r := range rs {
		names = append(names, pathShort[r.Path])
	}
	p.NominalX(names...)
	for i, q := range []struct {
		name string
		f    func(latencyResult) time.Duration
	}{
		{"p50", func(r latencyResult) time.Duration { return r.P50 }},
		{"p99", func(r latencyResult) time.Duration { return r.P99 }},
		{"p999", func(r latencyResult) time.Duration { return r.P999 }},
	} {
		var pts plotter.XYs
		for j, r := range rs {
			if v := q.f(r); v > 0 {
				pts = append(pts, plotter.XY{X: float64(j), Y: float64(v) / 1e3})
			}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		sc.Radius = vg.Points(4)
		p.Add(sc)
		p.Legend.Add(q.name, sc)
	}
	return p.Save(chartW, chartH, file)
}

// throughputChart draws GETs per second per path across the loads, on a log scale.
func throughputChart(file string, loads []load, rs []throughResult) error {
	p := newPlot("Throughput: GETs per second of a hot key, 100 B value (median of runs)", "", "GETs per second (log scale)")
	logY(p)
	var names []string
	for _, l := range loads {
		names = append(names, l.name)
	}
	p.NominalX(names...)
	var top float64
	for i, path := range pathOrder {
		var pts plotter.XYs
		for j, l := range loads {
			for _, r := range rs {
				if r.Path == path && r.Load == l.name && r.Skipped == "" && r.Rate > 0 {
					pts = append(pts, plotter.XY{X: float64(j), Y: r.Rate})
				}
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(pathShort[path], line, points)
		for _, xy := range pts {
			top = max(top, xy.Y)
		}
	}
	// Room above the highest line for the legend.
	p.Legend.Left = true
	p.Y.Max = top * 30
	return p.Save(chartW, chartH, file)
}

// hitRateChart draws one trace's hit rate per policy across its sizes.
func hitRateChart(file string, t *hitsim.Trace, bySize map[int]map[string]hitRateResult) error {
	p := newPlot(fmt.Sprintf("Hit rate, %s (%s accesses)", t.Name, thousands(len(t.Keys))), "cache size (entries)", "hit rate (%)")
	if t.Sizes[len(t.Sizes)-1] >= 10*t.Sizes[0] {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	// Hit rates rise with the size, so the legend goes top left when the lines start
	// low there, and bottom right otherwise.
	var first, top float64
	for _, r := range bySize[t.Sizes[0]] {
		first = max(first, r.Median)
	}
	for _, byPol := range bySize {
		for _, r := range byPol {
			top = max(top, r.Median)
		}
	}
	p.Legend.Top, p.Legend.Left = first < 0.6*top, first < 0.6*top
	if !p.Legend.Top {
		p.Legend.YOffs = vg.Points(8)
	}
	p.Y.Min = 0
	for i, pol := range hitPolicies {
		var pts plotter.XYs
		for _, size := range t.Sizes {
			if r, ok := bySize[size][pol]; ok && len(r.Rates) > 0 {
				pts = append(pts, plotter.XY{X: float64(size), Y: r.Median})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(pol, line, points)
	}
	return p.Save(chartW, chartH, file)
}

// bars draws one bar per label; hline, when positive, is drawn across as a limit.
func bars(file, title, ylabel string, labels []string, values []float64, hline float64, hlineName string) error {
	p := newPlot(title, "", ylabel)
	bc, err := plotter.NewBarChart(plotter.Values(values), vg.Points(40))
	if err != nil {
		return err
	}
	bc.Color = plotutil.Color(0)
	bc.LineStyle.Width = 0
	p.Add(bc)
	p.NominalX(labels...)
	if hline > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: hline}, {X: float64(len(values)) - 0.5, Y: hline}})
		if err != nil {
			return err
		}
		l.Color = color.RGBA{R: 200, A: 255}
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(hlineName, l)
	}
	top := slices.Max(append(slices.Clone(values), hline))
	p.Y.Min, p.Y.Max = 0, top*1.15
	labelsOnBars, err := plotter.NewLabels(plotter.XYLabels{
		XYs:    barXYs(values),
		Labels: barLabels(values),
	})
	if err != nil {
		return err
	}
	for i := range labelsOnBars.TextStyle {
		labelsOnBars.TextStyle[i].XAlign = draw.XCenter
		labelsOnBars.TextStyle[i].YAlign = draw.YBottom
	}
	p.Add(labelsOnBars)
	return p.Save(chartW, chartH, file)
}

func barXYs(v []float64) plotter.XYs {
	out := make(plotter.XYs, len(v))
	for i, y := range v {
		out[i] = plotter.XY{X: float64(i), Y: y}
	}
	return out
}

func barLabels(v []float64) []string {
	out := make([]string, len(v))
	for i, y := range v {
		switch {
		case math.IsNaN(y):
			out[i] = "-"
		case y >= 100:
			out[i] = fmt.Sprintf("%.0f", y)
		default:
			out[i] = fmt.Sprintf("%.1f", y)
		}
	}
	return out
}

func memoryChart(file string, n int, m *memoryResult) error {
	per := func(x int64) float64 { return float64(x) / float64(n) }
	return bars(file, fmt.Sprintf("Bytes per entry, %s entries of 16 B keys + 100 B values", thousands(n)), "bytes per entry",
		[]string{"cachee memory_used", "cachee RSS", "cachee pod charge", "redis used_memory", "redis RSS"},
		[]float64{per(m.StoreUsed), per(m.CacheeAfter.VmRSS), per(m.CacheeAfter.RssAnon + m.SegmentPages), per(m.RedisUsed), per(m.RedisAfter.VmRSS)},
		116, "116 B: key + value")
}

func rssChart(file string, r *rssResult) error {
	mib := func(x int64) float64 { return float64(x) / (1 << 20) }
	return bars(file, fmt.Sprintf("cachee --max-memory=%s after writing 3x its capacity", mb(r.MaxMemory)), "MiB",
		[]string{"max-memory", "memory_used", "segment pages", "RssAnon", "VmRSS", "VmHWM (peak)"},
		[]float64{mib(r.MaxMemory), mib(r.StoreUsed), mib(r.SegmentPages), mib(r.Status.RssAnon), mib(r.Status.VmRSS), mib(r.Status.VmHWM)},
		mib(r.MaxMemory*3/2), "1.5 × max-memory")
}
