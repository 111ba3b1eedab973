package main

import (
	"slices"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want summary
	}{
		{nil, summary{}},
		{[]float64{7}, summary{N: 1, Median: 7, Min: 7, Max: 7}},
		{[]float64{3, 1, 2}, summary{N: 3, Median: 2, Min: 1, Max: 3}},
		{[]float64{4, 1, 3, 2}, summary{N: 4, Median: 2.5, Min: 1, Max: 4}},
		{[]float64{10, 10, 1, 50, 10}, summary{N: 5, Median: 10, Min: 1, Max: 50}},
	} {
		in := slices.Clone(c.xs)
		if got := summarize(c.xs); got != c.want {
			t.Errorf("summarize(%v) = %+v, want %+v", in, got, c.want)
		}
		if !slices.Equal(in, c.xs) {
			t.Errorf("summarize reordered its input: %v, was %v", c.xs, in)
		}
	}
}

func TestRatio(t *testing.T) {
	if got := ratio(1, 4); got != 0.25 {
		t.Errorf("ratio(1, 4) = %v", got)
	}
	if got := ratio(1, 0); got != 0 {
		t.Errorf("ratio(1, 0) = %v, want 0", got)
	}
}
