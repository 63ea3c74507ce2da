package isolation_test

import (
	"math"
	"testing"

	"github.com/strata-nri/strata/isolation"
)

// psiConfig has one level, raised by memory PSI full ≥ 10 and CPU PSI
// some ≥ 20, and nothing else.
func psiConfig() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0"
	cfg.Protection.Levels = []isolation.ProtectionLevel{{Name: "stalled",
		When:    isolation.Thresholds{MemoryFull: 10, CPUSome: 20},
		Actions: []isolation.ActionKind{isolation.ActionRelease}}}
	return cfg
}

// measure gives every member of pool the same own PSI.
func (n *node) measure(pool string, psi isolation.PoolPressure) {
	for _, c := range n.st.Containers() {
		if c.Pool == pool {
			u := n.obs.Containers[c.ID]
			u.Pressure, u.PressureMeasured = psi, true
			n.obs.Containers[c.ID] = u
		}
	}
}

func poolPlan(t *testing.T, p *isolation.Plan, name string) *isolation.PoolPlan {
	t.Helper()
	for k := range p.Pools {
		if p.Pools[k].Name == name {
			return &p.Pools[k]
		}
	}
	t.Fatalf("no pool %s in the plan", name)
	return nil
}

// Protection reads a pool's own pressure — the worst of its members' PSI —
// and not the node's: a stalled pool enters its level on a quiet node, and
// a quiet pool stays out of it on a stalled node. A pool none of whose
// members has PSI of its own falls back to the node's.
func TestProtectionReadsThePoolsOwnPSI(t *testing.T) {
	stalled := isolation.PoolPressure{Memory: isolation.PSI{Some: 60, Full: 45}}
	t.Run("stalled pool, quiet node", func(t *testing.T) {
		n := newNode(t, psiConfig())
		n.measure(isolation.PoolLatencyCritical, isolation.PoolPressure{})
		n.obs.Containers[id("lc", 2)] = isolation.ContainerUsage{Pressure: stalled, PressureMeasured: true}
		n.measure(isolation.PoolOnline, isolation.PoolPressure{})
		p := n.step(t)
		lc := poolPlan(t, &p, isolation.PoolLatencyCritical)
		if lc.Level != 0 || lc.PressureFrom != isolation.PressureFromMembers || lc.PressureMembers != 4 || lc.Pressure.Memory.Full != 45 {
			t.Errorf("latency-critical: level %d, pressure %+v from %s (%d members); want level 0 from the worst of 4 members, memory full 45",
				lc.Level, lc.Pressure, lc.PressureFrom, lc.PressureMembers)
		}
		if on := poolPlan(t, &p, isolation.PoolOnline); on.Level != -1 || on.PressureFrom != isolation.PressureFromMembers {
			t.Errorf("online: level %d from %s, want no level: its members are not stalled", on.Level, on.PressureFrom)
		}
	})
	t.Run("quiet pools, stalled node", func(t *testing.T) {
		n := newNode(t, psiConfig())
		n.obs.Node.Memory = stalled.Memory
		n.measure(isolation.PoolLatencyCritical, isolation.PoolPressure{})
		n.measure(isolation.PoolOnline, isolation.PoolPressure{})
		p := n.step(t)
		for _, name := range []string{isolation.PoolLatencyCritical, isolation.PoolOnline} {
			if pp := poolPlan(t, &p, name); pp.Level != -1 || pp.Pressure.Memory.Full != 0 {
				t.Errorf("%s: level %d on pressure %+v; want none: the node's memory full 45 is not the pool's", name, pp.Level, pp.Pressure)
			}
		}
		// Batch's members have no PSI of their own: the node's stands in.
		if b := poolPlan(t, &p, isolation.PoolBatch); b.Level != 0 || b.PressureFrom != isolation.PressureFromNode || b.PressureMembers != 0 {
			t.Errorf("batch: level %d from %s (%d members), want level 0 from the node", b.Level, b.PressureFrom, b.PressureMembers)
		}
	})
	t.Run("pool measured as a whole wins", func(t *testing.T) {
		n := newNode(t, psiConfig())
		n.measure(isolation.PoolLatencyCritical, stalled)
		n.obs.Pools = map[string]isolation.PoolObservation{isolation.PoolLatencyCritical: {PressureMeasured: true}}
		p := n.step(t)
		if lc := poolPlan(t, &p, isolation.PoolLatencyCritical); lc.Level != -1 || lc.PressureFrom != isolation.PressureFromObservation {
			t.Errorf("latency-critical: level %d from %s, want none from the pool's observation", lc.Level, lc.PressureFrom)
		}
	})
}

// A member throttled by its own quota stalls on CPU without any neighbour
// to blame: its CPU PSI does not count for its pool, its memory PSI does.
// Bad figures (NaN, negative, above 100) are bounded.
func TestMemberPSIAggregation(t *testing.T) {
	n := newNode(t, psiConfig())
	for i, u := range []isolation.ContainerUsage{
		{Throttled: 0.5, Pressure: isolation.PoolPressure{CPU: isolation.PSI{Some: 90}, Memory: isolation.PSI{Full: 3}}},
		{Pressure: isolation.PoolPressure{CPU: isolation.PSI{Some: 15}, Memory: isolation.PSI{Some: math.NaN()}}},
		{Pressure: isolation.PoolPressure{CPU: isolation.PSI{Some: -4}, Memory: isolation.PSI{Some: 250}}},
		{}, // not measured
	} {
		u.PressureMeasured = u != (isolation.ContainerUsage{})
		n.obs.Containers[id("lc", i)] = u
	}
	p := n.step(t)
	lc := poolPlan(t, &p, isolation.PoolLatencyCritical)
	want := isolation.PoolPressure{CPU: isolation.PSI{Some: 15}, Memory: isolation.PSI{Some: 100, Full: 3}}
	if lc.Pressure != want || lc.PressureMembers != 3 || lc.Level != -1 {
		t.Errorf("pool pressure %+v from %d members, level %d; want %+v from 3, no level (CPU 15 < 20: the throttled member's 90 is its quota)",
			lc.Pressure, lc.PressureMembers, lc.Level, want)
	}
}
