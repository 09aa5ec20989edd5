package main

import (
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The sections a report has, by the start of their heading.
var sectionHeads = []string{
	"## 1. Latency per call",
	"## 2. Throughput",
	"## 3. Hit rate",
	"## 4. Memory",
	"## 5. L1/L2",
	"## 6. SDK paths",
}

const l2NotMeasured = "not measured: this build has no L2 tier"

var imageRef = regexp.MustCompile(`!\[[^\]]*\]\(([^)]+)\)`)

// checkReport checks the structure of the report in dir: every section is there with
// its machine, command, runs and spread, the tables have the rows they should, and every
// chart it links exists and decodes as a PNG. It never looks at a figure's value: the
// smoke run's timings mean nothing.
func checkReport(dir string) error {
	text, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	doc := string(text)
	for _, h := range []string{"# cachee benchmarks", "## What this means for a pod", "## gRPC targets"} {
		if !strings.Contains(doc, h) {
			fail("no %q", h)
		}
	}
	secs := splitSections(doc)
	for _, h := range sectionHeads {
		body, ok := secs[h]
		if !ok {
			fail("no section %q", h)
			continue
		}
		for _, want := range []string{"- **Machine**: ", " CPUs, ", "load average", "- **Command**: ", "- **Runs**: ", "- **Spread**: "} {
			if !strings.Contains(body, want) {
				fail("%s: no %q", h, want)
			}
		}
		if strings.Contains(body, "**This section failed**") {
			fail("%s: the section failed", h)
		}
	}
	tableRows := func(h string) [][]int { return tables(secs[h]) }
	if t := tableRows(sectionHeads[0]); len(t) != 2 || t[0][0] != len(pathOrder) || t[1][0] != len(pathOrder) || t[0][1] != 8 {
		fail("latency: want 2 tables of %d rows and 8 columns, have %v", len(pathOrder), t)
	}
	if t := tableRows(sectionHeads[1]); len(t) != 3 || t[0][0] != len(pathOrder) || t[0][1] != 5 {
		fail("throughput: want 3 tables of %d rows and 5 columns, have %v", len(pathOrder), t)
	}
	hr := secs[sectionHeads[2]]
	subs := strings.Count(hr, "\n### ")
	charts := strings.Count(hr, "](hitrate-")
	if subs < 3 || subs != charts || !strings.Contains(hr, "### zipf-1.0") {
		fail("hit rate: %d traces, %d charts: want one chart per trace, the Zipf traces among them", subs, charts)
	}
	if t := tables(hr); len(t) != subs+1 {
		fail("hit rate: %d tables for %d traces and the summary", len(t), subs)
	} else {
		for _, tb := range t[1:] {
			if tb[1] != 7 {
				fail("hit rate: a table of %d columns, want 7", tb[1])
			}
		}
		if strings.Count(hr, policyRedis) < 2 {
			fail("hit rate: no %s column or figures", policyRedis)
		}
	}
	if t := tableRows(sectionHeads[3]); len(t) != 2 {
		fail("memory: want 2 tables, have %d", len(t))
	}
	l2 := secs[sectionHeads[4]]
	if t := tables(l2); !strings.Contains(l2, l2NotMeasured) && (len(t) != 1 || t[0][0] != len(l2Order)) {
		fail("L1/L2: neither %q nor a table of %d rows", l2NotMeasured, len(l2Order))
	}
	if t := tableRows(sectionHeads[5]); len(t) != 1 || t[0][0] < 3*len(sdkRunners(true)) || t[0][1] != 9 {
		fail("SDK paths: want 1 table of at least 3 rows per runner and 9 columns, have %v", t)
	}
	var linked []string
	for _, m := range imageRef.FindAllStringSubmatch(doc, -1) {
		linked = append(linked, m[1])
		if err := checkPNG(filepath.Join(dir, m[1])); err != nil {
			fail("chart %s: %v", m[1], err)
		}
	}
	for _, want := range []string{"latency-100B.png", "latency-5KiB.png", "throughput.png", "memory.png", "rss.png"} {
		if !slices.Contains(linked, want) {
			fail("chart %s not linked", want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, f := range files {
		if !slices.Contains(linked, filepath.Base(f)) {
			fail("chart %s is not linked from the report", filepath.Base(f))
		}
	}
	return errors.Join(errs...)
}

// splitSections maps each "## " heading line to the text up to the next one.
func splitSections(doc string) map[string]string {
	out := map[string]string{}
	parts := strings.Split("\n"+doc, "\n## ")
	for _, p := range parts[1:] {
		head, body, _ := strings.Cut(p, "\n")
		for _, h := range sectionHeads {
			if strings.HasPrefix("## "+head, h) {
				out[h] = body
			}
		}
	}
	return out
}

// tables returns, for each Markdown table in text, its number of data rows and columns.
func tables(text string) [][]int {
	var out [][]int
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "| ") || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "|---") {
			continue
		}
		cols := strings.Count(lines[i], " | ") + 1
		rows := 0
		j := i + 2
		for ; j < len(lines) && strings.HasPrefix(lines[j], "| "); j++ {
			rows++
		}
		out = append(out, []int{rows, cols})
		i = j
	}
	return out
}

func checkPNG(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return err
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 100 {
		return fmt.Errorf("only %dx%d pixels", b.Dx(), b.Dy())
	}
	return nil
}
