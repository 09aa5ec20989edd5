package cli

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"268435456", 256 << 20, ""},
		{"256mb", 256 << 20, ""},
		{"256MB", 256 << 20, ""},
		{"1gb", 1 << 30, ""},
		{"512MiB", 512 << 20, ""},
		{"64kb", 64 << 10, ""},
		{"2GiB", 2 << 30, ""},
		{"100m", 100e6, ""},
		{"1g", 1e9, ""},
		{"10b", 10, ""},
		{" 8 mb ", 8 << 20, ""},
		{"0", 0, ""},
		{"", 0, "want a whole number"},
		{"mb", 0, "want a whole number"},
		{"-1mb", 0, "want a whole number"},
		{"1.5gb", 0, "unknown unit"},
		{"12parsecs", 0, "unknown unit"},
		{"99999999999999999999", 0, "out of range"},
		{"9000000000tb", 0, "too large"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestSizeOf: a default taken from a constant prints in the unit a user would write,
// and parses back to itself.
func TestSizeOf(t *testing.T) {
	for n, want := range map[int64]string{64 << 10: "64kb", 256 << 20: "256mb", 1 << 20: "1mb", 3 << 30: "3gb", 1000: "1000", 0: "0"} {
		v := sizeOf(n)
		if v.String() != want {
			t.Errorf("sizeOf(%d) prints %q, want %q", n, v.String(), want)
		}
		if back, err := ParseSize(v.String()); err != nil || back != n {
			t.Errorf("sizeOf(%d) parses back as %d, %v", n, back, err)
		}
	}
}

// FuzzParseSize checks that any accepted size is non-negative, and that a plain
// number reads back as itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"256mb", "1gb", "512MiB", "12", "9223372036854775807", "1tb", "k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if v, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64); perr == nil && v != n {
			t.Fatalf("ParseSize(%q) = %d, want %d", s, n, v)
		}
	})
}

func TestApplyEnv(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o := newServeOptions()
	o.register(fs)
	if err := fs.Parse([]string{"--port=7000"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CACHEE_PORT", "8000")          // the flag was given: it wins
	t.Setenv("CACHEE_MAX_MEMORY", "1gb")     // not given: the environment sets it
	t.Setenv("CACHEE_RESP_COMPAT", "false")  // booleans too
	t.Setenv("CACHEE_PREWARM_TIMEOUT", "2s") // and durations
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if o.port != 7000 || o.maxMemory.n != 1<<30 || o.respCompat || o.prewarmTimeout.String() != "2s" {
		t.Fatalf("port %d, max memory %d, resp %v, prewarm timeout %v", o.port, o.maxMemory.n, o.respCompat, o.prewarmTimeout)
	}

	t.Setenv("CACHEE_EVICTION", "fifo")
	err := applyEnv(fs)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "CACHEE_EVICTION") {
		t.Fatalf("bad variable: %v, want a usage error naming it", err)
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"port": "CACHEE_PORT", "max-memory": "CACHEE_MAX_MEMORY", "prewarm-timeout": "CACHEE_PREWARM_TIMEOUT",
	} {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
	}
}
