package stats_test

import (
	"math"
	"testing"
	"time"

	"github.com/cachee/cachee/bench/internal/stats"
)

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []int
		p    float64
		want int
	}{
		{"empty", nil, 0.5, 0},
		{"one sample, p50", []int{7}, 0.5, 7},
		{"one sample, p999", []int{7}, 0.999, 7},
		{"two, p50 is the lower", []int{1, 2}, 0.5, 1},
		{"ten, p50", seq(10), 0.5, 5},
		{"ten, p99 is the max", seq(10), 0.99, 10},
		{"ten, p999 is the max", seq(10), 0.999, 10},
		{"100, p99", seq(100), 0.99, 99},
		{"100, p999 is the max", seq(100), 0.999, 100},
		{"999, p999 is the max", seq(999), 0.999, 999},
		{"1000, p999 not pushed past 999 by rounding", seq(1000), 0.999, 999},
		{"1000, p99", seq(1000), 0.99, 990},
		{"1001, p999", seq(1001), 0.999, 1000},
		{"10000, p999", seq(10000), 0.999, 9990},
		{"p1 of 10", seq(10), 0.01, 1},
		{"p100", seq(10), 1, 10},
		{"p0 clamps to the min", seq(10), 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stats.Percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("Percentile(%d samples, %v) = %d, want %d", len(tc.in), tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	// 1..200 µs in reverse: Summarize sorts.
	d := make([]time.Duration, 200)
	for i := range d {
		d[i] = time.Duration(200-i) * time.Microsecond
	}
	q := stats.Summarize(d)
	if q.P50 != 100*time.Microsecond || q.P99 != 198*time.Microsecond || q.P999 != 200*time.Microsecond || q.N != 200 {
		t.Errorf("quantiles %+v", q)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{2, 2, 9, 9, 2}, 2},
	} {
		in := append([]float64(nil), tc.in...)
		if got := stats.Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("Median reordered its input: %v", in)
			}
		}
	}
	if !math.IsNaN(stats.Median(nil)) {
		t.Error("Median of nothing is not NaN")
	}
	if got := stats.MedianDuration([]time.Duration{3, 1, 2, 10}); got != 2 {
		t.Errorf("MedianDuration = %v, want 2ns (2.5 rounded down)", got)
	}
	if got := stats.MedianDuration([]time.Duration{7, 1, 4}); got != 4 {
		t.Errorf("MedianDuration = %v, want 2ns (2.5 rounded down)", got)
	}
}

func TestRatios(t *testing.T) {
	if got := stats.Ratio(3, 2); got != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", got)
	}
	for _, b := range []float64{0, -1, math.NaN()} {
		if !math.IsNaN(stats.Ratio(1, b)) {
			t.Errorf("Ratio(1, %v) is not NaN", b)
		}
	}
	// Paired by index: a's runs against b's runs of the same round. The median of the
	// paired ratios (2) differs from the ratio of the medians (3/2).
	a := []float64{2, 3, 8, 5}
	b := []float64{1, 3, 2, 0}
	r := stats.PairedRatios(a, b)
	if len(r) != 3 || r[0] != 2 || r[1] != 1 || r[2] != 4 {
		t.Fatalf("PairedRatios = %v, want [2 1 4] (the pair with b = 0 left out)", r)
	}
	if got := stats.Median(r); got != 2 {
		t.Errorf("median paired ratio %v, want 2", got)
	}
	if got := stats.PairedRatios([]float64{1, 2, 3}, []float64{1}); len(got) != 1 {
		t.Errorf("unequal lengths: %v", got)
	}
}
