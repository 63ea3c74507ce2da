package sim_test

import (
	"reflect"
	"testing"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/isolation/sim"
)

// poolTrace is what the waiting tests read of pool 0 in every period.
type poolTrace struct {
	waiting string
	p99     time.Duration
}

// runTraced runs s recording samples and pool 0's waiting signal and
// run-queue delay per period.
func runTraced(t *testing.T, s sim.Scenario) (*sim.Result, []poolTrace) {
	t.Helper()
	var tr []poolTrace
	s.Record = true
	s.Observe = func(_ int, p *isolation.Plan) {
		tr = append(tr, poolTrace{p.Pools[0].Waiting, p.Pools[0].RunQueueP99})
	}
	return run(t, s), tr
}

// TestStarvedPoolGrowsOnWaiting is the reaction benchmark's loaded case:
// pool 0 on its one trough CPU, shared with outside work, cannot show a
// load above its band's top (it peaks at about 0.47 against 0.50) while
// its tasks queue for the CPU. With resize.waiting every step grows it to
// both CPUs within 2 periods; without, no step does.
func TestStarvedPoolGrowsOnWaiting(t *testing.T) {
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.VM2))
	if err != nil {
		t.Fatal(err)
	}
	steps := func(disabled bool) (timed, grown, already int, worst int, loadMax float64) {
		s := sim.StarvedScenario(topo)
		s.Config.Resize.Waiting.Disabled = disabled
		r, tr := runTraced(t, s)
		per := sim.StarvedPeriod
		worst = -1
		for n := range sim.StarvedSteps {
			at := int((sim.StarvedWarmUp + time.Duration(n)*(sim.StarvedLowFor+sim.StarvedHighFor) + sim.StarvedLowFor) / per)
			end := at + int(sim.StarvedHighFor/per)
			if r.Samples[at].Pools[0].RanOn >= 2 {
				already++
				continue
			}
			timed++
			for i := at; i < end; i++ {
				x := r.Samples[i].Pools[0]
				loadMax = max(loadMax, x.Load)
				if x.Size >= 2 {
					grown++
					worst = max(worst, i-at)
					if n == 0 {
						t.Logf("step 0 (waiting %v): period %d after the step, load %.3f on %d CPU, p99 %v → %d CPUs (%s)",
							!disabled, i-at, x.Load, x.RanOn, tr[i].p99, x.Size, tr[i].waiting)
					}
					break
				}
			}
		}
		return timed, grown, already, worst, loadMax
	}
	timed, grown, already, worst, loadMax := steps(false)
	t.Logf("with resize.waiting: %d steps timed (%d already grown), %d grew, the slowest %d periods after the step; load max %.3f", timed, already, grown, worst, loadMax)
	if timed < sim.StarvedSteps*3/4 || grown != timed || worst > 1 {
		t.Errorf("with resize.waiting %d of %d timed steps grew (slowest: %d periods after the step's); want every one within 2 periods, ≥ %d timed",
			grown, timed, worst, sim.StarvedSteps*3/4)
	}
	if loadMax >= 0.5 {
		t.Errorf("load reached %.3f: the scenario should keep the starved pool at or below its band's top 0.50", loadMax)
	}
	timed, grown, _, _, loadMax = steps(true)
	t.Logf("without: %d steps timed, %d grew; load max %.3f", timed, grown, loadMax)
	if grown != 0 || timed != sim.StarvedSteps {
		t.Errorf("without resize.waiting %d of %d timed steps grew; want none of %d: the load never rose above the band", grown, timed, sim.StarvedSteps)
	}
}

// TestWaitingAtBandTopDoesNotFlap: both online pools sit in the top
// quarter of their bands for 2 h 20 min with no outside work, so their
// members hardly wait (p99 well under 1 ms on 9 and 24 CPUs). The rule
// never fires: the run is the same with it and without it, with no resize
// at all after the warm-up.
func TestWaitingAtBandTopDoesNotFlap(t *testing.T) {
	on, trOn := runTraced(t, sim.BandTopScenario(topology(t)))
	s := sim.BandTopScenario(topology(t))
	s.Config.Resize.Waiting.Disabled = true
	off, _ := runTraced(t, s)
	on.Elapsed, off.Elapsed = 0, 0
	if !reflect.DeepEqual(on.Samples, off.Samples) || !reflect.DeepEqual(on.Pools, off.Pools) {
		t.Error("the band-top run differs with resize.waiting on and off: the rule fired without waiting")
	}
	i0 := int(s.WarmUp / s.Config.Period.Duration)
	nearTop, resizes := 0, 0
	var worst time.Duration
	for i, x := range on.Samples[i0:] {
		if x.Pools[0].Load >= 0.45 {
			nearTop++
		}
		for _, p := range x.Pools {
			if p.Size != p.RanOn {
				resizes++
			}
		}
		if trOn[i0+i].waiting != "" {
			t.Fatalf("period %d: pool 0 waiting %q", i0+i, trOn[i0+i].waiting)
		}
		worst = max(worst, trOn[i0+i].p99)
	}
	n := len(on.Samples) - i0
	t.Logf("%d periods: pool 0 in its band's top quarter in %d, p99 at most %v; %d resizes", n, nearTop, worst, resizes)
	if nearTop < n*9/10 {
		t.Errorf("pool 0 in its band's top quarter in %d of %d periods; the scenario should keep it there ≥ 90 %%", nearTop, n)
	}
	if resizes > 0 {
		t.Errorf("%d resizes at a steady load at the band's top, want none", resizes)
	}
}

// TestWaitingUnderOutsideWorkGrowsOnce: the band-top load with outside
// work rising to 0.45 runnable tasks per CPU (minutes 45 to 55). With
// resize.waiting each online pool grows once, from batch, when its members
// start to wait, and is never resized again in the two hours after (no
// flapping; pool 0 never shrinks); pool 0's p99 falls back under 1 ms.
// Without the rule no pool is resized, and pool 0's members wait over
// 1 ms (p99) in every period from the end of the rise.
func TestWaitingUnderOutsideWorkGrowsOnce(t *testing.T) {
	scenario := func(disabled bool) sim.Scenario {
		s := sim.BandTopScenario(topology(t))
		s.Name = "band-top-outside"
		s.Outside = sim.Ramp(0, 0.45, 45*time.Minute, 10*time.Minute)
		s.Config.Resize.Waiting.Disabled = disabled
		return s
	}
	s := scenario(false)
	r, tr := runTraced(t, s)
	i0 := int(s.WarmUp / s.Config.Period.Duration)
	risen := int(55 * time.Minute / s.Config.Period.Duration)
	resizes := make([]int, 3)
	for i, x := range r.Samples[i0:] {
		for k, p := range x.Pools {
			if p.Size == p.RanOn {
				continue
			}
			resizes[k]++
			t.Logf("period %d: %s %d → %d CPUs at load %.3f", i0+i, r.Pools[k].Name, p.RanOn, p.Size, p.Load)
			if k == 0 && p.Size < p.RanOn {
				t.Errorf("period %d: pool 0 shrank %d → %d", i0+i, p.RanOn, p.Size)
			}
		}
	}
	if resizes[0] != 1 || resizes[1] != 1 {
		t.Errorf("pool 0 resized %d times, online %d; want each once", resizes[0], resizes[1])
	}
	last := r.Samples[len(r.Samples)-1].Pools
	t.Logf("with resize.waiting: pool 0's p99 at the end %v on %d CPUs", tr[len(tr)-1].p99, last[0].Size)
	if p99 := tr[len(tr)-1].p99; p99 >= time.Millisecond {
		t.Errorf("pool 0's p99 %v at the end on %d CPUs, want under 1 ms after its growth", p99, last[0].Size)
	}
	off := scenario(true)
	r, tr = runTraced(t, off)
	waited := 0
	for i, x := range r.Samples[i0:] {
		for _, p := range x.Pools {
			if p.Size != p.RanOn {
				t.Fatalf("period %d: a pool was resized without resize.waiting", i0+i)
			}
		}
		if i0+i >= risen && tr[i0+i].p99 >= time.Millisecond {
			waited++
		}
	}
	t.Logf("without resize.waiting: pool 0 p99 ≥ 1 ms in %d of %d periods after the rise (p99 at the end %v)", waited, len(tr)-risen, tr[len(tr)-1].p99)
	if waited != len(tr)-risen {
		t.Errorf("without the rule pool 0 waited ≥ 1 ms in %d of %d periods after the rise, want all: the test would not show the rule's effect", waited, len(tr)-risen)
	}
}

// TestWaitingLeavesDocScenariosUnchanged: without outside work the
// scenarios of docs/simulation.md give the same results with
// resize.waiting on and off — their pools' members wait far under 1 ms —
// so the figures reported there stand.
func TestWaitingLeavesDocScenariosUnchanged(t *testing.T) {
	topo := topology(t)
	for _, mk := range []func(*strcpuset.Topology) sim.Scenario{sim.DiurnalScenario, sim.SpikeScenario, sim.SteadyScenario, sim.MemoryPressureScenario} {
		on := mk(topo)
		if testing.Short() && on.Duration > 4*time.Hour {
			continue
		}
		off := mk(topo)
		off.Config.Resize.Waiting.Disabled = true
		on.Record, off.Record = true, true
		a, b := run(t, on), run(t, off)
		a.Elapsed, b.Elapsed = 0, 0
		if !reflect.DeepEqual(a, b) {
			t.Errorf("scenario %s differs with resize.waiting on and off", on.Name)
		}
	}
}
