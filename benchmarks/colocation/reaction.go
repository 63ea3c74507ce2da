package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ReactionOptions set the reaction benchmark: the LC service under Strata
// with batch beside it, its load stepping between Low and High of capacity
// Steps times; each step is timed to the LC cgroup's new cpuset and to the
// LC p99 back in its band.
//
// The phases are sized from the loop period: the high phase lasts at
// least 3 periods (the goal is 2 periods and 50 ms: a 2 s high phase
// cannot time a 1 s period's reaction), the low phase at least
// shrinkInterval and 2 periods, so the pool can shrink back before the
// next step.
type ReactionOptions struct {
	Periods   []time.Duration // Strata loop periods to compare
	Steps     int             // load steps per period
	Low, High float64         // load fractions of capacity
	// Compare alternates the steps between fixed phases (LowFor and
	// HighFor however long the period, as the benchmark had them before)
	// and phases sized from the period, in the same run: two results per
	// period where they differ.
	Compare bool
	// Waiting lists the resize.waiting variants to run at each period,
	// each in a plugin session of its own: "on" (the default
	// configuration: a pool waiting for a CPU near its band's top grows)
	// and "off" (growth on usage above the band only). With both, the
	// order alternates between periods (off, on; then on, off) so that a
	// drift in the node's load does not favour one.
	Waiting       []string
	LowFor        time.Duration // time at Low before each step, at least
	HighFor       time.Duration // time at the high load after each step, at least
	Shrink        time.Duration // resize.shrinkInterval, so the pool shrinks back between steps
	Window        time.Duration // the rolling window the p99 is taken over
	BandFactor    float64       // the band: BandFactor × LC-alone p99 at High
	Work          int           // LC per-request work
	CapacityRPS   float64       // measured when 0
	CapacityFor   time.Duration // how long capacity is measured
	AloneFor      time.Duration // how long LC alone at High is measured for the band
	SettleTimeout time.Duration // longest wait for the pool to shrink before the first step
}

// DefaultReactionOptions are the reaction benchmark's defaults.
func DefaultReactionOptions() ReactionOptions {
	return ReactionOptions{
		Periods: []time.Duration{time.Second, 100 * time.Millisecond},
		Steps:   20, Low: 0.2, High: 0.8, Waiting: []string{"on"},
		LowFor: 2500 * time.Millisecond, HighFor: 2 * time.Second, Shrink: 2 * time.Second,
		Window: 250 * time.Millisecond, BandFactor: 2, Work: 2000,
		CapacityFor: 2 * time.Second, AloneFor: 3 * time.Second,
	}
}

func (o *ReactionOptions) validate() error {
	if len(o.Periods) == 0 {
		return fmt.Errorf("reaction periods: none; want at least one")
	}
	for _, p := range o.Periods {
		if p < 100*time.Millisecond || p > 10*time.Second {
			return fmt.Errorf("reaction period %s: want 100ms..10s", p)
		}
	}
	if len(o.Waiting) == 0 {
		return fmt.Errorf("reaction waiting variants: none; want \"on\", \"off\" or both")
	}
	for _, w := range o.Waiting {
		if w != "on" && w != "off" {
			return fmt.Errorf("reaction waiting variant %q: want \"on\" or \"off\"", w)
		}
	}
	if o.Steps < 1 || o.Steps > 1000 {
		return fmt.Errorf("reaction steps %d: want 1..1000", o.Steps)
	}
	if !(o.Low >= 0.05 && o.Low < o.High && o.High <= 0.95) {
		return fmt.Errorf("reaction loads %g → %g: want 0.05 ≤ low < high ≤ 0.95", o.Low, o.High)
	}
	if o.Window < 50*time.Millisecond || o.HighFor < 2*o.Window || o.LowFor < o.Window {
		return fmt.Errorf("reaction window %s, high phase %s, low phase %s: want window ≥ 50ms, high ≥ 2 windows, low ≥ 1 window", o.Window, o.HighFor, o.LowFor)
	}
	if o.BandFactor < 1 || o.BandFactor > 100 {
		return fmt.Errorf("reaction band factor %g: want 1..100", o.BandFactor)
	}
	if o.Work < 1 || o.Work > 1<<20 {
		return fmt.Errorf("work %d: want 1..%d", o.Work, 1<<20)
	}
	return nil
}

// reactionStep is how one kind of step is driven: the phases' lengths.
type reactionStep struct {
	name            string
	lowFor, highFor time.Duration
}

// stepKinds returns the kinds of step at period: phases sized from the
// period and, when comparing and they differ, the fixed phases.
func (o *ReactionOptions) stepKinds(period time.Duration) []reactionStep {
	kind := func(low, high time.Duration) reactionStep {
		return reactionStep{name: fmt.Sprintf("%s / %s", low, high), lowFor: low, highFor: high}
	}
	sized := kind(max(o.LowFor, o.Shrink+2*period), max(o.HighFor, 3*period))
	fixed := kind(o.LowFor, o.HighFor)
	if o.Compare && fixed != sized {
		return []reactionStep{fixed, sized}
	}
	return []reactionStep{sized}
}

// ReactionResult is one loop period's reaction figures.
type ReactionResult struct {
	Period string `json:"period"`
	// Waiting is the resize.waiting variant: "on" or "off".
	Waiting string `json:"waiting_rule"`
	// Phases: the low and high phases' lengths.
	Phases string `json:"phases"`
	// Steps is how many steps were timed; AlreadyGrown counts steps at
	// which the LC pool had not shrunk back during the low phase (they
	// cannot be timed and are left out).
	Steps        int `json:"steps"`
	AlreadyGrown int `json:"already_grown"`
	// CPUSet*: from the step to the LC cgroup's grown cpuset (polled
	// every 2 ms), ms. NoCPUSet counts timed steps where it never grew
	// within the high phase.
	CPUSetP50 float64 `json:"cpuset_p50_ms"`
	CPUSetP99 float64 `json:"cpuset_p99_ms"`
	CPUSetMax float64 `json:"cpuset_max_ms"`
	NoCPUSet  int     `json:"cpuset_not_grown"`
	// InBand*: from the step to the end of the first of two consecutive
	// windows whose LC p99 is within the band, ms. NotInBand counts steps
	// where that never happened within the high phase.
	InBandP50 float64 `json:"p99_in_band_p50_ms"`
	InBandP99 float64 `json:"p99_in_band_p99_ms"`
	InBandMax float64 `json:"p99_in_band_max_ms"`
	NotInBand int     `json:"p99_not_in_band"`
	BandMs    float64 `json:"band_ms"`
	// CapacityRPS is the LC capacity the loads are fractions of;
	// AloneCPUAtHigh the CPUs the LC service used alone at High (its
	// cgroup's CPU time over the band's window): what a step asks.
	CapacityRPS    float64 `json:"lc_capacity_rps"`
	AloneCPUAtHigh float64 `json:"lc_alone_cpus_at_high"`
	// Goal is the reaction goal for the cpuset: 2 periods + 50 ms.
	GoalMs float64 `json:"cpuset_goal_ms"`
	// Stages: where the time from a step to the grown cpuset went (trace.go).
	Stages ReactionStages `json:"stages"`
	// StepTrace is every timed step's trace.
	StepTrace []StepTrace `json:"step_trace,omitempty"`
	// GrewInLow counts plans that grew the LC pool during a low phase
	// (charged to the kind of the step that phase precedes): growth on
	// the trough's load, which keeps the pool grown into the next step.
	GrewInLow int `json:"grew_in_low_phase"`
	// LoadAvgStart and LoadAvgEnd: /proc/loadavg's three figures at the
	// session's start and end.
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
	// UpdateFailures counts updates the runtime stand-in refused.
	UpdateFailures int      `json:"runtime_update_failures,omitempty"`
	UpdateErrors   []string `json:"runtime_update_errors,omitempty"`
}

// StepTrace is one step's way from the load step to the grown cpuset, in
// ms from the step (-1: did not happen within the high phase): the first
// plan that observed the LC pool's load above its band, the first that
// grew the pool, the runtime's receipt of the LC container's update with
// the grown cpuset, its cgroup write returned, and the cgroup's cpuset
// seen grown by the benchmark's poll (schedstat sampled every 20 ms).
// Plans counts the periods that ended
// in the high phase; LoadMax and LoadMean are the LC pool's load (usage
// over its CPUs) the plugin observed in them.
type StepTrace struct {
	Above    float64 `json:"above_ms"`
	Decided  float64 `json:"decided_ms"`
	Sent     float64 `json:"update_received_ms"`
	Written  float64 `json:"cgroup_written_ms"`
	Seen     float64 `json:"cpuset_seen_ms"`
	Plans    int     `json:"plans"`
	LoadMax  float64 `json:"load_max"`
	LoadMean float64 `json:"load_mean"`
	// LCRun and LCWait: the LC process from the step until its cpuset
	// grew (or the high phase's end), from its
	// threads' schedstat — CPUs it ran on, and CPUs' worth of its threads
	// waiting in a run queue (-1: not sampled).
	LCRun  float64 `json:"lc_run_cpus"`
	LCWait float64 `json:"lc_wait_cpus"`
}

// ReactionStages are the medians and maxima over the timed steps of each
// stage's duration, ms (StepTrace's differences; steps where a stage did
// not happen are left out of it), and the LC pool's observed load in the
// high phase of the steps that grew and of those that did not.
type ReactionStages struct {
	StepToAboveP50, StepToAboveMax       float64
	AboveToDecidedP50, AboveToDecidedMax float64
	DecidedToSentP50, DecidedToSentMax   float64
	SentToWrittenP50, SentToWrittenMax   float64
	WrittenToSeenP50, WrittenToSeenMax   float64
	NeverAbove                           int // timed steps whose load never rose above the band
	// GrewNotAbove: timed steps whose pool grew before any plan observed
	// its load above the band (resize.waiting's growth).
	GrewNotAbove                         int
	LoadMaxGrownP50, LoadMaxNotGrownP50  float64 // the high phase's highest load, median over steps
	LoadMeanGrownP50, LoadMeanNotGrown50 float64
	BandHigh                             float64
	// The LC process from the step until its cpuset grew (or the high
	// phase ended), median over the timed steps: CPUs
	// it ran on, CPUs' worth of its threads waiting for one.
	LCRunP50, LCWaitP50 float64
}

// cpusetEvent is the LC cgroup's cpuset size from a moment on.
type cpusetEvent struct {
	at   time.Duration
	size int
}

// RunReaction runs the reaction benchmark. It needs root.
func RunReaction(ctx context.Context, o ReactionOptions) ([]ReactionResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	e, err := newEnv("reaction")
	if err != nil {
		return nil, err
	}
	if o.CapacityRPS <= 0 {
		if err := locked(func() (err error) {
			o.CapacityRPS, err = measureCapacity(ctx, e, o.Work, o.CapacityFor)
			return err
		}); err != nil {
			return nil, err
		}
	}
	// The band: the LC service alone at High, p99 × BandFactor.
	aloneUs, aloneCPU, err := aloneAt(ctx, e, o, o.High*o.CapacityRPS)
	if err != nil {
		return nil, fmt.Errorf("reaction band: %w", err)
	}
	bandUs := int64(o.BandFactor * float64(aloneUs))
	var out []ReactionResult
	for pi, p := range o.Periods {
		variants := slices.Clone(o.Waiting)
		if pi%2 == 1 {
			slices.Reverse(variants)
		}
		for _, w := range variants {
			var rs []ReactionResult
			err := locked(func() error {
				return e.with(func() error {
					var err error
					rs, err = reactionAt(ctx, e, o, p, w, o.stepKinds(p), bandUs)
					return err
				})
			})
			if err != nil {
				return nil, fmt.Errorf("reaction at %s, waiting rule %s: %w", p, w, err)
			}
			for i := range rs {
				rs[i].AloneCPUAtHigh = aloneCPU
				progress("reaction at %s, waiting rule %s, phases %s: %d steps timed, cpuset p50 %.0f ms p99 %.0f ms, %d not grown, p99 in band p50 %.0f ms (load average %s)",
					p, w, rs[i].Phases, rs[i].Steps, rs[i].CPUSetP50, rs[i].CPUSetP99, rs[i].NoCPUSet, rs[i].InBandP50, loadavg())
			}
			out = append(out, rs...)
		}
	}
	return out, nil
}

// aloneAt runs the LC service alone at rps and returns its p99 (µs) and
// the CPUs it used (its cgroup's CPU time over the window).
func aloneAt(ctx context.Context, e *env, o ReactionOptions, rps float64) (p99Us int64, cpus float64, err error) {
	err = locked(func() error {
		return e.with(func() error {
			lc, addr, err := e.startLC(o.Work)
			if err != nil {
				return err
			}
			defer lc.kill()
			var u0 time.Duration
			var t0 time.Time
			begin := func(time.Time) { u0, _ = e.lc.CPUUsage(); t0 = time.Now() }
			r := openLoop(ctx, loadSpec{url: "http://" + addr + "/", rate: func(time.Duration) float64 { return rps },
				warmup: 500 * time.Millisecond, window: o.AloneFor, begin: begin}, rand.New(rand.NewPCG(3, 4)))
			if u1, err := e.lc.CPUUsage(); err == nil && !t0.IsZero() {
				cpus = float64(u1-u0) / float64(time.Since(t0))
			}
			p99Us = r.Hist.ValueAtQuantile(99)
			return nil
		})
	})
	return p99Us, cpus, err
}

// scheduledStep is one step of a run: its low phase from lowAt, the step
// at step, the end of its high phase at end, and its kind.
type scheduledStep struct {
	lowAt, step, end time.Duration
	kind             int
}

// schedule lays out steps of each kind in turn (kind 0, 1, 0, 1, …).
func schedule(kinds []reactionStep, steps int) []scheduledStep {
	var out []scheduledStep
	var t time.Duration
	for n := 0; n < steps; n++ {
		for k := range kinds {
			s := scheduledStep{lowAt: t, step: t + kinds[k].lowFor, kind: k}
			s.end = s.step + kinds[k].highFor
			t = s.end
			out = append(out, s)
		}
	}
	return out
}

// rateAt is the offered rate at t in a run laid out by sched: low in low
// phases (and the warm-up), high in high phases.
func rateAt(sched []scheduledStep, low, high float64, t time.Duration) float64 {
	i, _ := slices.BinarySearchFunc(sched, t, func(s scheduledStep, t time.Duration) int {
		switch {
		case s.end <= t:
			return -1
		case s.lowAt > t:
			return 1
		}
		return 0
	})
	if i < len(sched) && sched[i].lowAt <= t && t >= sched[i].step && t < sched[i].end {
		return high
	}
	return low
}

func reactionAt(ctx context.Context, e *env, o ReactionOptions, period time.Duration, waiting string, kinds []reactionStep, bandUs int64) (out []ReactionResult, err error) {
	goal := float64(2*period+50*time.Millisecond) / float64(time.Millisecond)
	res := make([]ReactionResult, len(kinds))
	for i, k := range kinds {
		res[i] = ReactionResult{Period: period.String(), Waiting: waiting, Phases: k.name, BandMs: float64(bandUs) / 1000, GoalMs: goal, CapacityRPS: o.CapacityRPS,
			LoadAvgStart: loadavg()}
	}
	cfg := e.strataConfig(period, o.Shrink)
	cfg.Resize.Waiting.Disabled = waiting == "off"
	trace := &traceLog{}
	st, err := startStrata(ctx, cfg, trace)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := st.stop(ctx); serr != nil && err == nil {
			err = serr
		}
	}()
	if err := st.createPair(ctx, e.lc, e.batch, e.cpus.Size()); err != nil {
		return nil, err
	}
	var lc, cpu, mem *child
	defer func() {
		for _, c := range []*child{lc, cpu, mem} {
			if c != nil && c.cmd.ProcessState == nil {
				c.kill()
			}
		}
	}()
	var addr string
	if lc, addr, err = e.startLC(o.Work); err != nil {
		return nil, err
	}
	if cpu, err = startAntagonist(e.batch, "cpu"); err != nil {
		return nil, err
	}
	if mem, err = startAntagonist(e.batch, "mem"); err != nil {
		return nil, err
	}
	if err := st.startAll(ctx); err != nil {
		return nil, err
	}

	steps := schedule(kinds, o.Steps)
	window := steps[len(steps)-1].end
	// The warm-up at Low lets the pool shrink from its admission size.
	warmup := o.Shrink + 2*period + o.LowFor
	var (
		mu      sync.Mutex
		samples []reactionSample
		events  []cpusetEvent
		origin  time.Time
	)
	var sched []schedSample
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	schedDone := make(chan struct{})
	lcPid := lc.cmd.Process.Pid
	begin := func(start time.Time) {
		mu.Lock()
		origin = start
		mu.Unlock()
		go func() {
			defer close(schedDone)
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if run, delay, err := readSchedstat(lcPid); err == nil {
					mu.Lock()
					sched = append(sched, schedSample{time.Since(origin), run, delay})
					mu.Unlock()
				}
				select {
				case <-stopPoll:
					return
				case <-t.C:
				}
			}
		}()
		go func() {
			defer close(polled)
			last := -1
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			for {
				if c, err := e.lc.EffectiveCPUs(); err == nil && c.Size() != last {
					last = c.Size()
					mu.Lock()
					events = append(events, cpusetEvent{time.Since(origin), last})
					mu.Unlock()
				}
				select {
				case <-stopPoll:
					return
				case <-t.C:
				}
			}
		}()
	}
	low, high := o.Low*o.CapacityRPS, o.High*o.CapacityRPS
	rate := func(t time.Duration) float64 { return rateAt(steps, low, high, t) }
	openLoop(ctx, loadSpec{url: "http://" + addr + "/", rate: rate, warmup: warmup, window: window, begin: begin,
		sample: func(at, lat time.Duration, ok bool) {
			mu.Lock()
			samples = append(samples, reactionSample{at, lat, ok})
			mu.Unlock()
		}}, rand.New(rand.NewPCG(5, 6)))
	close(stopPoll)
	<-polled
	<-schedDone
	if _, err := antagonistRate(cpu, antagonistMark{}); err != nil {
		return nil, fmt.Errorf("cpu burner: %w", err)
	}
	if _, err := antagonistRate(mem, antagonistMark{}); err != nil {
		return nil, fmt.Errorf("memory thrasher: %w", err)
	}
	if _, err := lc.stop(); err != nil {
		return nil, fmt.Errorf("lc service: %w", err)
	}
	failures, errText := st.rt.updateErrors()
	slices.SortFunc(samples, func(a, b reactionSample) int { return int(a.at - b.at) })

	var bandHigh float64
	for _, pc := range cfg.Pools {
		if pc.Priority == 0 {
			bandHigh = pc.Band.High
		}
	}
	trace.mu.Lock()
	plans, updates := slices.Clone(trace.plans), slices.Clone(trace.updates)
	trace.mu.Unlock()
	mu.Lock()
	at := func(t time.Time) time.Duration { return t.Sub(origin) }
	mu.Unlock()
	lcID := lcNamespace + "-lc"
	for _, n := range lowPhaseGrowths(plans, at, steps, e.cpus.Size()) {
		res[n].GrewInLow++
	}

	cpusetMs := make([][]float64, len(kinds))
	bandMs := make([][]float64, len(kinds))
	for _, s := range steps {
		r := &res[s.kind]
		before := sizeAt(events, s.step)
		if before >= e.cpus.Size() {
			r.AlreadyGrown++
			continue
		}
		r.Steps++
		grown := time.Duration(-1)
		for _, ev := range events {
			if ev.at >= s.step && ev.at < s.end && ev.size > before {
				grown = ev.at - s.step
				break
			}
		}
		if grown < 0 {
			r.NoCPUSet++
		} else {
			cpusetMs[s.kind] = append(cpusetMs[s.kind], float64(grown)/float64(time.Millisecond))
		}
		tr := traceStep(plans, updates, at, lcID, e.cpus.Size(), before, bandHigh, s.step, s.end)
		tr.Seen = msOrNone(grown)
		tr.LCRun, tr.LCWait = -1, -1
		upTo := s.end // the LC on the trough's CPUs: until the cpuset grew
		if grown >= 0 {
			upTo = s.step + grown
		}
		if run, wait, ok := schedBetween(sched, s.step, upTo); ok {
			tr.LCRun, tr.LCWait = run, wait
		}
		r.StepTrace = append(r.StepTrace, tr)
		if t, ok := inBand(samples, s.step, s.end, o.Window, bandUs); ok {
			bandMs[s.kind] = append(bandMs[s.kind], float64(t)/float64(time.Millisecond))
		} else {
			r.NotInBand++
		}
	}
	for i := range res {
		r := &res[i]
		r.CPUSetP50, r.CPUSetP99, r.CPUSetMax = quantiles(cpusetMs[i])
		r.InBandP50, r.InBandP99, r.InBandMax = quantiles(bandMs[i])
		r.Stages = stages(r.StepTrace, bandHigh)
		r.LoadAvgEnd = loadavg()
		// The runtime is shared by the kinds: its refusals are the run's.
		r.UpdateFailures, r.UpdateErrors = failures, errText
	}
	return res, nil
}

// lowPhaseGrowths returns, for every plan that grew the LC pool (the node's
// CPUs the batch pool does not hold) while the load was low — in a step's
// low phase, not in the warm-up — the kind of that step.
func lowPhaseGrowths(plans []planRecord, at func(time.Time) time.Duration, steps []scheduledStep, node int) []int {
	var kinds []int
	prev := -1
	for _, p := range plans {
		size := node - p.batchCPUs
		t := at(p.at)
		if prev >= 0 && size > prev {
			for _, s := range steps {
				if t >= s.lowAt && t < s.step {
					kinds = append(kinds, s.kind)
					break
				}
			}
		}
		prev = size
	}
	return kinds
}

// firstField is the first whitespace-separated field of s (the 1-minute
// load average of a /proc/loadavg line).
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// msOrNone is d in ms, or -1 for a negative d (did not happen).
func msOrNone(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d) / float64(time.Millisecond)
}

// traceStep follows one step [step, end) through the plugin's plans and
// the runtime's updates; at maps a wall-clock time to the run's clock.
// The LC pool holds the node's CPUs the batch pool does not (the online
// pool has no members); before is its size at the step.
func traceStep(plans []planRecord, updates []updateRecord, at func(time.Time) time.Duration, lcID string, node, before int, bandHigh float64, step, end time.Duration) StepTrace {
	tr := StepTrace{Above: -1, Decided: -1, Sent: -1, Written: -1}
	prevSize := before
	var sum float64
	for _, p := range plans {
		t := at(p.at)
		size := node - p.batchCPUs
		if t < step {
			prevSize = size
			continue
		}
		if t >= end {
			break
		}
		load := 0.0
		if prevSize > 0 {
			load = p.onlineUsage / float64(prevSize)
		}
		tr.Plans++
		sum += load
		tr.LoadMax = max(tr.LoadMax, load)
		if tr.Above < 0 && load > bandHigh {
			tr.Above = msOrNone(t - step)
		}
		if tr.Decided < 0 && size > before {
			tr.Decided = msOrNone(t - step)
		}
		prevSize = size
	}
	if tr.Plans > 0 {
		tr.LoadMean = sum / float64(tr.Plans)
	}
	for _, u := range updates {
		if t := at(u.recv); u.id == lcID && t >= step && t < end && u.cpus > before {
			tr.Sent, tr.Written = msOrNone(t-step), msOrNone(at(u.written)-step)
			break
		}
	}
	return tr
}

// stages sums the steps' traces up.
func stages(trs []StepTrace, bandHigh float64) ReactionStages {
	st := ReactionStages{BandHigh: bandHigh}
	var ab, ad, ds, sw, ws, lmG, lmN, lmeG, lmeN, run, wait []float64
	diff := func(dst *[]float64, a, b float64) {
		if a >= 0 && b >= 0 {
			*dst = append(*dst, b-a)
		}
	}
	for _, t := range trs {
		if t.Above < 0 {
			st.NeverAbove++
		}
		if t.Decided >= 0 && (t.Above < 0 || t.Above > t.Decided) {
			st.GrewNotAbove++
		}
		diff(&ab, 0, t.Above)
		diff(&ad, t.Above, t.Decided)
		diff(&ds, t.Decided, t.Sent)
		diff(&sw, t.Sent, t.Written)
		diff(&ws, t.Written, t.Seen)
		if t.LCRun >= 0 {
			run, wait = append(run, t.LCRun), append(wait, t.LCWait)
		}
		if t.Seen >= 0 {
			lmG, lmeG = append(lmG, t.LoadMax), append(lmeG, t.LoadMean)
		} else {
			lmN, lmeN = append(lmN, t.LoadMax), append(lmeN, t.LoadMean)
		}
	}
	p50max := func(v []float64) (float64, float64) { p50, _, m := quantiles(v); return p50, m }
	st.StepToAboveP50, st.StepToAboveMax = p50max(ab)
	st.AboveToDecidedP50, st.AboveToDecidedMax = p50max(ad)
	st.DecidedToSentP50, st.DecidedToSentMax = p50max(ds)
	st.SentToWrittenP50, st.SentToWrittenMax = p50max(sw)
	st.WrittenToSeenP50, st.WrittenToSeenMax = p50max(ws)
	st.LoadMaxGrownP50, _ = p50max(lmG)
	st.LoadMaxNotGrownP50, _ = p50max(lmN)
	st.LoadMeanGrownP50, _ = p50max(lmeG)
	st.LoadMeanNotGrown50, _ = p50max(lmeN)
	st.LCRunP50, _ = p50max(run)
	st.LCWaitP50, _ = p50max(wait)
	return st
}

type reactionSample struct {
	at, lat time.Duration
	ok      bool
}

// sizeAt is the cpuset size in force at t.
func sizeAt(events []cpusetEvent, t time.Duration) int {
	size := 0
	for _, ev := range events {
		if ev.at > t {
			break
		}
		size = ev.size
	}
	return size
}

// inBand returns the time from step to the end of the first of two
// consecutive windows (within [step, end)) whose p99 is within bandUs; an
// error counts as out of band.
func inBand(samples []reactionSample, step, end, window time.Duration, bandUs int64) (time.Duration, bool) {
	prevIn := false
	for w := step; w+window <= end; w += window {
		h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
		in := true
		for _, s := range samples {
			if s.at < w {
				continue
			}
			if s.at >= w+window {
				break
			}
			if !s.ok {
				in = false
			}
			_ = h.RecordValue(s.lat.Microseconds())
		}
		in = in && h.TotalCount() > 0 && h.ValueAtQuantile(99) <= bandUs
		if in && prevIn {
			return w - step, true // the end of the previous window
		}
		prevIn = in
	}
	return 0, false
}

// quantiles returns the nearest-rank p50, p99 and max of v (zeros when
// empty).
func quantiles(v []float64) (p50, p99, max float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	return rank(0.5), rank(0.99), s[len(s)-1]
}

func reactionMarkdown(rs []ReactionResult) string {
	var b strings.Builder
	b.WriteString("Reaction: LC load steps under Strata with batch beside it; from each step to the LC cgroup's grown cpuset, and to its p99 back in band. Phases: the low / high phases' lengths.\n\n")
	b.WriteString("| period | waiting rule | phases | load average start → end | steps timed | (already grown) | grown in low phases | cpuset p50 ms | p99 ms | max ms | not grown | goal (2 periods + 50 ms) | band ms | p99 in band p50 ms | p99 ms | max ms | never in band | updates refused |\n")
	b.WriteString("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s → %s | %d | %d | %d | %.0f | %.0f | %.0f | %d | %.0f | %.1f | %.0f | %.0f | %.0f | %d | %d |\n", r.Period, r.Waiting, r.Phases,
			firstField(r.LoadAvgStart), firstField(r.LoadAvgEnd),
			r.Steps, r.AlreadyGrown, r.GrewInLow, r.CPUSetP50, r.CPUSetP99, r.CPUSetMax, r.NoCPUSet, r.GoalMs, r.BandMs, r.InBandP50, r.InBandP99, r.InBandMax, r.NotInBand, r.UpdateFailures)
	}
	if len(rs) > 0 {
		fmt.Fprintf(&b, "\nLC capacity alone (closed loop): %.0f req/s; alone at the high load the LC service used %.2f CPUs (its cgroup's CPU time).\n", rs[0].CapacityRPS, rs[0].AloneCPUAtHigh)
	}
	b.WriteString("\nWhere a step's time went (median / max over the timed steps, ms; a stage is left out of a step that did not reach it): step → first plan observing the LC pool's load above its band → first plan growing the pool → the runtime's receipt of the LC update → its cgroup write → the cpuset seen grown. Load: the LC pool's usage over its CPUs as the plugin observed it in the high phase (median over steps of each step's highest and mean). LC ran / waited: the LC process from the step until its cpuset grew (or the high phase ended), from its threads' schedstat, median over steps — CPUs it ran on, and CPUs' worth of its threads waiting in a run queue.\n\n")
	b.WriteString("| period | waiting rule | phases | step → above band | → decided | → update received | → cgroup written | → seen | never above band | grew, not above band | load max / mean, grown steps | not grown steps | band high | LC ran / waited, CPUs |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		s := &r.Stages
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f / %.0f | %.0f / %.0f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %d | %d | %.2f / %.2f | %.2f / %.2f | %.2f | %.2f / %.2f |\n", r.Period, r.Waiting, r.Phases,
			s.StepToAboveP50, s.StepToAboveMax, s.AboveToDecidedP50, s.AboveToDecidedMax, s.DecidedToSentP50, s.DecidedToSentMax,
			s.SentToWrittenP50, s.SentToWrittenMax, s.WrittenToSeenP50, s.WrittenToSeenMax, s.NeverAbove, s.GrewNotAbove,
			s.LoadMaxGrownP50, s.LoadMeanGrownP50, s.LoadMaxNotGrownP50, s.LoadMeanNotGrown50, s.BandHigh, s.LCRunP50, s.LCWaitP50)
	}
	return b.String()
}
