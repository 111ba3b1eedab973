package harness

import (
	"math"
	"slices"
	"time"
)

// Summary describes a series of samples.
type Summary struct {
	N                int
	Median, Min, Max float64
	P90, P99         float64
}

// Summarize returns the summary of xs (the zero Summary when xs is
// empty); xs is not modified. Percentiles interpolate linearly between
// the closest ranks, so the median of an even count is the mean of the
// two middle samples.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary{
		N:      len(s),
		Median: Percentile(s, 50),
		Min:    s[0],
		Max:    s[len(s)-1],
		P90:    Percentile(s, 90),
		P99:    Percentile(s, 99),
	}
}

// Percentile returns the p-th percentile (0 to 100) of sorted samples,
// interpolating linearly between the closest ranks; NaN when sorted is
// empty.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	p = min(max(p, 0), 100)
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[hi]-sorted[lo])
}

// Ratio returns a/b, or 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// In converts durations to floats in the given unit (time.Millisecond:
// milliseconds).
func In(ds []time.Duration, unit time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(unit)
	}
	return out
}
