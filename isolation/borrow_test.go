package isolation_test

import (
	"testing"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

func cpusOf(st *isolation.State, id string) string {
	for _, c := range st.Containers() {
		if c.ID == id {
			return c.CPUs.String()
		}
	}
	return "<unknown>"
}

// On a 2-CPU node a latency-critical member pins one CPU and batch keeps
// the other: an online member has no CPU of its own to get. It must not get
// an empty cpuset (which the runtime reads as "every CPU", the exclusive one
// included): it borrows batch's CPU, where batch's idle scheduling yields
// to it.
func TestPoolWithoutCPUsBorrowsFromLowerPool(t *testing.T) {
	cfg := isolation.DefaultConfig()
	st := newState(t, cpusettest.VM2, cfg)
	lc := admit(t, st, "lc", isolation.PoolLatencyCritical, 1000)
	if !lc.Exclusive || lc.CPUs.Size() != 1 {
		t.Fatalf("latency-critical admission %+v, want 1 exclusive CPU", lc)
	}
	b := admit(t, st, "b", isolation.PoolBatch, 0)
	web := admit(t, st, "web", isolation.PoolOnline, 500)
	if web.CPUs.Size() == 0 {
		t.Fatal("online member admitted with an empty cpuset")
	}
	if web.CPUs.Intersection(lc.CPUs).Size() != 0 {
		t.Errorf("online member runs on %s, which includes the exclusive CPU %s", web.CPUs, lc.CPUs)
	}
	if !web.CPUs.Equals(b.CPUs) {
		t.Errorf("online member on %s, want batch's CPUs %s (borrowed from the nearest lower pool)", web.CPUs, b.CPUs)
	}
	if n := poolInfo(st, isolation.PoolOnline).Shared.Size(); n != 0 {
		t.Errorf("online pool holds %d CPUs of its own, want 0 (it borrows)", n)
	}
}

// With batch's minCPUs at 0 a busy pool 0 on a 2-CPU node may take batch's
// last CPU: batch members then run, idle-scheduled, on pool 0's CPUs, and
// get a CPU of their own back when pool 0 calms down.
func TestBatchLendsItsLastCPUWhenAllowed(t *testing.T) {
	cfg := isolation.DefaultConfig()
	cfg.Pools[2].MinCPUs = 0
	cfg.Resize.ShrinkInterval.Duration = 0
	cfg.Predictor.Disabled = true
	n := &node{st: newState(t, cpusettest.VM2, cfg), now: noon,
		obs: isolation.Observations{Containers: map[string]isolation.ContainerUsage{}}}
	// Fractional request: shared; 2.5 CPUs let pool 0 hold 2 (RCF ≤ 1).
	admit(t, n.st, "lc", isolation.PoolLatencyCritical, 2500)
	admit(t, n.st, "b", isolation.PoolBatch, 0)
	n.use(isolation.PoolBatch, 1)
	for range 3 {
		n.step(t)
	}
	if a, b := n.size(isolation.PoolLatencyCritical), n.size(isolation.PoolBatch); a != 1 || b != 1 {
		t.Fatalf("idle: pool 0 %d CPUs, batch %d; want 1 and 1", a, b)
	}
	n.use(isolation.PoolLatencyCritical, 1)
	periods := 0
	for n.size(isolation.PoolLatencyCritical) < 2 {
		if periods++; periods > 3 {
			t.Fatalf("busy pool 0 did not take batch's last CPU within 3 periods (pool 0 %d, batch %d)",
				n.size(isolation.PoolLatencyCritical), n.size(isolation.PoolBatch))
		}
		n.step(t)
	}
	lcCPUs := poolInfo(n.st, isolation.PoolLatencyCritical).Shared.String()
	if got := cpusOf(n.st, "b"); got != lcCPUs {
		t.Errorf("batch member runs on %q after batch lent its last CPU, want pool 0's %q", got, lcCPUs)
	}
	n.use(isolation.PoolLatencyCritical, 0)
	for periods = 0; n.size(isolation.PoolBatch) == 0; n.step(t) {
		if periods++; periods > 5 {
			t.Fatal("batch did not get a CPU back within 5 periods after pool 0 went idle")
		}
	}
	if got, want := cpusOf(n.st, "b"), poolInfo(n.st, isolation.PoolBatch).Shared.String(); got != want || got == lcCPUs {
		t.Errorf("batch member runs on %q, want batch's own %q", got, want)
	}
}
