package hitsim

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ModuleRoot is the nearest directory at or above the working directory that holds a
// go.mod, or "" if none does.
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// DefaultTracesDir is ../shared/traces beside the module root (the working directory's
// parent if there is no module).
func DefaultTracesDir() string {
	root := ModuleRoot()
	if root == "" {
		root = "."
	}
	return filepath.Join(root, "..", "shared", "traces")
}

// TraceName names a file found under the traces directory: its path there without the
// compression and .trace extensions ("lirs/gli.trace.gz" is "lirs/gli").
func TraceName(rel string) string {
	name := filepath.ToSlash(rel)
	for _, ext := range []string{".gz", ".zst", ".xz", ".trace", ".txt", ".lis"} {
		name = strings.TrimSuffix(name, ext)
	}
	return name
}

// KnownSizes are the sizes the traces README suggests, by trace name.
func KnownSizes(name string) []int {
	switch {
	case name == "arc/oltp":
		return []int{250, 500, 750, 1000, 1250, 1500, 1750, 2000}
	case name == "arc/p3":
		return []int{25_000, 50_000, 100_000, 200_000}
	case strings.HasPrefix(name, "lirs/"):
		return []int{100, 250, 500, 1000, 2000}
	case name == "corda/vaultservice":
		return []int{500, 1000, 2500, 5000, 10000}
	}
	return nil
}

// RelativeSizes are sizes for a trace nobody chose sizes for: 0.5% to 10% of its keys.
func RelativeSizes(unique int) []int {
	var out []int
	for _, pm := range []int{5, 10, 25, 50, 100} { // per mille
		n := max(1, unique*pm/1000)
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// FindTraces lists the trace files under dir (everything but documentation), by name.
func FindTraces(dir string) (map[string]string, error) {
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := d.Name()
		if d.IsDir() {
			if path != dir && strings.HasPrefix(base, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(base, ".") || strings.HasSuffix(base, ".md") || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		found[TraceName(rel)] = path
		return nil
	})
	return found, err
}
