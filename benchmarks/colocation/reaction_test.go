package main

import (
	"strings"
	"testing"
	"time"
)

// TestInBand checks the "p99 back in band" rule on synthetic samples: slow
// requests until 600 ms after the step, fast ones after: the window
// [500, 750) ms still holds slow ones, [750, 1000) and [1000, 1250) are
// the first two consecutive in-band windows, so the p99 is back in band at
// the end of the first of them, 1 s after the step.
func TestInBand(t *testing.T) {
	var s []reactionSample
	for at := time.Duration(0); at < 2*time.Second; at += 5 * time.Millisecond {
		lat := 2 * time.Millisecond
		if at < 600*time.Millisecond {
			lat = 80 * time.Millisecond
		}
		s = append(s, reactionSample{at: at, lat: lat, ok: true})
	}
	got, ok := inBand(s, 0, 2*time.Second, 250*time.Millisecond, 10000)
	if !ok || got != time.Second {
		t.Errorf("inBand = %v, %v; want 1s, true", got, ok)
	}
	// An error in a window keeps it out of band.
	s[len(s)-1].ok = false
	if _, ok := inBand(s, 1750*time.Millisecond, 2*time.Second, 250*time.Millisecond, 10000); ok {
		t.Errorf("a window with an error counted as in band")
	}
	if _, ok := inBand(s, 0, 2*time.Second, 250*time.Millisecond, 1000); ok {
		t.Errorf("in band under a 1 ms band, though every request took ≥ 2 ms")
	}
}

func TestQuantilesAndSizeAt(t *testing.T) {
	v := make([]float64, 20)
	for i := range v {
		v[i] = float64(20 - i)
	}
	if p50, p99, max := quantiles(v); p50 != 10 || p99 != 20 || max != 20 {
		t.Errorf("quantiles of 1..20 = %g, %g, %g; want 10, 20, 20", p50, p99, max)
	}
	if a, b, c := quantiles(nil); a != 0 || b != 0 || c != 0 {
		t.Errorf("quantiles of nothing = %g, %g, %g", a, b, c)
	}
	ev := []cpusetEvent{{0, 1}, {time.Second, 2}, {2 * time.Second, 1}}
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{500 * time.Millisecond, 1}, {time.Second, 2}, {1500 * time.Millisecond, 2}, {3 * time.Second, 1}} {
		if got := sizeAt(ev, c.at); got != c.want {
			t.Errorf("sizeAt(%v) = %d, want %d", c.at, got, c.want)
		}
	}
}

func TestLevels(t *testing.T) {
	o := Options{Duration: time.Second, Loads: []float64{0.2}, Step: true}
	ls := o.levels()
	if len(ls) != 2 || ls[0].Name != "20 %" || !strings.HasPrefix(ls[1].Name, "step") {
		t.Fatalf("levels %+v", ls)
	}
	step := ls[1]
	if step.length != 3*time.Second || step.frac(500*time.Millisecond) != 0.2 || step.frac(1500*time.Millisecond) != 0.8 || step.frac(2500*time.Millisecond) != 0.2 {
		t.Errorf("step level: length %v, fractions %g %g %g", step.length, step.frac(500*time.Millisecond), step.frac(1500*time.Millisecond), step.frac(2500*time.Millisecond))
	}
	if m := meanFrac(&step); m < 0.399 || m > 0.401 {
		t.Errorf("step mean fraction %g, want 0.4", m)
	}
}

func TestReactionOptionsValidate(t *testing.T) {
	good := DefaultReactionOptions()
	if err := good.validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, c := range []struct {
		mut  func(*ReactionOptions)
		want string
	}{
		{func(o *ReactionOptions) { o.Periods = []time.Duration{time.Millisecond} }, "period 1ms"},
		{func(o *ReactionOptions) { o.Low, o.High = 0.8, 0.2 }, "loads"},
		{func(o *ReactionOptions) { o.Steps = 0 }, "steps"},
		{func(o *ReactionOptions) { o.HighFor = o.Window }, "high phase"},
	} {
		o := DefaultReactionOptions()
		c.mut(&o)
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error naming %s", err, c.want)
		}
	}
	ov := DefaultOverheadOptions()
	if err := ov.validate(); err != nil {
		t.Errorf("overhead defaults refused: %v", err)
	}
	ov.Containers = []int{0}
	if err := ov.validate(); err == nil || !strings.Contains(err.Error(), "containers 0") {
		t.Errorf("overhead with 0 containers: %v", err)
	}
}
