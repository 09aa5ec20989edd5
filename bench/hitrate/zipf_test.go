package main

import (
	"math"
	"slices"
	"testing"
)

func harmonic(n int, s float64) float64 {
	var h float64
	for r := n; r >= 1; r-- {
		h += math.Pow(float64(r), -s)
	}
	return h
}

// TestZipfDistribution draws from the generator and compares the observed frequencies
// of the top ranks with theory, P(rank r) = r^-s / H(n, s), within five standard
// deviations of a binomial count.
func TestZipfDistribution(t *testing.T) {
	const n, draws = 1000, 200_000
	for _, s := range []float64{0, 0.5, 0.8, 1.0, 1.2, 2.0} {
		z, err := NewZipf(s, n, 42)
		if err != nil {
			t.Fatal(err)
		}
		counts := make([]int, n)
		for range draws {
			r := z.Next()
			if r >= n {
				t.Fatalf("s=%v: rank %d out of range", s, r)
			}
			counts[r]++
		}
		h := harmonic(n, s)
		for _, rank := range []int{1, 2, 10} {
			p := math.Pow(float64(rank), -s) / h
			if got := z.Prob(rank - 1); math.Abs(got-p) > 1e-12 {
				t.Errorf("s=%v: Prob(rank %d) = %v, want %v", s, rank, got, p)
			}
			want := p * draws
			sigma := math.Sqrt(draws * p * (1 - p))
			if got := float64(counts[rank-1]); math.Abs(got-want) > 5*sigma {
				t.Errorf("s=%v: rank %d drawn %v times, want %.0f ± %.0f", s, rank, got, want, 5*sigma)
			}
		}
		var total float64
		for r := range n {
			total += z.Prob(r)
		}
		if math.Abs(total-1) > 1e-9 {
			t.Errorf("s=%v: probabilities sum to %v", s, total)
		}
	}
}

func TestZipfDeterministic(t *testing.T) {
	draw := func(seed uint64) []uint64 {
		z, err := NewZipf(0.8, 100_000, seed)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uint64, 1000)
		for i := range out {
			out[i] = z.Next()
		}
		return out
	}
	if a, b := draw(7), draw(7); !slices.Equal(a, b) {
		t.Error("same seed, different sequences")
	}
	if a, b := draw(7), draw(8); slices.Equal(a, b) {
		t.Error("different seeds, same sequence")
	}
	t1, err := ZipfTrace(1.0, 1000, 5000, 3)
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := ZipfTrace(1.0, 1000, 5000, 3)
	if !slices.Equal(t1.Keys, t2.Keys) || t1.Unique != t2.Unique || t1.Name != "zipf-1.0" {
		t.Errorf("ZipfTrace not reproducible, or named %q", t1.Name)
	}
}

func TestZipfBadArguments(t *testing.T) {
	for _, c := range []struct {
		s float64
		n int
	}{{-1, 10}, {math.NaN(), 10}, {math.Inf(1), 10}, {1, 0}} {
		if _, err := NewZipf(c.s, c.n, 1); err == nil {
			t.Errorf("NewZipf(%v, %d): no error", c.s, c.n)
		}
	}
}
