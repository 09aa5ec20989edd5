package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cachee/cachee/bench/internal/procs"
)

// section is one numbered part of the report: its own header (machine, load, commands,
// runs, spread), a body of tables and notes, and its charts.
type section struct {
	id, title string
	machine   procs.Machine
	load0     procs.LoadAvg
	started   time.Time
	commands  []string
	runs      string
	spread    string
	body      bytes.Buffer
	err       error
}

func newSection(id, title string, m procs.Machine) *section {
	return &section{id: id, title: title, machine: m, load0: procs.ReadLoadAvg(), started: time.Now()}
}

// command records a command the section ran (shown once each).
func (s *section) command(c string) {
	for _, have := range s.commands {
		if have == c {
			return
		}
	}
	s.commands = append(s.commands, c)
}

func (s *section) printf(format string, args ...any) { fmt.Fprintf(&s.body, format, args...) }

func (s *section) failed(err error) { s.err = err }

// chart adds a chart to the body; file is a name in the output directory.
func (s *section) chart(alt, file string) { s.printf("![%s](%s)\n\n", alt, file) }

func (s *section) write(w io.Writer) {
	load1 := procs.ReadLoadAvg()
	fmt.Fprintf(w, "## %s\n\n", s.title)
	fmt.Fprintf(w, "- **Machine**: %d CPUs, %s; load average (1 min) %.2f at the start of this section, %.2f at its end (5 min: %.2f, %.2f); the section took %v\n",
		s.machine.CPUs, s.machine.CPUModel, s.load0[0], load1[0], s.load0[1], load1[1], time.Since(s.started).Round(time.Second))
	if len(s.commands) > 0 {
		fmt.Fprintf(w, "- **Command**: %s\n", strings.Join(s.commands, "; "))
	}
	if s.runs != "" {
		fmt.Fprintf(w, "- **Runs**: %s\n", s.runs)
	}
	if s.spread != "" {
		fmt.Fprintf(w, "- **Spread**: %s\n", s.spread)
	}
	fmt.Fprintln(w)
	if s.err != nil {
		fmt.Fprintf(w, "**This section failed**: %v\n\n", s.err)
	}
	w.Write(s.body.Bytes())
}

// table writes a Markdown table; align holds one 'l' or 'r' per column.
func table(w io.Writer, header []string, align string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(header, " | "))
	for i := range header {
		if i < len(align) && align[i] == 'r' {
			fmt.Fprint(w, "---:|")
		} else {
			fmt.Fprint(w, "---|")
		}
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

// fmtDur shows a latency with three significant digits in a unit that suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.3g ms", float64(d)/1e6)
	}
}

// fmtRate shows operations per second with three significant digits.
func fmtRate(r float64) string {
	switch {
	case math.IsNaN(r) || r <= 0:
		return "-"
	case r >= 1e6:
		return fmt.Sprintf("%.3gM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.3gk", r/1e3)
	default:
		return fmt.Sprintf("%.3g", r)
	}
}

// fmtRatio shows a ratio with two decimals (three significant digits below 0.1).
func fmtRatio(r float64) string {
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		return "-"
	case r < 0.1:
		// Two significant digits, never in exponent form: 0.000075×, not 7.5e-05×.
		prec := max(int(-math.Floor(math.Log10(r)))+1, 2)
		return strconv.FormatFloat(r, 'f', prec, 64) + "×"
	default:
		return fmt.Sprintf("%.2f×", r)
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// Report markers in docs/performance.md: the text between them is the latest report.
const (
	docsBegin = "<!-- report:begin (bench/report writes what follows; edit above or below) -->"
	docsEnd   = "<!-- report:end -->"
)

// writeDocs puts the report between the markers of the docs file, its chart links
// rewritten to point at the output directory, and its headings moved down one level.
func writeDocs(docs, outDir string, report []byte) error {
	text, err := os.ReadFile(docs)
	if err != nil {
		return err
	}
	i := bytes.Index(text, []byte(docsBegin))
	j := bytes.Index(text, []byte(docsEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %q ... %q markers", docs, docsBegin, docsEnd)
	}
	rel, err := filepath.Rel(filepath.Dir(docs), outDir)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	var inner bytes.Buffer
	for _, line := range strings.SplitAfter(string(report), "\n") {
		if strings.HasPrefix(line, "#") {
			line = "#" + line
		}
		if strings.HasPrefix(line, "![") {
			if k := strings.Index(line, "]("); k >= 0 {
				line = line[:k+2] + rel + "/" + line[k+2:]
			}
		}
		inner.WriteString(line)
	}
	var out bytes.Buffer
	out.Write(text[:i+len(docsBegin)])
	out.WriteString("\n\n")
	out.Write(bytes.TrimSpace(inner.Bytes()))
	out.WriteString("\n\n")
	out.Write(text[j:])
	return os.WriteFile(docs, out.Bytes(), 0o644)
}

// results are the figures later sections and raw/results.json use.
type results struct {
	Started  time.Time       `json:"started"`
	Seconds  float64         `json:"seconds"`
	Latency  []latencyResult `json:"latency,omitempty"`
	Through  []throughResult `json:"throughput,omitempty"`
	HitRates []hitRateResult `json:"hit_rates,omitempty"`
	Memory   *memoryResult   `json:"memory,omitempty"`
	RSS      *rssResult      `json:"rss,omitempty"`
	L2       []latencyResult `json:"l2,omitempty"`
	SDKs     []sdkResult     `json:"sdks,omitempty"`
	GRPC     grpcResult      `json:"grpc"`
}

// writeRaw keeps every figure under raw/, which git ignores: the committed report is the
// Markdown and the charts. A figure that could not be computed is a NaN, which JSON
// cannot hold; the figures are then written as Go syntax instead. The files of an
// earlier run are removed first, so that neither can pass for this run's.
func (b *bench) writeRaw() error {
	dir := filepath.Join(b.cfg.Out, "raw")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"results.json", "results.txt"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	data, err := json.MarshalIndent(b.results, "", "  ")
	if err != nil {
		return os.WriteFile(filepath.Join(dir, "results.txt"), fmt.Appendf(nil, "%+v\n", b.results), 0o644)
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644)
}
