package sim_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/isolation/sim"
)

func topology(tb testing.TB) *strcpuset.Topology {
	tb.Helper()
	topo, err := strcpuset.Discover(cpusettest.Root(tb, cpusettest.Intel2S20C2T))
	if err != nil {
		tb.Fatal(err)
	}
	return topo
}

func run(tb testing.TB, s sim.Scenario) *sim.Result {
	tb.Helper()
	r, err := sim.Run(s)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%s: %d periods in %s; utilisation %.3f, batch share %.3f, batch use of free CPUs %.3f, of all idle CPU %.3f",
		r.Scenario, r.Periods, r.Elapsed, r.NodeUtilisation, r.BatchShare, r.BatchUseOfFree, r.BatchUseOfIdle)
	for _, p := range r.Pools {
		tb.Logf("  pool %-16s in band %.4f, %d resizes, mean size %.1f, mean load %.3f, %d excursions, reaction mean %.1f max %d periods",
			p.Name, p.TimeInBand, p.Resizes, p.MeanSize, p.MeanLoad, p.Excursions, p.MeanReaction, p.MaxReaction)
	}
	return r
}

// Diurnal trace, 3 pools, 24 simulated hours: each online pool's load is
// inside its band ≥ 95 % of the time after warm-up; batch uses ≥ 80 % of
// the CPU the online pools leave to it.
func TestDiurnal(t *testing.T) {
	r := run(t, sim.DiurnalScenario(topology(t)))
	if r.Periods != 23*3600 {
		t.Errorf("%d periods after warm-up, want %d", r.Periods, 23*3600)
	}
	for _, p := range r.Pools[:2] {
		if p.TimeInBand < 0.95 {
			t.Errorf("pool %s inside its band %.2f%% of the time, want ≥ 95%%", p.Name, 100*p.TimeInBand)
		}
	}
	if r.BatchUseOfFree < 0.80 {
		t.Errorf("batch used %.2f%% of the CPUs left to it, want ≥ 80%%", 100*r.BatchUseOfFree)
	}
}

// Step spike: pool 0's demand triples in one period. Pool 0 is back inside
// its band within 2 periods; the CPUs come from batch, not pool 1.
func TestSpikePool0(t *testing.T) {
	s := sim.SpikeScenario(topology(t))
	s.Record = true
	r := run(t, s)
	i0 := int(sim.SpikeAt / s.Config.Period.Duration)
	band := s.Config.Pools[0].Band
	back := -1
	for i := i0 - 1; i <= i0+5; i++ {
		x := r.Samples[i].Pools[0]
		t.Logf("period %d: pool 0 ran on %d CPUs, demand %.2f, load %.2f → %d CPUs; online %d, batch %d",
			i-i0, x.RanOn, x.Demand, x.Load, x.Size, r.Samples[i].Pools[1].Size, r.Samples[i].Pools[2].Size)
		if back < 0 && x.Load >= band.Low && x.Load <= band.High {
			back = i - i0
		}
	}
	if r.Samples[i0].Pools[0].Load <= band.High {
		t.Fatalf("the spike did not push pool 0 out of its band (load %.2f)", r.Samples[i0].Pools[0].Load)
	}
	if back < 0 || back > 2 {
		t.Errorf("pool 0 back inside its band after %d periods, want ≤ 2", back)
	}
	before := r.Samples[i0-1]
	for i := i0; i <= i0+2; i++ {
		x := r.Samples[i]
		if x.Pools[1].Size < before.Pools[1].Size {
			t.Errorf("period %d: pool 1 lost CPUs (%d → %d) while batch had %d", i-i0, before.Pools[1].Size, x.Pools[1].Size, before.Pools[2].Size)
		}
	}
	if got, was := r.Samples[i0].Pools[2].Size, before.Pools[2].Size; got >= was {
		t.Errorf("batch %d → %d: the CPUs did not come from batch", was, got)
	}
}

// Pool 1 spikes: it grows from batch and never takes from pool 0.
func TestSpikePool1NeverTakesFromPool0(t *testing.T) {
	s := sim.SpikeScenario(topology(t))
	s.Workloads[0].CPU = sim.Constant(0.5)
	s.Workloads[1].CPU = sim.Step(sim.Constant(1.2), 3, sim.SpikeAt, 10*time.Minute)
	s.Record = true
	r := run(t, s)
	i0 := int(sim.SpikeAt / s.Config.Period.Duration)
	grew := false
	for i := i0; i < i0+120; i++ {
		prev, x := r.Samples[i-1], r.Samples[i]
		if x.Pools[0].Size < prev.Pools[0].Size {
			t.Fatalf("period %d: pool 0 lost CPUs (%d → %d) while pool 1 spiked", i-i0, prev.Pools[0].Size, x.Pools[0].Size)
		}
		grew = grew || x.Pools[1].Size > prev.Pools[1].Size
	}
	if !grew {
		t.Error("pool 1 never grew")
	}
}

// Steady load for 1000 periods after convergence: at most 1 resize.
func TestSteadyLoadDoesNotFlap(t *testing.T) {
	s := sim.SteadyScenario(topology(t))
	s.Record = true
	r := run(t, s)
	i0 := int(s.WarmUp / s.Config.Period.Duration)
	resizes := 0
	for _, x := range r.Samples[i0 : i0+1000] {
		for _, p := range x.Pools {
			if p.Size != p.RanOn {
				resizes++
				break
			}
		}
	}
	if resizes > 1 {
		t.Errorf("%d resizes in 1000 steady periods, want ≤ 1", resizes)
	}
}

// Memory pressure: actions escalate in the configured order, each with its
// reason; reclaim and eviction hit lower pools, never pool 0.
func TestMemoryPressureEscalates(t *testing.T) {
	s := sim.MemoryPressureScenario(topology(t))
	r := run(t, s)
	var order []isolation.ActionKind
	for _, a := range r.Actions {
		if a.Reason == "" {
			t.Errorf("action %+v has no reason", a)
		}
		if !slices.Contains(order, a.Kind) {
			order = append(order, a.Kind)
			t.Logf("first %s at %s: %s", a.Kind, a.T, a.Reason)
		}
		if (a.Kind == isolation.ActionReclaimPageCache || a.Kind == isolation.ActionEvict) && a.TargetPool == isolation.PoolLatencyCritical {
			t.Errorf("%s hit pool 0: %s", a.Kind, a.Reason)
		}
	}
	var want []isolation.ActionKind
	for _, l := range s.Config.Protection.Levels {
		want = append(want, l.Actions...)
	}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("actions appeared in the order %v, want the configured %v", order, want)
	}
	if len(r.Evicted) == 0 {
		t.Error("nothing was evicted")
	}
	for _, id := range r.Evicted {
		if id[:5] != "batch" {
			t.Errorf("evicted %s, want batch members first", id)
		}
	}
}

func TestRunIsDeterministic(t *testing.T) {
	topo := topology(t)
	s := sim.SpikeScenario(topo)
	s.Record = true
	a, b := run(t, s), run(t, s)
	a.Elapsed, b.Elapsed = 0, 0
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs of one scenario differ")
	}
}

// The diurnal day at 5× the workloads on the 448-CPU fixture (4 sockets,
// 8 NUMA nodes): the same acceptance holds.
func TestDiurnalBig448(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day of 400 containers")
	}
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Big448))
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, sim.Scale(sim.DiurnalScenario(topo), 5))
	for _, p := range r.Pools[:2] {
		if p.TimeInBand < 0.95 {
			t.Errorf("pool %s inside its band %.2f%% of the time, want ≥ 95%%", p.Name, 100*p.TimeInBand)
		}
	}
	if r.BatchUseOfFree < 0.80 {
		t.Errorf("batch used %.2f%% of the CPUs left to it, want ≥ 80%%", 100*r.BatchUseOfFree)
	}
}
