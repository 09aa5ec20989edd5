// Command release builds cachee's release artifacts into a directory (see package
// release). `make release` runs it; with no -version it names a snapshot after the
// commit, as goreleaser's snapshot mode does.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cachee/cachee/deploy/internal/release"
)

func main() {
	var o release.Options
	flag.StringVar(&o.Root, "root", "..", "the repository")
	flag.StringVar(&o.Out, "out", "../dist", "output directory (emptied first)")
	flag.StringVar(&o.Version, "version", "", "version, e.g. 0.2.0 (default: the v* tag at HEAD, else a snapshot: LASTTAG-SNAPSHOT-COMMIT)")
	flag.StringVar(&o.SBOMTool, "sbom-tool", "", "cyclonedx-gomod, to write an SBOM of each binary")
	url := flag.String("url", "https://github.com/cachee/cachee/releases/download/v{version}", "where the archives are published ({version} is replaced)")
	platforms := flag.String("platforms", "", "comma-separated GOOS/GOARCH pairs (default: every platform of a release)")
	flag.Parse()
	for _, p := range strings.Split(*platforms, ",") {
		if p == "" {
			continue
		}
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok {
			fmt.Fprintf(os.Stderr, "release: -platforms: %q is not GOOS/GOARCH\n", p)
			os.Exit(2)
		}
		o.Platforms = append(o.Platforms, release.Platform{OS: goos, Arch: goarch})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, &o, *url); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *release.Options, url string) error {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = o.Root
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	var err error
	for _, p := range []*string{&o.Root, &o.Out, &o.SBOMTool} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	if o.Commit, err = git("rev-parse", "HEAD"); err != nil {
		return fmt.Errorf("release: git rev-parse HEAD: %w", err)
	}
	ct, err := git("log", "-1", "--format=%ct")
	if err != nil {
		return fmt.Errorf("release: git log: %w", err)
	}
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return fmt.Errorf("release: commit time %q: %w", ct, err)
	}
	o.Time = time.Unix(secs, 0)
	if o.Version == "" {
		if tag, err := git("describe", "--tags", "--exact-match", "--match", "v[0-9]*"); err == nil {
			o.Version = strings.TrimPrefix(tag, "v")
		} else {
			last, err := git("describe", "--tags", "--abbrev=0", "--match", "v[0-9]*")
			if err != nil {
				last = "v0.0.0"
			}
			o.Version = strings.TrimPrefix(last, "v") + "-SNAPSHOT-" + o.Commit[:7]
		}
	}
	o.URL = strings.ReplaceAll(url, "{version}", o.Version)
	o.Log = os.Stderr
	res, err := release.Build(ctx, *o)
	if err != nil {
		return err
	}
	for _, a := range append(res.Archives, res.SBOMs...) {
		fmt.Printf("%s  %s\n", a.SHA256, a.Name)
	}
	fmt.Printf("release %s of %s in %s: %s, %s\n", o.Version, o.Commit[:12], o.Out, res.Checksums, res.Formula)
	return nil
}
