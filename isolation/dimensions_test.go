package isolation

import (
	"errors"
	"testing"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

// fakeDimension stands in for a pool-level dimension: it decides a
// section per pool from that pool's level and measured pressure, and
// counts its commits as its memory.
type fakeDimension struct {
	seen    [][]string // pool names per decide call
	levels  []int      // pool 0's level as decide saw it
	commits int
}

func (f *fakeDimension) decide(p *Plan, obs *Observations, st *State) {
	var names []string
	for k := range p.Pools {
		if st.poolConfig(k).Name != p.Pools[k].Name {
			panic("poolConfig(k) is not p.Pools[k]")
		}
		names = append(names, p.Pools[k].Name)
	}
	f.seen = append(f.seen, names)
	f.levels = append(f.levels, p.Pools[0].Level)
}

func (f *fakeDimension) commit(*Plan) { f.commits++ }

func TestDimensionDecidesLastAndCommitsWithThePlan(t *testing.T) {
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Protection.Levels = []ProtectionLevel{{Name: "stalled", When: Thresholds{CPUSome: 20}, Actions: []ActionKind{ActionRelease}}}
	st, err := NewState(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeDimension{}
	st.dims = append(st.dims, fake)

	// Pool 0's own pressure raises its level; the dimension runs after
	// levels and sees it.
	obs := Observations{Containers: map[string]ContainerUsage{}, Pools: map[string]PoolObservation{
		PoolLatencyCritical: {Pressure: PoolPressure{CPU: PSI{Some: 50}}, PressureMeasured: true},
	}}
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	plan := Decide(obs, st, now)
	if len(fake.seen) != 1 || len(fake.seen[0]) != len(cfg.Pools) || fake.levels[0] != 0 {
		t.Fatalf("decide saw pools %v with pool 0 at level %v; want every pool, level 0 (stalled)", fake.seen, fake.levels)
	}
	if fake.commits != 0 {
		t.Fatal("Decide committed the dimension's memory: it must be pure")
	}
	if _, err := st.Admit(ContainerRequest{ID: "late", Namespace: "ns", CPUQuota: -1, MemoryLimit: -1}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(&plan); !errors.Is(err, ErrStalePlan) || fake.commits != 0 {
		t.Fatalf("stale plan: Commit = %v, dimension commits %d; want ErrStalePlan and none", err, fake.commits)
	}
	plan = Decide(obs, st, now)
	if err := st.Commit(&plan); err != nil || fake.commits != 1 {
		t.Fatalf("Commit = %v, dimension commits %d; want nil and 1", err, fake.commits)
	}

	// Unmeasured pool pressure falls back to the node's.
	obs.Pools[PoolLatencyCritical] = PoolObservation{Pressure: PoolPressure{CPU: PSI{Some: 50}}}
	plan = Decide(obs, st, now.Add(time.Hour)) // past the cooldown
	if plan.Pools[0].Level != -1 {
		t.Errorf("pool 0 level %d from pressure not marked measured; want -1 (node PSI is 0)", plan.Pools[0].Level)
	}
}
