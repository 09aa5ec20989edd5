package deploy_test

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cachee/cachee/deploy/internal/release"
)

// TestRelease runs the release program (make release's) for this machine's platform
// alone (make release builds all four, with SBOMs), then checks what a user downloads:
// the checksums match, the archive holds a static cachee that reports the release's
// version and commit and serves a request, and the Homebrew formula points at the
// archive. The program runs as its own process: compressing the binary inside this
// race-instrumented test would take a minute.
func TestRelease(t *testing.T) {
	host := release.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	out := t.TempDir()
	const version = "1.2.3-test"
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "-C", abs, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(head))
	cmd := exec.Command("go", "run", "./cmd/release", "-root", abs, "-out", out, "-version", version,
		"-platforms", host.String(), "-url", "https://example.invalid/v{version}")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release: %v\n%s", err, b)
	}

	// checksums.txt, as sha256sum -c reads it.
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(out, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("checksums.txt line %q", sc.Text())
		}
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: checksum does not match", name)
		}
		sums[name] = sum
	}
	f.Close()
	archive := release.ArchiveName(version, host)
	if len(sums) != 1 || sums[archive] == "" {
		t.Fatalf("checksums.txt lists %v, want %s alone", sums, archive)
	}

	// The archive: cachee and the README, nothing else; cachee static.
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if b, err := exec.Command("tar", "-tvzf", filepath.Join(out, archive)).CombinedOutput(); err != nil ||
		!regexp.MustCompile(`^-rwxr-xr-x root/root +\d+ [^\n]* cachee\n-rw-r--r-- root/root +\d+ [^\n]* README.md\n$`).Match(b) {
		t.Errorf("archive %s: %v\n%s\nwant cachee (0755) and README.md (0644), owned by root", archive, err, b)
	}
	if b, err := exec.Command("tar", "-xzf", filepath.Join(out, archive), "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xzf: %v\n%s", err, b)
	}
	bin := filepath.Join(dir, "cachee")
	if e, err := elf.Open(bin); err == nil {
		for _, p := range e.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the release binary has an ELF interpreter: dynamically linked")
			}
		}
		e.Close()
	}

	// The Homebrew formula installs this archive, checked by its sha256.
	formula, err := os.ReadFile(filepath.Join(out, "homebrew", "Formula", "cachee.rb"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"class Cachee < Formula", `version "` + version + `"`,
		`url "https://example.invalid/v` + version + "/" + archive + `"`, `sha256 "` + sums[archive] + `"`,
		`bin.install "cachee"`, `shell_output("#{bin}/cachee version")`,
	} {
		if !strings.Contains(string(formula), want) {
			t.Errorf("formula lacks %s:\n%s", want, formula)
		}
	}

	// The binary: its version, then one request served.
	b, err := exec.Command(bin, "version").CombinedOutput()
	if want := "cachee " + version + "\ncommit " + commit + "\n"; err != nil || !strings.HasPrefix(string(b), want) {
		t.Fatalf("cachee version: %v\n%s\nwant it to begin %q", err, b, want)
	}
	sock := filepath.Join(t.TempDir(), "c.sock")
	srv := exec.Command(bin, "--socket="+sock, "--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=1mb", "--shm=")
	var logs strings.Builder
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	addr := "--addr=unix://" + sock
	var last []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if last, err = exec.Command(bin, "set", "release", "works", addr).CombinedOutput(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cachee set: %v %s\nserver: %s", err, last, logs.String())
		}
	}
	if b, err := exec.Command(bin, "get", "release", addr).Output(); err != nil || strings.TrimSpace(string(b)) != "works" {
		t.Fatalf("cachee get: %v %q", err, b)
	}
}
