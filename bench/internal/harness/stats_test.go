package harness

import (
	"math"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []float64{7}, Summary{N: 1, Median: 7, Min: 7, Max: 7, P90: 7, P99: 7}},
		{"odd", []float64{5, 1, 3}, Summary{N: 3, Median: 3, Min: 1, Max: 5, P90: 4.6, P99: 4.96}},
		{"even", []float64{4, 1, 3, 2}, Summary{N: 4, Median: 2.5, Min: 1, Max: 4, P90: 3.7, P99: 3.97}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.xs...)
			got := Summarize(in)
			if got.N != tc.want.N || !near(got.Median, tc.want.Median) || got.Min != tc.want.Min ||
				got.Max != tc.want.Max || !near(got.P90, tc.want.P90) || !near(got.P99, tc.want.P99) {
				t.Errorf("Summarize(%v) = %+v, want %+v", tc.xs, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.xs[i] {
					t.Fatalf("Summarize modified its input: %v", in)
				}
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	s := make([]float64, 101) // 0, 1, ..., 100: the p-th percentile is p
	for i := range s {
		s[i] = float64(i)
	}
	for _, p := range []float64{0, 1, 50, 90, 99, 100} {
		if got := Percentile(s, p); !near(got, p) {
			t.Errorf("Percentile(0..100, %v) = %v", p, got)
		}
	}
	if got := Percentile(s, -5); got != 0 {
		t.Errorf("below 0: %v, want the minimum", got)
	}
	if got := Percentile(s, 500); got != 100 {
		t.Errorf("above 100: %v, want the maximum", got)
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("empty: %v, want NaN", got)
	}
}

func TestRatioAndIn(t *testing.T) {
	if got := Ratio(3, 2); got != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", got)
	}
	if got := Ratio(3, 0); got != 0 {
		t.Errorf("Ratio(3, 0) = %v, want 0", got)
	}
	got := In([]time.Duration{1500 * time.Microsecond, 2 * time.Second}, time.Millisecond)
	if len(got) != 2 || got[0] != 1.5 || got[1] != 2000 {
		t.Errorf("In = %v, want [1.5 2000]", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
