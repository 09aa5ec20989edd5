package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func readString(t *testing.T, s, format string) ([]uint64, string) {
	t.Helper()
	keys, got, err := ReadTrace(strings.NewReader(s), format)
	if err != nil {
		t.Fatalf("ReadTrace(%q, %s): %v", s, format, err)
	}
	return keys, got
}

func TestARCExpansion(t *testing.T) {
	// start count ignore reqno: each line is the run start..start+count-1.
	in := "1 3 0 0\n10 2 0 1\r\n\n7 1 0 2\n500 0 0 3\n  8\t1 0 4  \n"
	want := []uint64{1, 2, 3, 10, 11, 7, 8}
	for _, format := range []string{formatAuto, formatARC} {
		keys, got := readString(t, in, format)
		if got != formatARC || !slices.Equal(keys, want) {
			t.Errorf("%s: got %v as %s, want %v as arc", format, keys, got, want)
		}
	}
	// Two fields are enough for a run.
	if keys, _ := readString(t, "4 2\n", formatAuto); !slices.Equal(keys, []uint64{4, 5}) {
		t.Errorf("two-field line: %v", keys)
	}
}

func TestLIRSMarkers(t *testing.T) {
	// One key a line; "*" lines are markers; blank lines, CRLF and spaces are ignored.
	in := "*\n5\n*\n7\r\n\n 9 \n5\n*\r\n"
	want := []uint64{5, 7, 9, 5}
	for _, format := range []string{formatAuto, formatLIRS} {
		keys, got := readString(t, in, format)
		if got != formatLIRS || !slices.Equal(keys, want) {
			t.Errorf("%s: got %v as %s, want %v as lirs", format, keys, got, want)
		}
	}
	// Forced LIRS reads an ARC file's first field only if it is one field a line.
	if _, _, err := ReadTrace(strings.NewReader("1 2 0 0\n"), formatLIRS); err == nil {
		t.Error("ARC lines forced as LIRS: no error")
	}
	// Forced ARC reads a LIRS file's single fields as an error.
	if _, _, err := ReadTrace(strings.NewReader("1\n2\n"), formatARC); err == nil {
		t.Error("LIRS lines forced as ARC: no error")
	}
}

func TestTraceErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":           "",
		"only markers":    "*\n*\n",
		"not a number":    "12\nabc\n",
		"negative":        "-3\n",
		"mixed formats":   "1\n2 3 0 0\n",
		"marker in ARC":   "1 2 0 0\n*\n",
		"huge run":        "1 99999999999 0 0\n",
		"overflowing run": "18446744073709551615 2 0 0\n",
	} {
		if keys, f, err := ReadTrace(strings.NewReader(in), formatAuto); err == nil {
			t.Errorf("%s: no error, got %v as %s", name, keys, f)
		}
	}
}

// compressions write data as each supported compression does.
var compressions = map[string]func(t *testing.T, data []byte) []byte{
	"plain": func(t *testing.T, data []byte) []byte { return data },
	"gzip": func(t *testing.T, data []byte) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	},
	"zstd": func(t *testing.T, data []byte) []byte {
		var b bytes.Buffer
		w, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	},
	"xz": func(t *testing.T, data []byte) []byte {
		var b bytes.Buffer
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	},
}

func TestCompressedRoundTrips(t *testing.T) {
	dir := t.TempDir()
	var arc, lirs strings.Builder
	var wantARC, wantLIRS []uint64
	for i := range 3000 {
		k := uint64(i*7919) % 5000
		n := uint64(i%4 + 1)
		arc.WriteString(strings.Join([]string{itoa(k), itoa(n), "0", itoa(uint64(i))}, " ") + "\n")
		for j := range n {
			wantARC = append(wantARC, k+j)
		}
		lirs.WriteString(itoa(k) + "\n")
		if i%100 == 0 {
			lirs.WriteString("*\n")
		}
		wantLIRS = append(wantLIRS, k)
	}
	for name, compress := range compressions {
		for format, tc := range map[string]struct {
			text string
			want []uint64
		}{formatARC: {arc.String(), wantARC}, formatLIRS: {lirs.String(), wantLIRS}} {
			// The extension says nothing: the content decides.
			path := filepath.Join(dir, name+"-"+format+".trace")
			if err := os.WriteFile(path, compress(t, []byte(tc.text)), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, force := range []string{formatAuto, format} {
				tr, err := ReadTraceFile(path, force)
				if err != nil {
					t.Fatalf("%s %s (%s): %v", name, format, force, err)
				}
				if tr.Format != format || !slices.Equal(tr.Keys, tc.want) {
					t.Errorf("%s %s (%s): read %d keys as %s, want %d as %s",
						name, format, force, len(tr.Keys), tr.Format, len(tc.want), format)
				}
				if want := countUnique(tc.want); tr.Unique != want {
					t.Errorf("%s %s: %d unique keys, want %d", name, format, tr.Unique, want)
				}
			}
		}
	}
}

func TestCorruptCompressed(t *testing.T) {
	for name, compress := range compressions {
		if name == "plain" {
			continue
		}
		data := compress(t, []byte(strings.Repeat("12345\n", 10000)))
		cut := data[:len(data)/2]
		if _, _, err := ReadTrace(bytes.NewReader(cut), formatAuto); err == nil {
			t.Errorf("%s cut in half: no error", name)
		}
	}
}

func itoa(n uint64) string { return string(appendUint(nil, n)) }

func appendUint(b []byte, n uint64) []byte {
	if n >= 10 {
		b = appendUint(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestTraceNames(t *testing.T) {
	for in, want := range map[string]string{
		"lirs/gli.trace.gz":  "lirs/gli",
		"arc/oltp.gz":        "arc/oltp",
		"arc/p3.zst":         "arc/p3",
		"x/y.trace.xz":       "x/y",
		"plain":              "plain",
		"lirs/2_pools.trace": "lirs/2_pools",
	} {
		if got := traceName(filepath.FromSlash(in)); got != want {
			t.Errorf("traceName(%q) = %q, want %q", in, got, want)
		}
	}
}
