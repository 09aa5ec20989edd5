package server_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRule holds the packages to the direction of their edges: cmd -> server ->
// server/l2 -> server/tier -> store, and server/resp beside server, linking neither
// gRPC nor the generated API. It reads what each package links with go list -deps, so
// an edge through any other package counts too.
func TestImportRule(t *testing.T) {
	const mod = "github.com/cachee/cachee/"
	grpc, gen := "google.golang.org/grpc/...", mod+"gen/..."
	for pkg, banned := range map[string][]string{
		"store":       {mod + "server/...", grpc, gen},
		"server/tier": {mod + "server", mod + "server/l2/...", mod + "server/resp/...", grpc, gen},
		"server/l2":   {mod + "server", mod + "server/resp/...", grpc, gen},
		"server/resp": {mod + "server", grpc, gen},
	} {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if matches(dep, b) {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}

// matches is go list's pattern match for an import path: "p/..." is p and everything
// below it.
func matches(path, pattern string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == p || strings.HasPrefix(path, p+"/")
	}
	return path == pattern
}
