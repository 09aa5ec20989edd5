// Package release builds cachee's release artifacts on this machine, without network
// or Docker: a static binary for each platform, a reproducible archive of each, a
// CycloneDX SBOM of each binary, a checksums file and a Homebrew formula. `make
// release` runs it through deploy/cmd/release; docs/releasing.md says how a release is
// published.
package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Platforms are the platforms a release is built for.
var Platforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

// versionPkg is the package whose Version and Commit the release sets at link time.
const versionPkg = "github.com/cachee/cachee/cmd/cachee/internal/cli"

// Options say what to build and where.
type Options struct {
	Root      string     // the repository: the Go module with cmd/cachee
	Out       string     // output directory; removed and made again
	Version   string     // without a leading v, e.g. 0.2.0 or 0.2.0-SNAPSHOT-1a2b3c4
	Commit    string     // full commit hash
	Time      time.Time  // the commit's time: every archive entry's modification time
	Platforms []Platform // default Platforms
	SBOMTool  string     // cyclonedx-gomod; "" builds no SBOMs
	URL       string     // where the archives will be downloaded from, without the file name
	Log       io.Writer  // progress; nil for none
}

// Artifact is one file of the release.
type Artifact struct {
	Platform Platform
	Name     string // file name in Out
	SHA256   string // hex
}

// Result lists what Build wrote, all in Options.Out.
type Result struct {
	Archives  []Artifact
	SBOMs     []Artifact
	Checksums string // path of checksums.txt
	Formula   string // path of the Homebrew formula
}

// ArchiveName is the name of a platform's archive, as goreleaser names its own.
func ArchiveName(version string, p Platform) string {
	return fmt.Sprintf("cachee_%s_%s_%s.tar.gz", version, p.OS, p.Arch)
}

// Build builds the release.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Version == "" || strings.HasPrefix(o.Version, "v") {
		return nil, fmt.Errorf("release: version %q: want one without a leading v", o.Version)
	}
	if o.Commit == "" || o.URL == "" {
		return nil, errors.New("release: a commit and a download URL are required")
	}
	if len(o.Platforms) == 0 {
		o.Platforms = Platforms
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "release: "+format+"\n", args...)
		}
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Out, "build"), 0o755); err != nil {
		return nil, err
	}
	readme, err := os.ReadFile(filepath.Join(o.Root, "README.md"))
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for _, p := range o.Platforms {
		bin := filepath.Join(o.Out, "build", p.OS+"_"+p.Arch, "cachee")
		if err := buildBinary(ctx, o, p, bin); err != nil {
			return nil, err
		}
		logf("built %s (%s)", bin, p)
		name := ArchiveName(o.Version, p)
		sum, err := writeArchive(filepath.Join(o.Out, name), o.Time, []file{
			{"cachee", 0o755, bin}, {"README.md", 0o644, ""},
		}, readme)
		if err != nil {
			return nil, err
		}
		res.Archives = append(res.Archives, Artifact{p, name, sum})
		if o.SBOMTool != "" {
			a, err := sbom(ctx, o, p, bin)
			if err != nil {
				return nil, err
			}
			res.SBOMs = append(res.SBOMs, a)
			logf("SBOM %s", a.Name)
		}
	}
	res.Checksums = filepath.Join(o.Out, "checksums.txt")
	if err := writeChecksums(res.Checksums, append(slices.Clone(res.Archives), res.SBOMs...)); err != nil {
		return nil, err
	}
	res.Formula = filepath.Join(o.Out, "homebrew", "Formula", "cachee.rb")
	if err := writeFormula(res.Formula, o, res.Archives); err != nil {
		return nil, err
	}
	logf("wrote %s and %s", res.Checksums, res.Formula)
	return res, nil
}

// LDFlags are the linker flags of a release binary: no symbol table or DWARF (as the
// image's), and the version and commit that `cachee version` prints.
func LDFlags(version, commit string) string {
	return fmt.Sprintf("-s -w -X %s.Version=%s -X %s.Commit=%s", versionPkg, version, versionPkg, commit)
}

// buildBinary builds a static cachee for p: no cgo, paths trimmed, so that the same
// commit and Go release give the same bytes on any machine.
func buildBinary(ctx context.Context, o Options, p Platform, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags="+LDFlags(o.Version, o.Commit), "-o", out, "./cmd/cachee")
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("release: go build for %s: %w\n%s", p, err, b)
	}
	return nil
}

// file is one entry of an archive: from path, or (path "") the given contents.
type file struct {
	name string
	mode int64
	path string
}

// writeArchive writes a gzipped tar of files whose bytes depend only on their
// contents and mtime: fixed owner, order and modes, and no name or time in the gzip
// header. It returns the archive's SHA-256.
func writeArchive(path string, mtime time.Time, files []file, contents []byte) (string, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return "", err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		data := contents
		if f.path != "" {
			if data, err = os.ReadFile(f.path); err != nil {
				return "", err
			}
		}
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(data)), ModTime: mtime.UTC().Truncate(time.Second),
			Typeflag: tar.TypeReg, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if _, err := tw.Write(data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// sbom writes a CycloneDX SBOM of the binary with cyclonedx-gomod's bin mode, which
// reads the module list the Go linker embedded: what this binary really contains, for
// its platform. Then it checks the SBOM names cachee and its Go release.
func sbom(ctx context.Context, o Options, p Platform, bin string) (Artifact, error) {
	name := fmt.Sprintf("cachee_%s_%s_%s.sbom.cdx.json", o.Version, p.OS, p.Arch)
	out := filepath.Join(o.Out, name)
	cmd := exec.CommandContext(ctx, o.SBOMTool, "bin", "-json", "-licenses", "-std", "-noserial", "-notimestamp",
		"-version", "v"+o.Version, "-output", out, bin)
	cmd.Dir = o.Root
	// The tool names the platform in the package URL from these, not from the binary.
	cmd.Env = append(os.Environ(), "GOOS="+p.OS, "GOARCH="+p.Arch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return Artifact{}, fmt.Errorf("release: SBOM for %s: %w\n%s", p, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return Artifact{}, err
	}
	var doc struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name, Version, PURL string } `json:"component"`
		} `json:"metadata"`
		Components []struct{ Name, Version string } `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Artifact{}, fmt.Errorf("release: SBOM %s: %w", name, err)
	}
	hasStd := slices.ContainsFunc(doc.Components, func(c struct{ Name, Version string }) bool { return c.Name == "std" })
	platform := "goarch=" + p.Arch + "&goos=" + p.OS
	if doc.BOMFormat != "CycloneDX" || doc.Metadata.Component.Name != "github.com/cachee/cachee" ||
		!strings.Contains(doc.Metadata.Component.PURL, platform) ||
		doc.Metadata.Component.Version != "v"+o.Version || !hasStd || len(doc.Components) < 10 {
		return Artifact{}, fmt.Errorf("release: SBOM %s does not describe cachee v%s for %s with its modules and Go release (%s %s %s %s, %d components)",
			name, o.Version, p, doc.BOMFormat, doc.Metadata.Component.Name, doc.Metadata.Component.Version, doc.Metadata.Component.PURL, len(doc.Components))
	}
	sum := sha256.Sum256(data)
	return Artifact{p, name, hex.EncodeToString(sum[:])}, nil
}

// writeChecksums writes "SHA256  NAME" lines, sorted by name, as sha256sum does, so
// that `sha256sum -c checksums.txt` checks a download.
func writeChecksums(path string, arts []Artifact) error {
	slices.SortFunc(arts, func(a, b Artifact) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	for _, a := range arts {
		fmt.Fprintf(&b, "%s  %s\n", a.SHA256, a.Name)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
