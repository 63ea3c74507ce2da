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
type ReactionOptions struct {
	Periods       []time.Duration // Strata loop periods to compare
	Steps         int             // load steps per period
	Low, High     float64         // load fractions of capacity
	LowFor        time.Duration   // time at Low before each step
	HighFor       time.Duration   // time at High after each step
	Shrink        time.Duration   // resize.shrinkInterval, so the pool shrinks back between steps
	Window        time.Duration   // the rolling window the p99 is taken over
	BandFactor    float64         // the band: BandFactor × LC-alone p99 at High
	Work          int             // LC per-request work
	CapacityRPS   float64         // measured when 0
	CapacityFor   time.Duration   // how long capacity is measured
	AloneFor      time.Duration   // how long LC alone at High is measured for the band
	SettleTimeout time.Duration   // longest wait for the pool to shrink before the first step
}

// DefaultReactionOptions are the reaction benchmark's defaults.
func DefaultReactionOptions() ReactionOptions {
	return ReactionOptions{
		Periods: []time.Duration{time.Second, 100 * time.Millisecond},
		Steps:   20, Low: 0.2, High: 0.8,
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

// ReactionResult is one loop period's reaction figures.
type ReactionResult struct {
	Period string `json:"period"`
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
	// Goal is the reaction goal for the cpuset: 2 periods + 50 ms.
	GoalMs float64 `json:"cpuset_goal_ms"`
	// UpdateFailures counts updates the runtime stand-in refused.
	UpdateFailures int      `json:"runtime_update_failures,omitempty"`
	UpdateErrors   []string `json:"runtime_update_errors,omitempty"`
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
	var bandUs int64
	err = locked(func() error {
		return e.with(func() error {
			lc, addr, err := e.startLC(o.Work)
			if err != nil {
				return err
			}
			defer lc.kill()
			r := openLoop(ctx, loadSpec{url: "http://" + addr + "/", rate: func(time.Duration) float64 { return o.High * o.CapacityRPS },
				warmup: 500 * time.Millisecond, window: o.AloneFor}, rand.New(rand.NewPCG(3, 4)))
			bandUs = int64(o.BandFactor * float64(r.Hist.ValueAtQuantile(99)))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reaction band: %w", err)
	}
	var out []ReactionResult
	for _, p := range o.Periods {
		var r ReactionResult
		err := locked(func() error {
			return e.with(func() error {
				var err error
				r, err = reactionAt(ctx, e, o, p, bandUs)
				return err
			})
		})
		if err != nil {
			return nil, fmt.Errorf("reaction at %s: %w", p, err)
		}
		progress("reaction at %s: %d steps timed, cpuset p50 %.0f ms, p99 in band p50 %.0f ms", p, r.Steps, r.CPUSetP50, r.InBandP50)
		out = append(out, r)
	}
	return out, nil
}

func reactionAt(ctx context.Context, e *env, o ReactionOptions, period time.Duration, bandUs int64) (res ReactionResult, err error) {
	res = ReactionResult{Period: period.String(), BandMs: float64(bandUs) / 1000, GoalMs: float64(2*period+50*time.Millisecond) / float64(time.Millisecond)}
	st, err := startStrata(ctx, e.strataConfig(period, o.Shrink))
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := st.stop(ctx); serr != nil && err == nil {
			err = serr
		}
	}()
	if err := st.createPair(ctx, e.lc, e.batch, e.cpus.Size()); err != nil {
		return res, err
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
		return res, err
	}
	if cpu, err = startAntagonist(e.batch, "cpu"); err != nil {
		return res, err
	}
	if mem, err = startAntagonist(e.batch, "mem"); err != nil {
		return res, err
	}
	if err := st.startAll(ctx); err != nil {
		return res, err
	}

	cycle := o.LowFor + o.HighFor
	window := time.Duration(o.Steps) * cycle
	// The warm-up at Low lets the pool shrink from its admission size.
	warmup := o.Shrink + 2*period + o.LowFor
	var (
		mu      sync.Mutex
		samples []reactionSample
		events  []cpusetEvent
		origin  time.Time
	)
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	begin := func(start time.Time) {
		mu.Lock()
		origin = start
		mu.Unlock()
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
	rate := func(t time.Duration) float64 {
		if t >= 0 && t%cycle >= o.LowFor {
			return o.High * o.CapacityRPS
		}
		return o.Low * o.CapacityRPS
	}
	openLoop(ctx, loadSpec{url: "http://" + addr + "/", rate: rate, warmup: warmup, window: window, begin: begin,
		sample: func(at, lat time.Duration, ok bool) {
			mu.Lock()
			samples = append(samples, reactionSample{at, lat, ok})
			mu.Unlock()
		}}, rand.New(rand.NewPCG(5, 6)))
	close(stopPoll)
	<-polled
	if _, err := antagonistRate(cpu, antagonistMark{}); err != nil {
		return res, fmt.Errorf("cpu burner: %w", err)
	}
	if _, err := antagonistRate(mem, antagonistMark{}); err != nil {
		return res, fmt.Errorf("memory thrasher: %w", err)
	}
	if _, err := lc.stop(); err != nil {
		return res, fmt.Errorf("lc service: %w", err)
	}
	res.UpdateFailures, res.UpdateErrors = st.rt.updateErrors()
	slices.SortFunc(samples, func(a, b reactionSample) int { return int(a.at - b.at) })

	var cpusetMs, bandMs []float64
	for k := 0; k < o.Steps; k++ {
		step := time.Duration(k)*cycle + o.LowFor
		end := step + o.HighFor
		before := sizeAt(events, step)
		if before >= e.cpus.Size() {
			res.AlreadyGrown++
			continue
		}
		res.Steps++
		grown := time.Duration(-1)
		for _, ev := range events {
			if ev.at >= step && ev.at < end && ev.size > before {
				grown = ev.at - step
				break
			}
		}
		if grown < 0 {
			res.NoCPUSet++
		} else {
			cpusetMs = append(cpusetMs, float64(grown)/float64(time.Millisecond))
		}
		if t, ok := inBand(samples, step, end, o.Window, bandUs); ok {
			bandMs = append(bandMs, float64(t)/float64(time.Millisecond))
		} else {
			res.NotInBand++
		}
	}
	res.CPUSetP50, res.CPUSetP99, res.CPUSetMax = quantiles(cpusetMs)
	res.InBandP50, res.InBandP99, res.InBandMax = quantiles(bandMs)
	return res, nil
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
	b.WriteString("Reaction: LC load steps under Strata with batch beside it; from each step to the LC cgroup's grown cpuset, and to its p99 back in band.\n\n")
	b.WriteString("| period | steps timed | (already grown) | cpuset p50 ms | p99 ms | max ms | not grown | goal (2 periods + 50 ms) | band ms | p99 in band p50 ms | p99 ms | max ms | never in band | updates refused |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %.0f | %.0f | %d | %.0f | %.1f | %.0f | %.0f | %.0f | %d | %d |\n", r.Period, r.Steps, r.AlreadyGrown,
			r.CPUSetP50, r.CPUSetP99, r.CPUSetMax, r.NoCPUSet, r.GoalMs, r.BandMs, r.InBandP50, r.InBandP99, r.InBandMax, r.NotInBand, r.UpdateFailures)
	}
	return b.String()
}
