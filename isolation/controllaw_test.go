package isolation_test

import (
	"errors"
	"strings"
	"testing"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// The control law's safety rules, one test each. Every test here was run
// against the rule removed and failed (see the commit message).

// RCF lower bound: an idle online pool keeps RCF.min × its requests.
func TestRCFLowerBoundHoldsIdlePool(t *testing.T) {
	n := customNode(t, fastConfig()) // pool 0: 10 × 5.5 CPUs requested, rcf.min 0.2
	n.use(isolation.PoolLatencyCritical, 0)
	n.use(isolation.PoolOnline, 10)
	for range 5 {
		n.step(t)
	}
	if got, want := n.size(isolation.PoolLatencyCritical), 11; got != want {
		t.Errorf("idle pool 0 has %d CPUs, want ⌈0.2 × 55⌉ = %d", got, want)
	}
	p := n.step(t)
	if p.Pools[0].Target != 11 {
		t.Errorf("target %d, want 11", p.Pools[0].Target)
	}
}

// RCF upper bound: a busy pool grows no further than RCF.max × its
// requests, however far above its band it is.
func TestRCFUpperBoundCapsBusyPool(t *testing.T) {
	cfg := fastConfig()
	cfg.Pools[1].RCF.Max = 0.5 // pool 1: 8 × 6 CPUs requested → at most 24
	n := customNode(t, cfg)
	n.use(isolation.PoolLatencyCritical, 5)
	n.use(isolation.PoolOnline, 30) // would want ⌈30/0.525⌉ = 58
	var reasons []string
	for range 5 {
		reasons = append(reasons, n.step(t).Pools[1].Reason)
	}
	if got := n.size(isolation.PoolOnline); got != 24 {
		t.Errorf("busy pool 1 has %d CPUs, want rcf.max 0.5 × 48 = 24", got)
	}
	if !strings.Contains(strings.Join(reasons, "\n"), "capped by rcf.max") {
		t.Errorf("reasons %q should name the cap", reasons)
	}
}

// Admission grows a pool from the lowest pool first: pool 1 gives nothing
// while batch has CPUs above its floor.
func TestAdmissionGrowsFromLowestPoolFirst(t *testing.T) {
	n := newNode(t, nil)
	online, batch := n.size(isolation.PoolOnline), n.size(isolation.PoolBatch)
	a := admit(t, n.st, "lc-new", isolation.PoolLatencyCritical, 2500) // shared: grows pool 0 by 2.5 × RCF
	if a.Exclusive {
		t.Fatal("a fractional request was pinned")
	}
	if got := n.size(isolation.PoolOnline); got != online {
		t.Errorf("pool 1 %d → %d CPUs: admission took from it while batch had %d", online, got, batch)
	}
	if got := n.size(isolation.PoolBatch); got >= batch {
		t.Errorf("batch %d → %d CPUs, want it to give", batch, got)
	}
	checkPartition(t, n.st, 79)
}

// Exclusive CPUs are carved out of the lowest pool first, not out of the
// pinning pool's own shared CPUs or pool 1.
func TestExclusiveCPUsFromLowestPoolFirst(t *testing.T) {
	n := newNode(t, nil)
	lc, online := poolInfo(n.st, isolation.PoolLatencyCritical).Shared, n.size(isolation.PoolOnline)
	batch := poolInfo(n.st, isolation.PoolBatch).Shared
	a := admit(t, n.st, "pinned", isolation.PoolLatencyCritical, 3000)
	if !a.Exclusive || a.CPUs.Size() != 3 {
		t.Fatalf("admission %+v, want 3 exclusive CPUs", a)
	}
	if !a.CPUs.IsSubsetOf(batch) {
		t.Errorf("exclusive CPUs %s not taken from batch's %s (pool 0 shared %s)", a.CPUs, batch, lc)
	}
	if got := n.size(isolation.PoolOnline); got != online {
		t.Errorf("pool 1 %d → %d CPUs", online, got)
	}
	checkPartition(t, n.st, 79)
}

// minCPUs is bounded by the machine at start: a floor larger than the
// CPUs the pools share is refused with both numbers.
func TestMinCPUsBoundedByMachine(t *testing.T) {
	cfg := isolation.DefaultConfig()
	cfg.Pools[2].MinCPUs = 3 // VM2 has 2 CPUs
	_, err := isolation.NewState(discover(t, cpusettest.VM2), cfg)
	var ce *isolation.ConfigError
	if !errors.As(err, &ce) || ce.Field != "pools[2].minCPUs" || !strings.Contains(err.Error(), "more than the 2 CPUs") {
		t.Fatalf("NewState = %v, want pools[2].minCPUs refused against the machine's 2 CPUs", err)
	}
	cfg.Pools[2].MinCPUs = 2
	if _, err := isolation.NewState(discover(t, cpusettest.VM2), cfg); err != nil {
		t.Errorf("minCPUs equal to the machine refused: %v", err)
	}
}

func discover(tb testing.TB, shape cpusettest.Shape) *strcpuset.Topology {
	tb.Helper()
	topo, err := strcpuset.Discover(cpusettest.Root(tb, shape))
	if err != nil {
		tb.Fatal(err)
	}
	return topo
}
