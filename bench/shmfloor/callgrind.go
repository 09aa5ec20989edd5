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
	"sort"
	"strconv"
	"strings"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
	"github.com/cachee/cachee/store"
)

// Instruction counts. valgrind's callgrind counts the instructions a function executes
// (with what it calls); the count is the same on an idle and a loaded machine. Go
// programs under callgrind must not receive signals (callgrind 3.19 asserts on Go's
// signal handling), so the program under valgrind starts no child process: this
// process, outside valgrind, starts the sidecar and the floor's writer, and runs
// itself under valgrind once per path and operation count.

const module = "github.com/cachee/cachee/"

// counted are the paths whose Gets are counted: the function whose instructions
// (inclusive) make one Get.
var counted = []struct{ name, fn string }{
	{"floor", "main.(*floorReader).get"},
	{"store.Reader.Get", module + "store.(*Reader).Get"},
	{"SDK GetInto (shm)", module + "sdk/go.(*Client).get"},
	{"store.Store.Get (GetHit)", module + "store.(*Store).Get"},
}

// parts are the store's benchmarks of the parts of a Get (store/parts_test.go), each
// wrapping one part in a function that is not inlined, so that callgrind can count it.
var parts = []struct{ name, bench, fn string }{
	{"hash: XXH3-64 of the 9-byte key", "^BenchmarkPartHash$", module + "store.partHash"},
	{"probe: header, directory, bucket, tag, key compare", "^BenchmarkPartProbe$", module + "store.partProbe"},
	{"copy: 100 bytes out of the segment", "^BenchmarkPartCopy$", module + "store.partCopy"},
	{"expiry: the rule, far from a deadline", "^BenchmarkPartExpiry$", module + "store.partExpiry"},
	{"clock: time.Now (near a deadline only)", "^BenchmarkPartClock$", module + "store.partClock"},
	{"record: the store's read buffer", "^BenchmarkPartRecord$", module + "store.partRecord"},
}

const countN1, countN2 = 20_000, 220_000

var errNotCounted = errors.New("no instructions counted")

func countAll(bin string) error {
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
	// The program under valgrind must not fork: built here, without cgo.
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
	fmt.Printf("instructions per operation under callgrind: (Ir at %d ops - Ir at %d ops) / %d, counting\n", countN2, countN1, countN2-countN1)
	fmt.Printf("inside the operation's function (--toggle-collect); GOMAXPROCS=1 GOGC=off GODEBUG=asyncpreemptoff=1\n\n")
	fmt.Println("| Get | instructions | of which (instructions per Get, by function) |")
	fmt.Println("|---|---:|---|")
	for _, c := range counted {
		args := []string{"-count", c.name, "-socket", e.sidecar.Socket, "-shm", e.shm}
		per, byFn, err := callgrind(self, args, c.fn, "-n")
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		fmt.Printf("| %s | %.1f | %s |\n", c.name, per, byFn)
	}
	fmt.Println("\n| part of a Get, alone | instructions |")
	fmt.Println("|---|---:|")
	for _, p := range parts {
		args := []string{"-test.run=^$", "-test.bench=" + p.bench, "-test.count=1"}
		per, _, err := callgrind(storeTest, args, p.fn, "-test.benchtime")
		if errors.Is(err, errNotCounted) {
			fmt.Printf("| %s | not in this build |\n", p.name)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		fmt.Printf("| %s | %.1f |\n", p.name, per)
	}
	return nil
}

// callgrind runs bin with args under callgrind for countN1 and countN2 operations
// (passed with the flag nflag) and returns the instructions per operation inside fn,
// and the same split by the function that executed them.
func callgrind(bin string, args []string, fn, nflag string) (float64, string, error) {
	var total [2]uint64
	var self [2]map[string]uint64
	for i, n := range []int{countN1, countN2} {
		out := filepath.Join(filepath.Dir(bin), "callgrind.out")
		nv := strconv.Itoa(n)
		if nflag == "-test.benchtime" {
			nv += "x"
		}
		cmd := exec.Command("valgrind", append([]string{"--tool=callgrind", "--callgrind-out-file=" + out,
			"--collect-atstart=no", "--toggle-collect=" + fn, bin, nflag, nv}, args...)...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=off", "GODEBUG=asyncpreemptoff=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			return 0, "", fmt.Errorf("%w\n%s", err, b)
		}
		var err error
		if total[i], self[i], err = readCallgrind(out); err != nil {
			return 0, "", err
		}
	}
	if total[1] <= total[0] {
		return 0, "", fmt.Errorf("%w in %s (inlined, or misnamed?)", errNotCounted, fn)
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
	out, err := exec.Command("callgrind_annotate", "--inclusive=no", "--threshold=100", path).Output()
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
		case strings.Contains(f[len(f)-1], "]") && len(f) >= 3:
			// "N (p%) file:function [binary]": name the function by its source file.
			name := f[len(f)-2]
			file, fn, _ := strings.Cut(name, ":")
			fn = strings.TrimPrefix(fn, module)
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
		c, err := cachee.Dial(ctx, cachee.WithTarget("unix://"+socket), cachee.WithShmDir(shm),
			cachee.WithWaitReady(), cachee.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
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
	case "store.Store.Get (GetHit)":
		st, err := openFilled()
		if err != nil {
			return err
		}
		defer st.Close()
		get = func() bool { _, ok, _ := st.Get(key, buf[:0]); return ok }
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
