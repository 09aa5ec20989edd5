package release

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// The Homebrew formula: a binary formula of the release archives, one per platform,
// as a tap holds it in Formula/cachee.rb. Its test runs `cachee version`.
var formula = template.Must(template.New("formula").Parse(`# Written by make release (deploy/internal/release); publish it as Formula/cachee.rb
# in the tap, after the archives are uploaded to {{.URL}}.
class Cachee < Formula
  desc "Cache sidecar for Kubernetes: an LFU cache for gRPC and Redis clients"
  homepage "https://github.com/cachee/cachee"
  version "{{.Version}}"
{{range .OSes}}
  on_{{.Name}} do{{range .Archs}}
    on_{{.Name}} do
      url "{{.URL}}"
      sha256 "{{.SHA256}}"
    end{{end}}
  end
{{end}}
  def install
    bin.install "cachee"
  end

  test do
    assert_match "cachee #{version}", shell_output("#{bin}/cachee version")
  end
end
`))

// Homebrew's names for the platforms' OSes and architectures.
var brewOS = map[string]string{"darwin": "macos", "linux": "linux"}
var brewArch = map[string]string{"amd64": "intel", "arm64": "arm"}

func writeFormula(path string, o Options, archives []Artifact) error {
	type arch struct{ Name, URL, SHA256 string }
	type osBlock struct {
		Name  string
		Archs []arch
	}
	var oses []*osBlock
	byOS := map[string]*osBlock{}
	for _, a := range archives {
		osName, archName := brewOS[a.Platform.OS], brewArch[a.Platform.Arch]
		if osName == "" || archName == "" {
			return fmt.Errorf("release: no Homebrew name for %s", a.Platform)
		}
		b := byOS[osName]
		if b == nil {
			b = &osBlock{Name: osName}
			byOS[osName] = b
			oses = append(oses, b)
		}
		b.Archs = append(b.Archs, arch{archName, strings.TrimSuffix(o.URL, "/") + "/" + a.Name, a.SHA256})
	}
	var sb strings.Builder
	if err := formula.Execute(&sb, map[string]any{"Version": o.Version, "URL": o.URL, "OSes": oses}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
