package hitsim

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Trace formats.
const (
	FormatAuto = "auto"
	FormatARC  = "arc"  // "start count ignore reqno": keys start..start+count-1
	FormatLIRS = "lirs" // one integer key a line; a line holding "*" is a marker
)

// maxARCRun bounds the count of one ARC line, so that a corrupt line cannot ask for
// billions of keys.
const maxARCRun = 1 << 24

// Trace is a sequence of keys to replay, with what the tables say about it.
type Trace struct {
	Name   string   // arc/oltp, lirs/gli, zipf-0.8, or the file's base name
	Source string   // the file it came from, or how it was generated
	Format string   // arc, lirs or zipf
	Keys   []uint64 // one per access
	Unique int      // distinct keys
	Sizes  []int    // cache sizes to replay it at, in entries
}

// CountUnique counts the distinct keys.
func CountUnique(keys []uint64) int {
	seen := make(map[uint64]struct{}, len(keys)/4)
	for _, k := range keys {
		seen[k] = struct{}{}
	}
	return len(seen)
}

// Compressed-stream magic numbers.
var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXZ   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// decompress wraps r in the decompressor its first bytes call for (gzip, zstd or xz),
// or returns it as it is when it is plain. The name of the compression is returned too.
func decompress(r io.Reader) (io.Reader, string, func(), error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(len(magicXZ))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", nil, err
	}
	nop := func() {}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, "gzip", func() { zr.Close() }, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, "zstd", zr.Close, nil
	case bytes.HasPrefix(head, magicXZ):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("xz: %w", err)
		}
		return xr, "xz", nop, nil
	}
	return br, "plain", nop, nil
}

// ReadTraceFile reads a trace file, plain or compressed, in the given format (FormatAuto
// detects it from the content).
func ReadTraceFile(path, format string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keys, format, err := ReadTrace(f, format)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Trace{Source: path, Format: format, Keys: keys, Unique: CountUnique(keys)}, nil
}

// ReadTrace decompresses r as needed and parses it, returning the keys and the format
// it was read as.
func ReadTrace(r io.Reader, format string) ([]uint64, string, error) {
	dr, _, closeFn, err := decompress(r)
	if err != nil {
		return nil, "", err
	}
	defer closeFn()
	p := &parser{format: format}
	sc := bufio.NewScanner(dr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if err := p.line(sc.Bytes()); err != nil {
			return nil, "", err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("line %d: %w", p.n+1, err)
	}
	if p.format == FormatAuto {
		return nil, "", errors.New("no accesses found")
	}
	return p.keys, p.format, nil
}

// parser turns lines into keys. With format auto, the first line that holds data decides:
// one field is LIRS, two or more (start count ...) is ARC.
type parser struct {
	format string
	keys   []uint64
	n      int // lines read
	fields [][]byte
}

func (p *parser) line(b []byte) error {
	p.n++
	p.fields = splitFields(b, p.fields[:0])
	f := p.fields
	if len(f) == 0 {
		return nil // blank
	}
	if len(f) == 1 && len(f[0]) == 1 && f[0][0] == '*' {
		if p.format == FormatARC {
			return fmt.Errorf("line %d: marker %q in an ARC trace", p.n, b)
		}
		return nil // a LIRS marker
	}
	if p.format == FormatAuto {
		if len(f) == 1 {
			p.format = FormatLIRS
		} else {
			p.format = FormatARC
		}
	}
	switch p.format {
	case FormatLIRS:
		if len(f) != 1 {
			return fmt.Errorf("line %d: %d fields in a LIRS trace (want one key a line): %q", p.n, len(f), b)
		}
		k, err := parseKey(f[0])
		if err != nil {
			return fmt.Errorf("line %d: %w", p.n, err)
		}
		p.keys = append(p.keys, k)
	case FormatARC:
		if len(f) < 2 {
			return fmt.Errorf("line %d: %d field in an ARC trace (want start count ...): %q", p.n, len(f), b)
		}
		start, err := parseKey(f[0])
		if err != nil {
			return fmt.Errorf("line %d: start: %w", p.n, err)
		}
		count, err := parseKey(f[1])
		if err != nil {
			return fmt.Errorf("line %d: count: %w", p.n, err)
		}
		if count > maxARCRun {
			return fmt.Errorf("line %d: count %d is over %d", p.n, count, maxARCRun)
		}
		if count > 0 && start+count-1 < start {
			return fmt.Errorf("line %d: keys %d+%d overflow", p.n, start, count)
		}
		for k := start; k < start+count; k++ {
			p.keys = append(p.keys, k)
		}
	default:
		return fmt.Errorf("unknown trace format %q (want %s or %s)", p.format, FormatARC, FormatLIRS)
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// splitFields splits b at runs of white space, appending to dst.
func splitFields(b []byte, dst [][]byte) [][]byte {
	i := 0
	for i < len(b) {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		j := i
		for j < len(b) && !isSpace(b[j]) {
			j++
		}
		if j > i {
			dst = append(dst, b[i:j])
		}
		i = j
	}
	return dst
}

func parseKey(b []byte) (uint64, error) {
	// Fast path: decimal digits only.
	if len(b) > 0 && len(b) <= 19 {
		var v uint64
		ok := true
		for _, c := range b {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			v = v*10 + uint64(c-'0')
		}
		if ok {
			return v, nil
		}
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a key: %q", b)
	}
	return v, nil
}
