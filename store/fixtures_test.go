package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const fixtureDir = "../sdk/testdata/segments"

type fixtureFile struct {
	Segments []FixtureSegment `json:"segments"`
	Cases    []FixtureCase    `json:"cases"`
}

func loadFixtures(t *testing.T) fixtureFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixtureFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("no fixture cases")
	}
	return f
}

// TestFixtures runs every conformance case through Reader.
func TestFixtures(t *testing.T) {
	f := loadFixtures(t)
	readers := map[string]*Reader{}
	openErrs := map[string]error{}
	defer func() {
		for _, r := range readers {
			if r != nil {
				r.Close()
			}
		}
	}()
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			r, seen := readers[c.Segment]
			err := openErrs[c.Segment]
			if !seen && err == nil {
				r, err = OpenReader(filepath.Join(fixtureDir, c.Segment))
				readers[c.Segment], openErrs[c.Segment] = r, err
			}
			got, value, ref := fixtureResult(t, r, err, c)
			fail := ""
			switch {
			case got != c.Expect:
				fail = fmt.Sprintf("got %s, want %s (%s)", got, c.Expect, c.Why)
			case got == FixtureHit:
				want, err := c.Value.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(value, want) {
					fail = fmt.Sprintf("value of %d bytes differs from the expected %d bytes", len(value), len(want))
				} else if r := fmt.Sprintf("0x%016x", ref); r != c.Ref {
					fail = fmt.Sprintf("ref %s, want %s", r, c.Ref)
				}
			}
			if fail != "" {
				t.Fatal(fail)
			}
		})
	}
}

// fixtureResult reads case c through r (or the error opening it gave) and names the
// result as the fixtures do, with the reader's own clock at c.NowMs.
func fixtureResult(t *testing.T, r *Reader, openErr error, c FixtureCase) (string, []byte, uint64) {
	t.Helper()
	if openErr != nil {
		return resultOf(t, openErr), nil, 0
	}
	key, err := c.Key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r.v.wallClock = func() time.Time { return time.UnixMilli(c.NowMs) }
	value, ref, found, err := r.Get(key, nil)
	switch {
	case err != nil:
		return resultOf(t, err), nil, 0
	case found:
		return FixtureHit, value, ref
	}
	return FixtureMiss, nil, 0
}

func resultOf(t *testing.T, err error) string {
	switch {
	case errors.Is(err, ErrFormat):
		return FixtureFormat
	case errors.Is(err, ErrStale):
		return FixtureStale
	case errors.Is(err, ErrCorrupt):
		return FixtureCorrupt
	case errors.Is(err, ErrRetry):
		return FixtureRetry
	case errors.Is(err, ErrWrongType):
		return FixtureWrongTyp
	}
	t.Fatalf("unexpected error: %v", err)
	return ""
}

// TestFixturesUpToDate fails when the writer changed and the committed fixtures were
// not regenerated (make generate), before make checkgenerate would.
func TestFixturesUpToDate(t *testing.T) {
	segs, cases, err := MakeFixtures()
	if err != nil {
		t.Fatal(err)
	}
	f := loadFixtures(t)
	if len(f.Cases) != len(cases) || len(f.Segments) != len(segs) {
		t.Fatalf("%d cases and %d segments committed, %d and %d made: run make generate",
			len(f.Cases), len(f.Segments), len(cases), len(segs))
	}
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(fixtureDir, s.Name, SegmentFile))
		if err != nil || !bytes.Equal(b, s.Data) {
			t.Errorf("segment %s differs from what the writer makes now (%v): run make generate", s.Name, err)
		}
	}
}

// TestFixtureBytes checks the fixtures' byte-string encoding.
func TestFixtureBytes(t *testing.T) {
	for _, c := range []struct {
		in   FixtureBytes
		want string
	}{
		{FixtureBytes{Hex: ""}, ""},
		{FixtureBytes{Hex: "6162"}, "ab"},
		{FixtureBytes{Hex: "6162", Len: 5}, "ababa"},
		{FixtureBytes{Hex: "616263", Len: 2}, "ab"},
	} {
		got, err := c.in.Bytes()
		if err != nil || string(got) != c.want {
			t.Errorf("%+v: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []FixtureBytes{{Hex: "6"}, {Hex: "zz"}, {Hex: "", Len: 3}} {
		if _, err := bad.Bytes(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
