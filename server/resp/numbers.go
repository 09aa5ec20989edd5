package resp

import (
	"math"
	"math/big"
	"strings"
)

// parseInt parses a decimal int64 exactly as Redis's string2ll accepts it: an optional
// '-', no '+', no spaces, no leading zeros (but "0" itself), at most 20 digits.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	i, neg := 0, false
	if b[0] == '-' {
		neg, i = true, 1
		if len(b) == 1 {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, false
		}
		if v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(d) {
			return 0, false
		}
		v += uint64(d)
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// parseUint parses a SCAN cursor as Redis does with strtoul: no leading space, an
// optional sign ('-' negates modulo 2^64, as strtoul does), digits within uint64.
func parseUint(b []byte) (uint64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		v = -v
	}
	return v, true
}

// INCRBYFLOAT computes in C's long double on x86-64 Redis: 64 bits of mantissa and
// 15 bits of exponent. big.Float with 64 bits of precision and the same rounding gives
// the same results, so the replies match Redis's to the last digit.
const (
	ldPrec   = 64
	ldMaxExp = 16384 // |x| >= 2^16384 overflows to infinity
)

// maxFloatChars is Redis's MAX_LONG_DOUBLE_CHARS: a longer string is not a float.
const maxFloatChars = 5 * 1024

// parseLongDouble parses a float as Redis's string2ld does: no leading space, no
// trailing bytes, not NaN, not out of range.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) > maxFloatChars || isSpace(b[0]) {
		return nil, false
	}
	s := string(b)
	if strings.ContainsAny(s, "_") || strings.EqualFold(strings.TrimLeft(s, "+-"), "nan") {
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 0, ldPrec, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	if !f.IsInf() && f.MantExp(nil) > ldMaxExp {
		return nil, false // strtold: ERANGE with HUGE_VAL
	}
	return f, true
}

// addLongDouble adds as long double arithmetic does; ok is false for an infinite
// result.
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	r := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(a, b)
	if r.MantExp(nil) > ldMaxExp {
		return nil, false
	}
	return r, true
}

// formatLongDouble renders a value as Redis's ld2string in human mode: "%.17Lf" with
// the trailing zeros (and a trailing '.') removed, and "-0" as "0".
func formatLongDouble(f *big.Float) []byte {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return []byte(s)
}
