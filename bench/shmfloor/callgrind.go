package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
	"github.com/cachee/cachee/store"
)

// Instruction counts. valgrind's callgrind counts the instructions a program executes;
// the count is the same on an idle and a loaded machine. Each figure is the difference
// between two runs of the same program that differ only in the number of operations,
// divided by that difference: what the program does once (start, setup, exit) cancels
// out. The programs run with GOMAXPROCS=1, GOGC=off and no asynchronous preemption,
// and keep their background work quiet (the store's loop stopped, the SDK flushing
// hourly), so that what is counted is the operations and their loop.
//
// Go programs under callgrind must receive no signal (callgrind 3.19 asserts on Go's
// signal handling), so the programs under valgrind start no child process: this
// process, outside valgrind, starts the sidecar and the floor's writer.

const module = "github.com/cachee/cachee/"

// counted are the whole Gets: the floor and the SDK run by this program (-count), the
// store's Gets by the store's benchmarks (store/parts_test.go).
var counted = []struct{ name, bench string }{
	{"floor", ""},
	{"store.Reader.Get", "^BenchmarkPartReaderGet$"},
	{"SDK GetInto (shm)", ""},
	{"store.Store.Get (GetHit)", "^BenchmarkPartStoreGet$"},
}

// parts are the store's benchmarks of the parts of a Get, alone. Each figure is less
// the first's, the benchmark loop calling an empty function.
var parts = []struct{ name, bench string }{
	{"loop and call, subtracted from the others", "^BenchmarkPartNone$"},
	{"hash: XXH3-64 of the 9-byte key", "^BenchmarkPartHash$"},
	{"probe: header, directory, bucket, tag, key compare, re-check (0-byte value)", "^BenchmarkPartProbe$"},
	{"copy: 100 bytes out of the segment", "^BenchmarkPartCopy$"},
	{"expiry: the rule, far from a deadline", "^BenchmarkPartExpiry$"},
	{"clock: time.Now (read near a deadline only)", "^BenchmarkPartClock$"},
	{"record: the store's read buffer", "^BenchmarkPartRecord$"},
}

const countN1, countN2 = 20_000, 220_000

var errNotCounted = errors.New("no instructions counted")

func countAll(bin, only string) error {
	match, err := regexp.Compile(only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	if _, err := exec.LookPath("valgrind"); err != nil {
		return errors.New("valgrind not found (Debian: apt-get install valgrind)")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	e, err := setup(bin, false)
	if err != nil {
		return err
	}
	defer e.close()
	// The programs under valgrind, built here without cgo.
	self := filepath.Join(e.dir, "shmfloor")
	storeTest := filepath.Join(e.dir, "store.test")
	for _, b := range [][]string{{"build", "-o", self, "./bench/shmfloor"}, {"test", "-c", "-o", storeTest, "./store"}} {
		cmd := exec.Command("go", b...)
		cmd.Dir, cmd.Stderr = root, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %s: %w", strings.Join(b, " "), err)
		}
	}
	storeArgs := func(bench string) (string, []string, string) {
		return storeTest, []string{"-test.run=^$", "-test.bench=" + bench, "-test.count=1"}, "-test.benchtime"
	}
	fmt.Printf("instructions per operation under callgrind: (Ir at %d ops - Ir at %d ops) / %d, the whole program\n", countN2, countN1, countN2-countN1)
	fmt.Printf("counted (GOMAXPROCS=1 GOGC=off GODEBUG=asyncpreemptoff=1), so a Get's figure includes its loop's few\n\n")
	fmt.Println("| Get | instructions | of which, by function (instructions per Get) |")
	fmt.Println("|---|---:|---|")
	for _, c := range counted {
		if !match.MatchString(c.name) {
			continue
		}
		bin, args, nflag := self, []string{"-count", c.name, "-socket", e.sidecar.Socket, "-shm", e.shm}, "-n"
		if c.bench != "" {
			bin, args, nflag = storeArgs(c.bench)
		}
		per, byFn, err := callgrind(bin, args, nflag)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		fmt.Printf("| %s | %.1f | %s |\n", c.name, per, byFn)
	}
	fmt.Println("\n| part of a Get, alone | instructions |")
	fmt.Println("|---|---:|")
	var loop float64
	for i, p := range parts {
		if i > 0 && !match.MatchString(p.name) {
			continue
		}
		bin, args, nflag := storeArgs(p.bench)
		per, _, err := callgrind(bin, args, nflag)
		if errors.Is(err, errNotCounted) {
			fmt.Printf("| %s | not in this build |\n", p.name)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if i == 0 {
			loop = per
			fmt.Printf("| %s | %.1f |\n", p.name, per)
			continue
		}
		fmt.Printf("| %s | %.1f |\n", p.name, per-loop)
	}
	return nil
}

// callgrind runs bin with args under callgrind for countN1 and countN2 operations
// (passed with the flag nflag) and returns the instructions per operation, and the same
// split by the function that executed them.
func callgrind(bin string, args []string, nflag string) (float64, string, error) {
	var total [2]uint64
	var self [2]map[string]uint64
	for i, n := range []int{countN1, countN2} {
		out := filepath.Join(filepath.Dir(bin), "callgrind.out")
		nv := strconv.Itoa(n)
		if nflag == "-test.benchtime" {
			nv += "x"
		}
		cmd := exec.Command("valgrind", append([]string{"--tool=callgrind", "--callgrind-out-file=" + out,
			bin, nflag, nv}, args...)...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=off", "GODEBUG=asyncpreemptoff=1")
		b, err := cmd.CombinedOutput()
		if err != nil {
			return 0, "", fmt.Errorf("%w\n%s", err, b)
		}
		bench := strings.Trim(strings.TrimPrefix(args[1], "-test.bench="), "^$")
		if nflag == "-test.benchtime" && !bytes.Contains(b, []byte(bench)) {
			return 0, "", errNotCounted // no such benchmark in this build
		}
		if total[i], self[i], err = readCallgrind(out); err != nil {
			return 0, "", err
		}
	}
	if total[1] <= total[0] {
		return 0, "", errNotCounted
	}
	ops := float64(countN2 - countN1)
	type share struct {
		fn  string
		per float64
	}
	var shares []share
	for f, v := range self[1] {
		if d := float64(v) - float64(self[0][f]); d/ops >= 0.5 {
			shares = append(shares, share{f, d / ops})
		}
	}
	sort.Slice(shares, func(i, j int) bool { return shares[i].per > shares[j].per })
	var b strings.Builder
	for i, s := range shares {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.0f", s.fn, s.per)
	}
	return float64(total[1]-total[0]) / ops, b.String(), nil
}

// readCallgrind returns the total of a callgrind output file and each function's own
// instructions (code inlined from another file counts as that file's function), from
// callgrind_annotate.
func readCallgrind(path string) (uint64, map[string]uint64, error) {
	out, err := exec.Command("callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", "--show-percs=no", path).Output()
	if err != nil {
		return 0, nil, fmt.Errorf("callgrind_annotate: %w", err)
	}
	var total uint64
	self := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(strings.ReplaceAll(f[0], ",", ""), 10, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(sc.Text(), "PROGRAM TOTALS"):
			total = n
		case strings.Contains(f[1], ":"):
			// "N file:function [binary]", the binary left out for code inlined from
			// another file: name the function by its source file.
			name := f[1]
			file, fn, _ := strings.Cut(name, ":")
			fn = strings.TrimPrefix(fn, module)
			// callgrind tells recursion levels apart (fn'2), which a goroutine switch
			// makes up: count them as one function.
			if i := strings.IndexByte(fn, '\''); i >= 0 {
				fn = fn[:i]
			}
			self[filepath.Base(file)+":"+shortFn(fn)] += n
		}
	}
	return total, self, nil
}

// shortFn drops the package path from a function name.
func shortFn(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		fn = fn[i+1:]
	}
	return fn
}

// countOne is the program under valgrind: set one path up against the sidecar and the
// floor that the parent started, warm it, and run n Gets.
func countOne(name, socket, shm string, n int) error {
	key := []byte(hotKey)
	buf := make([]byte, 0, 128)
	var get func() bool
	switch name {
	case "floor":
		f, err := openFloor(shm)
		if err != nil {
			return err
		}
		get = func() bool { _, ok, _ := f.get(key, buf[:0]); return ok }
	case "store.Reader.Get":
		r, err := store.OpenReader(shm)
		if err != nil {
			return err
		}
		defer r.Close()
		get = func() bool { _, _, ok, _ := r.Get(key, buf[:0]); return ok }
	case "SDK GetInto (shm)":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Flushing hourly: a flush is background work, timed, not per Get.
		c, err := cachee.Dial(ctx, cachee.WithTarget("unix://"+socket), cachee.WithShmDir(shm),
			cachee.WithWaitReady(), cachee.WithFlushInterval(time.Hour),
			cachee.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			return err
		}
		defer c.Close()
		for !c.Counters().ShmActive {
			if ctx.Err() != nil {
				return errors.New("the SDK did not map the segment")
			}
			time.Sleep(10 * time.Millisecond)
		}
		get = func() bool { _, ok, _ := c.GetInto(ctx, hotKey, buf); return ok }
	default:
		return fmt.Errorf("no path %q", name)
	}
	for range 1000 {
		if !get() {
			return fmt.Errorf("%s: missed the hot key", name)
		}
	}
	if misses := run(get, n); misses != 0 {
		return fmt.Errorf("%s: %d misses", name, misses)
	}
	return nil
}

// run makes n Gets.
//
//go:noinline
func run(get func() bool, n int) (misses int) {
	for range n {
		if !get() {
			misses++
		}
	}
	return misses
}
