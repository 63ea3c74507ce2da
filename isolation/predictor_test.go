package isolation_test

import (
	"math"
	"testing"
	"time"

	"github.com/strata-nri/strata/isolation"
)

func TestPeakPredictorPercentile(t *testing.T) {
	p := isolation.NewPeakPredictor(time.Hour)
	if p.Percentile(0.95) != 0 || !p.Empty() {
		t.Fatal("empty predictor should predict 0")
	}
	t0 := noon
	// 100 samples 1..100 cores in the same instant: p95 ≈ 95, p50 ≈ 50,
	// within the 5 % bucket resolution.
	for i := 1; i <= 100; i++ {
		p.Add(float64(i), t0)
	}
	for _, c := range []struct{ q, want float64 }{{0.95, 95}, {0.5, 50}, {1, 100}} {
		got := p.Percentile(c.q)
		if got < c.want || got > c.want*1.05 {
			t.Errorf("p%.0f = %.2f, want [%.0f, %.2f]", c.q*100, got, c.want, c.want*1.05)
		}
	}
}

// A sample one half-life older weighs half as much: 10 old samples at 40
// cores and 5 new ones at 10 cores, one half-life apart, weigh 5 : 5, so
// the median sits at the boundary and p60 is the old peak, p40 the new value.
func TestPeakPredictorHalfLife(t *testing.T) {
	p := isolation.NewPeakPredictor(time.Hour)
	for range 10 {
		p.Add(40, noon)
	}
	for range 5 {
		p.Add(10, noon.Add(time.Hour))
	}
	if got := p.Percentile(0.4); math.Abs(got-10) > 0.5 {
		t.Errorf("p40 = %.2f, want ≈10", got)
	}
	if got := p.Percentile(0.6); math.Abs(got-40) > 2 {
		t.Errorf("p60 = %.2f, want ≈40", got)
	}
	// Many half-lives later the old samples no longer matter, and the
	// weights stay finite (rebasing).
	for i := range 200 {
		p.Add(5, noon.Add(time.Duration(2+i)*time.Hour))
	}
	if got := p.Percentile(0.99); got > 5.3 || math.IsInf(got, 0) {
		t.Errorf("p99 after 200 h = %.2f, want ≈5", got)
	}
}
