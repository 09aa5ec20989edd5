package main_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readmeBlock is a ```sh block of the README, and the comment that exempts it.
var readmeBlock = regexp.MustCompile("(?s)(<!-- not run by the README test: ([^>]*)-->\n)?```sh\n(.*?)```")

// Expectations a README command states in its comment: "exits N", and "prints `X`"
// (X in the output).
var (
	readmeExit   = regexp.MustCompile(`\bexits (\d+)\b`)
	readmePrints = regexp.MustCompile("prints `([^`]+)`")
)

// TestREADMECommands runs every command of the README's shell blocks from the
// repository's root, as a new user would beside `make run`, against a running cachee:
// the default socket and ports become the test server's, and bin/cachee and
// .tmp/bin's tools the ones under test. Each must exit as its comment says (0 unless
// "exits N") and print what its comment quotes.
func TestREADMECommands(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, "--max-memory=256mb") // make run's, the default
	_, tcpPort, _ := net.SplitHostPort(p.tcp)
	grpcurl := tool(t, "CACHEE_GRPCURL", "grpcurl")
	probe := tool(t, "CACHEE_HEALTH_PROBE", "grpc-health-probe")
	// On PATH, as the README runs them (make deps installs redis-cli).
	tool(t, "", "redis-cli")
	tool(t, "", "curl")
	local := strings.NewReplacer(
		"/var/run/cachee/cachee.sock", p.sock,
		".tmp/bin/grpcurl", grpcurl,
		".tmp/bin/grpc-health-probe", probe,
		"bin/cachee", binary,
		"-p 6380", "-p "+tcpPort,
		"localhost:6381", p.http,
		"localhost:9090", p.metrics,
	)
	ran := 0
	for _, m := range readmeBlock.FindAllStringSubmatch(string(readme), -1) {
		if m[1] != "" {
			t.Logf("not run: %s (%s)", strings.TrimSpace(m[3]), strings.TrimSpace(m[2]))
			continue
		}
		for _, line := range strings.Split(m[3], "\n") {
			cmdline, comment, _ := strings.Cut(line, "  # ")
			cmdline = strings.TrimSpace(cmdline)
			if cmdline == "" || strings.HasPrefix(cmdline, "#") {
				continue
			}
			if strings.HasPrefix(cmdline, "make ") {
				t.Errorf("README runs %q outside a block marked as not run by this test", cmdline)
				continue
			}
			want := 0
			if e := readmeExit.FindStringSubmatch(comment); e != nil {
				want, _ = strconv.Atoi(e[1])
			}
			cmd := exec.Command("bash", "-c", local.Replace(cmdline))
			cmd.Dir = root
			cmd.Env = cleanEnv("CACHEE_SOCKET=" + p.sock)
			out, _ := cmd.CombinedOutput()
			ran++
			if code := cmd.ProcessState.ExitCode(); code != want {
				t.Errorf("%s\nexited %d, want %d:\n%s", cmdline, code, want, out)
				continue
			}
			for _, pr := range readmePrints.FindAllStringSubmatch(comment, -1) {
				if !strings.Contains(string(out), pr[1]) {
					t.Errorf("%s\nprinted %q, which lacks %q", cmdline, out, pr[1])
				}
			}
		}
	}
	if ran < 15 {
		t.Fatalf("ran %d README commands; the README or the block pattern changed", ran)
	}
}
