package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// lruSlack is how far below lru cachee-lfu may fall on recency-biased cases, in points.
const lruSlack = 1.0

type caseKey struct {
	trace string
	size  int
}

// byCase indexes successful results by (trace, size) and policy.
func byCase(results []Result) map[caseKey]map[string]Result {
	m := map[caseKey]map[string]Result{}
	for _, r := range results {
		k := caseKey{r.Trace, r.Size}
		if m[k] == nil {
			m[k] = map[string]Result{}
		}
		m[k][r.Policy] = r
	}
	return m
}

func ok(r Result, found bool) bool { return found && r.Err == "" }

// recencyBiased reports whether a case counts as recency-biased: lru at or above the
// frequency-aware reference (otter) there, or its trace named in -recency. Without an
// otter result every case counts.
func recencyBiased(o *options, trace string, pol map[string]Result) bool {
	if slices.Contains(o.recency, trace) {
		return true
	}
	lru, lok := pol[polLRU]
	ot, ook := pol[polOtter]
	if !ok(ot, ook) {
		return true // no reference to tell: every case counts
	}
	return ok(lru, lok) && lru.Hits >= ot.Hits
}

// summarize finds the cases that miss the targets: cachee-lfu below otter anywhere, and
// more than lruSlack points below lru on recency-biased cases.
func summarize(o *options, out *output) {
	cases := byCase(out.Results)
	out.BelowOtter, out.BelowLRU = []gap{}, []gap{}
	for _, t := range out.Traces {
		for _, size := range t.Sizes {
			pol := cases[caseKey{t.Name, size}]
			lfu, found := pol[polLFU]
			if !ok(lfu, found) {
				continue
			}
			if ot, found := pol[polOtter]; ok(ot, found) && lfu.Hits < ot.Hits {
				out.BelowOtter = append(out.BelowOtter, gap{t.Name, size, lfu.HitRate, ot.HitRate, lfu.HitRate - ot.HitRate})
			}
			if lru, found := pol[polLRU]; ok(lru, found) && lfu.HitRate < lru.HitRate-lruSlack && recencyBiased(o, t.Name, pol) {
				out.BelowLRU = append(out.BelowLRU, gap{t.Name, size, lfu.HitRate, lru.HitRate, lfu.HitRate - lru.HitRate})
			}
		}
	}
}

func writeJSON(w io.Writer, out *output) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// thousands formats n with commas.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func signed(x float64) string {
	if x >= 0.005 {
		return fmt.Sprintf("+%.2f", x)
	}
	if x > -0.005 {
		return "0.00"
	}
	return fmt.Sprintf("%.2f", x)
}

func writeMarkdown(w io.Writer, out *output) {
	cases := byCase(out.Results)
	has := func(p string) bool { return slices.Contains(out.Policies, p) }
	fmt.Fprintf(w, "# Hit rates (%%)\n\n")
	if out.Runs > 1 {
		fmt.Fprintf(w, "Each cell is the mean of %d runs ± half their range.\n\n", out.Runs)
	} else {
		fmt.Fprintf(w, "One run each. The caches hash with random seeds, so small caches vary between runs "+
			"(by points on the smallest LIRS cases): -runs N shows the range.\n\n")
	}
	for _, n := range out.Notes {
		fmt.Fprintf(w, "Note: %s\n\n", n)
	}
	for _, t := range out.Traces {
		fmt.Fprintf(w, "## %s\n\n%s, %s accesses, %s distinct keys (%s)\n\n",
			t.Name, strings.ToUpper(t.Format), thousands(t.Accesses), thousands(t.Unique), t.Source)
		cols := []string{"size"}
		cols = append(cols, out.Policies...)
		if has(polLFU) && has(polOtter) {
			cols = append(cols, "lfu - otter")
		}
		if has(polLFU) && has(polLRU) {
			cols = append(cols, "lfu - lru")
		}
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
		var notes []string
		for _, size := range t.Sizes {
			pol := cases[caseKey{t.Name, size}]
			row := []string{thousands(size)}
			for _, p := range out.Policies {
				r := pol[p]
				cell := fmt.Sprintf("%.2f", r.HitRate)
				if out.Runs > 1 {
					cell += fmt.Sprintf(" ±%.2f", (r.MaxRate-r.MinRate)/2)
				}
				if r.Err != "" {
					cell = "error"
					notes = append(notes, fmt.Sprintf("%s @ %d: %s", p, size, r.Err))
				}
				if len(r.Anomalies) > 0 {
					cell += " (!)"
					for _, a := range r.Anomalies {
						notes = append(notes, fmt.Sprintf("%s @ %d: %s", p, size, a))
					}
				}
				row = append(row, cell)
			}
			lfu, lfuOK := pol[polLFU]
			lfuOK = ok(lfu, lfuOK)
			for _, other := range []string{polOtter, polLRU} {
				if !has(polLFU) || !has(other) {
					continue
				}
				if r, found := pol[other]; lfuOK && ok(r, found) {
					row = append(row, signed(lfu.HitRate-r.HitRate))
				} else {
					row = append(row, "-")
				}
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- (!) %s\n", n)
		}
		if len(notes) > 0 {
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, summaryLine(out))
}

func listGaps(gs []gap) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = fmt.Sprintf("%s@%d (%s)", g.Trace, g.Size, signed(g.Points))
	}
	return strings.Join(parts, ", ")
}

// summaryLine is the closing line: every case that misses a target.
func summaryLine(out *output) string {
	has := func(p string) bool { return slices.Contains(out.Policies, p) }
	total := 0
	for _, t := range out.Traces {
		total += len(t.Sizes)
	}
	var parts []string
	if has(polLFU) && has(polOtter) {
		s := fmt.Sprintf("cachee-lfu below otter in %d of %d cases", len(out.BelowOtter), total)
		if len(out.BelowOtter) > 0 {
			s += ": " + listGaps(out.BelowOtter)
		}
		parts = append(parts, s)
	}
	if has(polLFU) && has(polLRU) {
		s := fmt.Sprintf("cachee-lfu more than %.0f point below lru on recency-biased cases (lru >= otter, or -recency) in %d",
			lruSlack, len(out.BelowLRU))
		if len(out.BelowLRU) > 0 {
			s += ": " + listGaps(out.BelowLRU)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "Summary: nothing to compare (need lfu with otter or lru)."
	}
	return "Summary: " + strings.Join(parts, "; ") + "."
}
