// Package stats holds the few statistics the benchmarks report: percentiles of one
// run's samples, medians over runs, and ratios of runs made back to back. They are
// small on purpose, so that a reader can check every figure in a report against its
// definition here.
package stats

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Percentile is the p-quantile (0 < p <= 1) of sorted by the nearest-rank method: the
// smallest sample such that at least a fraction p of the samples are at or below it. It
// is always one of the samples, never an interpolation, so a p999 of fewer than 1000
// samples is the largest sample, which is what such a run can say. An empty slice gives
// the zero value.
func Percentile[T cmp.Ordered](sorted []T, p float64) T {
	var zero T
	n := len(sorted)
	if n == 0 {
		return zero
	}
	// p*n is computed in floating point: 0.999*1000 may come out a hair above 999,
	// which must not push the rank to 1000.
	rank := int(math.Ceil(p*float64(n) - 1e-9))
	return sorted[min(max(rank, 1), n)-1]
}

// Quantiles are the percentiles a latency row shows, from one run.
type Quantiles struct {
	P50, P99, P999 time.Duration
	N              int // samples
}

// Summarize sorts samples in place and returns their quantiles.
func Summarize(samples []time.Duration) Quantiles {
	slices.Sort(samples)
	return Quantiles{
		P50:  Percentile(samples, 0.50),
		P99:  Percentile(samples, 0.99),
		P999: Percentile(samples, 0.999),
		N:    len(samples),
	}
}

// Median of v, without changing v: the middle value, or the mean of the two middle
// values of an even count. NaN for an empty slice, so that a missing figure cannot pass
// for a zero.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MedianDuration is Median for durations, in integer nanoseconds (an even count's
// two middle values are averaged rounding down). Zero for an empty slice.
func MedianDuration(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return s[len(s)/2-1] + (s[len(s)/2]-s[len(s)/2-1])/2
}

// Ratio is a / b, or NaN when b is not positive.
func Ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// PairedRatios divides a[i] by b[i] for each i that both have: runs made back to back
// on a shared machine are compared with each other, not with the other runs, so that a
// burst of load that slowed both cancels out. Pairs with a non-positive b are left out.
func PairedRatios(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if r := Ratio(a[i], b[i]); !math.IsNaN(r) {
			out = append(out, r)
		}
	}
	return out
}
