package main

import (
	"slices"
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
		{func(o *ReactionOptions) { o.Waiting = []string{"maybe"} }, `waiting variant "maybe"`},
		{func(o *ReactionOptions) { o.Waiting = nil }, "waiting variants: none"},
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

// TestScheduleAndRate: kinds alternate, phases follow each other without
// gaps, and the rate is High only inside high phases.
func TestScheduleAndRate(t *testing.T) {
	ms := time.Millisecond
	kinds := []reactionStep{{lowFor: 100 * ms, highFor: 50 * ms}, {lowFor: 200 * ms, highFor: 300 * ms}}
	s := schedule(kinds, 2)
	want := []scheduledStep{{0, 100 * ms, 150 * ms, 0}, {150 * ms, 350 * ms, 650 * ms, 1}, {650 * ms, 750 * ms, 800 * ms, 0}, {800 * ms, 1000 * ms, 1300 * ms, 1}}
	if len(s) != len(want) {
		t.Fatalf("schedule = %+v, want %+v", s, want)
	}
	for i := range want {
		if s[i] != want[i] {
			t.Errorf("step %d = %+v, want %+v", i, s[i], want[i])
		}
	}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{-time.Second, 1}, {0, 1}, {99 * ms, 1}, {100 * ms, 9}, {149 * ms, 9}, {150 * ms, 1}, {349 * ms, 1}, {350 * ms, 9}, {649 * ms, 9},
		{760 * ms, 9}, {900 * ms, 1}, {1299 * ms, 9}, {1300 * ms, 1}} {
		if got := rateAt(s, 1, 9, c.at); got != c.want {
			t.Errorf("rateAt(%v) = %g, want %g", c.at, got, c.want)
		}
	}
}

// TestStepKinds: the phases grow with the period (a high phase of at
// least 3 periods, a low one of shrinkInterval and 2 periods); comparing
// adds the fixed phases only where they differ.
func TestStepKinds(t *testing.T) {
	o := DefaultReactionOptions()
	k := o.stepKinds(time.Second)
	if len(k) != 1 || k[0].lowFor != 4*time.Second || k[0].highFor != 3*time.Second {
		t.Errorf("1 s period: %+v, want one kind of 4s / 3s", k)
	}
	if k := o.stepKinds(100 * time.Millisecond); len(k) != 1 || k[0].lowFor != 2500*time.Millisecond || k[0].highFor != 2*time.Second {
		t.Errorf("100 ms period: %+v, want one kind of 2.5s / 2s", k)
	}
	o.Compare = true
	if k := o.stepKinds(time.Second); len(k) != 2 || k[0].highFor != 2*time.Second || k[1].highFor != 3*time.Second {
		t.Errorf("1 s period, compared: %+v, want 2s then 3s high phases", k)
	}
	if k := o.stepKinds(100 * time.Millisecond); len(k) != 1 {
		t.Errorf("100 ms period, compared: %+v, want one kind (the fixed phases are the sized ones)", k)
	}
}

// TestTraceStep follows a synthetic step: the load rises above the band
// in the second plan, the pool grows in the third, the runtime gets the
// LC update 1 ms later and writes it 1 ms after that; plans and updates
// outside the step, and other containers' updates, are not counted.
func TestTraceStep(t *testing.T) {
	origin := time.Unix(1000, 0)
	ms := time.Millisecond
	at := func(t time.Time) time.Duration { return t.Sub(origin) }
	w := func(d time.Duration) time.Time { return origin.Add(d) }
	step, end := time.Second, 3*time.Second
	plans := []planRecord{
		{w(900 * ms), 0.9, 1},  // before the step: not counted
		{w(1050 * ms), 0.4, 1}, // load 0.4 on 1 CPU
		{w(1150 * ms), 0.6, 1}, // above the band, not grown yet
		{w(1250 * ms), 0.7, 0}, // grown: the batch pool gave its CPU
		{w(1350 * ms), 0.5, 0}, // load 0.25 on 2 CPUs
		{w(3100 * ms), 2, 0},   // after the high phase
	}
	updates := []updateRecord{
		{"lc", 2, w(500 * ms), w(501 * ms)},      // before the step
		{"batch", 2, w(1251 * ms), w(1252 * ms)}, // another container
		{"lc", 2, w(1251 * ms), w(1252 * ms)},
	}
	tr := traceStep(plans, updates, at, "lc", 2, 1, 0.5, step, end)
	if tr.Above != 150 || tr.Decided != 250 || tr.Sent != 251 || tr.Written != 252 || tr.Plans != 4 || tr.LoadMax != 0.7 {
		t.Errorf("trace = %+v; want above 150, decided 250, sent 251, written 252 ms, 4 plans, load max 0.7", tr)
	}
	if m := (0.4 + 0.6 + 0.7 + 0.25) / 4; tr.LoadMean < m-1e-9 || tr.LoadMean > m+1e-9 {
		t.Errorf("load mean %g, want %g", tr.LoadMean, m)
	}
	none := traceStep(plans[:3], nil, at, "lc", 2, 1, 0.7, step, end)
	if none.Above != -1 || none.Decided != -1 || none.Sent != -1 {
		t.Errorf("never above a 0.7 band, never grown: %+v", none)
	}
	st := stages([]StepTrace{{Above: 150, Decided: 250, Sent: 251, Written: 252, Seen: 253, LCRun: 0.5, LCWait: 0.25}, {Above: -1, Decided: -1, Sent: -1, Written: -1, Seen: -1, LCRun: -1}}, 0.5)
	if st.StepToAboveP50 != 150 || st.AboveToDecidedP50 != 100 || st.DecidedToSentP50 != 1 || st.SentToWrittenP50 != 1 || st.WrittenToSeenP50 != 1 || st.NeverAbove != 1 || st.GrewNotAbove != 0 || st.LCRunP50 != 0.5 || st.LCWaitP50 != 0.25 {
		t.Errorf("stages = %+v", st)
	}
	// Grown on waiting: before any plan saw the load above the band, or
	// with none seeing it.
	st = stages([]StepTrace{{Above: 300, Decided: 200, Seen: 210, LCRun: -1}, {Above: -1, Decided: 100, Seen: 110, LCRun: -1}, {Above: -1, Decided: -1, Seen: -1, LCRun: -1}}, 0.5)
	if st.GrewNotAbove != 2 || st.NeverAbove != 2 {
		t.Errorf("grown not above %d, never above %d; want 2 and 2", st.GrewNotAbove, st.NeverAbove)
	}
}

func TestSchedBetween(t *testing.T) {
	ms := time.Millisecond
	s := []schedSample{{0, 0, 0}, {20 * ms, 10 * ms, 5 * ms}, {40 * ms, 30 * ms, 5 * ms}, {60 * ms, 50 * ms, 25 * ms}}
	if run, wait, ok := schedBetween(s, 20*ms, 60*ms); !ok || run != 1 || wait != 0.5 {
		t.Errorf("schedBetween(20, 60 ms) = %g, %g, %v; want 1, 0.5, true", run, wait, ok)
	}
	if _, _, ok := schedBetween(s, 30*ms, 70*ms); ok {
		t.Errorf("no sample at or after 70 ms, yet ok")
	}
}

// TestLowPhaseGrowths: a growth of the LC pool in a low phase is counted
// for that step's kind; growths in high phases, in the warm-up and
// shrinks are not.
func TestLowPhaseGrowths(t *testing.T) {
	origin := time.Unix(1000, 0)
	at := func(tm time.Time) time.Duration { return tm.Sub(origin) }
	sec := func(s float64) time.Time { return origin.Add(time.Duration(s * float64(time.Second))) }
	steps := schedule([]reactionStep{{lowFor: 2 * time.Second, highFor: time.Second}, {lowFor: 2 * time.Second, highFor: time.Second}}, 1)
	// Node of 2 CPUs: batchCPUs 1 → pool 1, 0 → pool 2.
	plans := []planRecord{
		{at: sec(-1), batchCPUs: 1}, {at: sec(-0.5), batchCPUs: 0}, // warm-up growth: not counted
		{at: sec(0.5), batchCPUs: 1}, // shrink
		{at: sec(1), batchCPUs: 0},   // low phase of kind 0
		{at: sec(1.5), batchCPUs: 1},
		{at: sec(2.5), batchCPUs: 0}, // high phase
		{at: sec(3.2), batchCPUs: 1},
		{at: sec(4), batchCPUs: 0}, // low phase of kind 1
	}
	if got := lowPhaseGrowths(plans, at, steps, 2); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("low-phase growths %v, want [0 1]", got)
	}
}
