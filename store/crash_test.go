package store

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "CACHEE_STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild writes self-checking values into the segment in dir until it is killed.
func crashChild(dir string) {
	s, err := Open(Config{Dir: dir, MaxMemory: 2 << 20, MaxValueSize: 64 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	seed, _ := strconv.ParseUint(os.Getenv("CACHEE_STORE_CRASH_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 7))
	for version := uint64(1); ; version++ {
		k := fmt.Appendf(nil, "key-%d", rng.IntN(5000))
		switch rng.IntN(10) {
		case 0:
			s.Delete(k)
		case 1:
			s.Expire(k, time.Now().Add(time.Duration(rng.IntN(50))*time.Millisecond), ExpireAlways)
		default:
			s.Set(k, SelfCheckingValue(k, version, rng), SetOptions{})
		}
		if version == 2000 {
			fmt.Println("ready")
		}
	}
}

// TestCrashRecovery kills a writer process with SIGKILL in the middle of its writes,
// while this process reads the segment through a Reader, then reopens the segment: no
// read, before or after, may return a torn value, and the recovered store must be
// consistent.
func TestCrashRecovery(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("CACHEE_STORE_CRASH_SEED=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q", line)
		}
		r, err := OpenReader(dir)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(round), 3))
		deadline := time.Now().Add(time.Duration(20+rng.IntN(200)) * time.Millisecond)
		hits := 0
		buf := make([]byte, 0, 64<<10)
		for time.Now().Before(deadline) {
			k := fmt.Appendf(nil, "key-%d", rng.IntN(5000))
			v, _, ok, err := r.Get(k, buf[:0])
			if err == ErrRetry {
				continue
			}
			if err != nil {
				t.Fatalf("round %d: reader: %v", round, err)
			}
			if ok {
				hits++
				if msg := CheckSelfCheckingValue(k, v); msg != "" {
					t.Fatalf("round %d: live read of %s: %s", round, k, msg)
				}
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// The writer is gone: the reader must notice.
		if err := r.Check(time.Hour); err == nil {
			t.Fatalf("round %d: reader Check passed with the writer dead", round)
		}
		// And a probe too, though the header still says active.
		if err := Probe(dir); !errors.Is(err, ErrStale) {
			t.Fatalf("round %d: Probe with the writer dead: %v", round, err)
		}
		r.Close()

		s, err := Open(Config{Dir: dir, MaxMemory: 2 << 20, MaxValueSize: 64 << 10})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if err := s.checkInvariants(); err != nil {
			t.Fatalf("round %d: after recovery: %v", round, err)
		}
		var keys [][]byte
		s.Keys(func(k []byte) { keys = append(keys, append([]byte(nil), k...)) })
		n := 0
		for _, k := range keys {
			v, ok, err := s.Get(k, nil)
			if err != nil {
				t.Fatalf("round %d: recovered key %s: %v", round, k, err)
			}
			if !ok {
				continue // expired since it was listed
			}
			n++
			if msg := CheckSelfCheckingValue(k, v); msg != "" {
				t.Fatalf("round %d: recovered %s: %s", round, k, msg)
			}
		}
		if n == 0 {
			t.Fatalf("round %d: nothing recovered", round)
		}
		t.Logf("round %d: %d live hits before the kill, %d entries recovered", round, hits, n)
		s.Close()
	}
}

// TestWarmRestartKeepsEveryEntry closes a store cleanly and reopens its segment: every
// entry must still be there, and the recovered index consistent. Survivors stay in the
// slots the writer gave them; placing them afresh in another order could find a probe
// window full that the writer's order had fitted, and lose the entry.
func TestWarmRestartKeepsEveryEntry(t *testing.T) {
	const rounds, keys = 20, 5000
	for round := range rounds {
		dir := t.TempDir()
		s, err := Open(Config{Dir: dir, MaxMemory: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		items := make([]Item, keys)
		for i := range items {
			items[i] = Item{Key: fmt.Appendf(nil, "key:%d:%d", round, i), Value: fmt.Appendf(nil, "value-%d", i)}
		}
		if errs := s.SetMany(items, nil); errs != nil {
			t.Fatal(errs)
		}
		if n := s.Len(); n != keys {
			t.Fatalf("round %d: %d entries before the restart, want %d", round, n, keys)
		}
		s.Close()
		s, err = Open(Config{Dir: dir, MaxMemory: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.checkInvariants(); err != nil {
			t.Fatalf("round %d: after recovery: %v", round, err)
		}
		for _, it := range items {
			if v, ok, err := s.Get(it.Key, nil); err != nil || !ok || string(v) != string(it.Value) {
				t.Fatalf("round %d: %s after the restart: %q %v %v", round, it.Key, v, ok, err)
			}
		}
		s.Close()
	}
}
