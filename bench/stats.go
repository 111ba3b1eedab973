package main

import "slices"

// summary is the median and range of a series of samples.
type summary struct {
	N                int
	Median, Min, Max float64
}

// summarize returns the median, minimum and maximum of xs (the zero
// summary when xs is empty). With an even count the median is the mean of
// the two middle samples. xs is not modified.
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	m := s[n/2]
	if n%2 == 0 {
		m = (s[n/2-1] + s[n/2]) / 2
	}
	return summary{N: n, Median: m, Min: s[0], Max: s[n-1]}
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
