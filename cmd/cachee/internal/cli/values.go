package cli

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sizeUnits follows Redis's config syntax, as --max-memory=256mb reads: k, m, g are
// powers of 1000 and kb, mb, gb powers of 1024; KiB, MiB, GiB are accepted too. Case
// does not matter.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
	"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize parses a byte count such as 1048576, 256mb, 1gb or 512MiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes, optionally with a unit such as 256mb, 1gb or 512MiB", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: number out of range", s)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want b, kb, mb, gb, KiB, MiB, GiB, k, m or g)", s, strings.TrimSpace(t[i:]))
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// sizeValue is a pflag.Value holding a byte count; it prints as it was given.
type sizeValue struct {
	n    int64
	text string
}

// sizeOf is a sizeValue holding n, printed in the largest binary unit that divides it
// (65536 prints as 64kb), for defaults that come from another package's constants.
func sizeOf(n int64) *sizeValue {
	text := strconv.FormatInt(n, 10)
	for _, u := range []string{"tb", "gb", "mb", "kb"} {
		if m := sizeUnits[u]; n != 0 && n%m == 0 {
			text = strconv.FormatInt(n/m, 10) + u
			break
		}
	}
	return &sizeValue{n: n, text: text}
}

func (v *sizeValue) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	v.n, v.text = n, s
	return nil
}

func (v *sizeValue) String() string { return v.text }
func (v *sizeValue) Type() string   { return "size" }

// choiceValue is a pflag.Value that takes one of a fixed set of words.
type choiceValue struct {
	v       string
	choices []string
}

func newChoice(def string, choices ...string) *choiceValue {
	return &choiceValue{v: def, choices: choices}
}

func (c *choiceValue) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(c.choices, ", "))
	}
	c.v = s
	return nil
}

func (c *choiceValue) String() string { return c.v }
func (c *choiceValue) Type() string   { return "string" }

// durationFlag is a non-negative duration.
type durationFlag struct{ d time.Duration }

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%s is negative", s)
	}
	f.d = d
	return nil
}

func (f *durationFlag) String() string {
	if f.d == 0 {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Type() string { return "duration" }

// isTerminal reports whether w is a terminal, for output meant for people.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
