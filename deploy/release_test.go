package deploy_test

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cachee/cachee/deploy/internal/release"
)

// TestRelease builds the release for this machine's platform alone (make release
// builds all four, with SBOMs), then checks what a user downloads: the checksums
// match, the archive holds a static cachee that reports the release's version and
// commit and serves a request, and the Homebrew formula points at the archive.
func TestRelease(t *testing.T) {
	host := release.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	out := t.TempDir()
	const version, commit = "1.2.3-test", "0123456789abcdef0123456789abcdef01234567"
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := release.Build(ctx, release.Options{
		Root: abs, Out: out, Version: version, Commit: commit, Time: time.Unix(1700000000, 0),
		Platforms: []release.Platform{host}, URL: "https://example.invalid/v" + version,
	})
	if err != nil {
		t.Fatal(err)
	}

	// checksums.txt, as sha256sum -c reads it.
	sums := map[string]string{}
	f, err := os.Open(res.Checksums)
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
	names := extract(t, filepath.Join(out, archive), dir)
	if strings.Join(names, " ") != "cachee README.md" {
		t.Errorf("archive holds %v, want cachee and README.md", names)
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
	formula, err := os.ReadFile(res.Formula)
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

// extract unpacks a .tar.gz into dir and returns the names of its entries in order.
func extract(t *testing.T, archive, dir string) []string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if strings.Contains(h.Name, "/") || h.Typeflag != tar.TypeReg {
			t.Fatalf("archive entry %q (type %c): want plain files at the top", h.Name, h.Typeflag)
		}
		w, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_WRONLY|os.O_EXCL, os.FileMode(h.Mode))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}
