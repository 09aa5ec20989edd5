package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

// root is the repository root, relative to this package.
const root = ".."

// tool finds a binary by environment variable (the Makefile passes absolute paths),
// then in the repository's .tmp/bin. Under `make test-deploy` (DEPLOY_TOOLS_REQUIRED=1)
// a missing tool fails the test; run alone, it skips with how to install it. Only
// grpc_health_probe is needed this way: kustomize and helm are libraries here.
func tool(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join(root, ".tmp", "bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("DEPLOY_TOOLS_REQUIRED") == "1" {
		t.Fatalf("%s not found (set %s, or make tools installs it)", name, env)
	}
	t.Skipf("%s not found: run make tools, or set %s", name, env)
	return ""
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries builds cachee and the example app once per test binary, into a directory
// that a non-root uid can read (the pod run drops to the manifest's uid when root).
func binaries(t *testing.T) (cachee, app string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "cachee-deploy-bin-")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{{"cachee", "./cmd/cachee"}, {"example-app", "./examples/app"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, b.out), b.pkg)
			cmd.Dir = root
			cmd.Stderr = os.Stderr
			if buildErr = cmd.Run(); buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return filepath.Join(buildDir, "cachee"), filepath.Join(buildDir, "example-app")
}

var helpFlag = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)`)

// knownFlags are the flags `cachee --help` lists.
func knownFlags(t *testing.T) map[string]bool {
	t.Helper()
	cachee, _ := binaries(t)
	out, err := exec.Command(cachee, "--help").Output()
	if err != nil {
		t.Fatalf("cachee --help: %v", err)
	}
	flags := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := helpFlag.FindStringSubmatch(sc.Text()); m != nil {
			flags[m[1]] = true
		}
	}
	if !flags["max-memory"] || !flags["socket"] {
		t.Fatalf("cachee --help lists no --max-memory or --socket:\n%s", out)
	}
	return flags
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
