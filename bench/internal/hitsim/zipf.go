package hitsim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Zipf draws ranks 0..n-1 with P(rank r) proportional to 1/(r+1)^s, for any s >= 0
// (math/rand/v2's Zipf needs s > 1). It samples by inverting the cumulative
// distribution, precomputed over all n ranks, with a binary search: exact up to float64
// rounding, O(n) memory and O(log n) a draw. The same seed gives the same sequence.
type Zipf struct {
	cdf []float64
	rng *rand.Rand
}

// NewZipf returns a generator over n ranks with exponent s, seeded with seed.
func NewZipf(s float64, n int, seed uint64) (*Zipf, error) {
	if n < 1 {
		return nil, fmt.Errorf("zipf: %d keys (want at least 1)", n)
	}
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("zipf: exponent %v (want s >= 0)", s)
	}
	cdf := make([]float64, n)
	// Sum the smallest weights first so that the rounding error stays small.
	var sum float64
	for r := n - 1; r >= 0; r-- {
		sum += math.Pow(float64(r+1), -s)
	}
	var acc float64
	for r := range n {
		acc += math.Pow(float64(r+1), -s)
		cdf[r] = acc / sum
	}
	cdf[n-1] = 1
	return &Zipf{cdf: cdf, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, nil
}

// Next returns the next rank, 0 being the most popular.
func (z *Zipf) Next() uint64 {
	u := z.rng.Float64() // [0, 1)
	return uint64(sort.Search(len(z.cdf), func(i int) bool { return z.cdf[i] > u }))
}

// Prob is the probability of rank r.
func (z *Zipf) Prob(r int) float64 {
	if r == 0 {
		return z.cdf[0]
	}
	return z.cdf[r] - z.cdf[r-1]
}

// FormatExponent prints s with at least one decimal: 1 is "1.0", 0.85 is "0.85".
func FormatExponent(s float64) string {
	t := strconv.FormatFloat(s, 'f', -1, 64)
	if !strings.Contains(t, ".") {
		t += ".0"
	}
	return t
}

// ZipfTrace generates a trace of accesses over keys, drawn with exponent s.
func ZipfTrace(s float64, keys, accesses int, seed uint64) (*Trace, error) {
	z, err := NewZipf(s, keys, seed)
	if err != nil {
		return nil, err
	}
	ks := make([]uint64, accesses)
	for i := range ks {
		ks[i] = z.Next()
	}
	return &Trace{
		Name:   "zipf-" + FormatExponent(s),
		Source: fmt.Sprintf("zipf s=%v, %d accesses over %d keys, seed %d", s, accesses, keys, seed),
		Format: "zipf",
		Keys:   ks,
		Unique: CountUnique(ks),
	}, nil
}
