package isolation_test

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/utils/cpuset"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

func newState(tb testing.TB, shape cpusettest.Shape, cfg *isolation.Config) *isolation.State {
	tb.Helper()
	if cfg == nil {
		cfg = isolation.DefaultConfig()
		cfg.ReservedCPUs = "0"
	}
	// The tests' pods live in namespace "ns", which the operator trusts
	// with every pool: annotations may then move them anywhere.
	for i := range cfg.Pools {
		if cfg.Pools[i].Allow.Empty() {
			cfg.Pools[i].Allow.Namespaces = []string{"ns"}
		}
	}
	return newStateWith(tb, shape, cfg)
}

// newStateWith builds a state for cfg as it is.
func newStateWith(tb testing.TB, shape cpusettest.Shape, cfg *isolation.Config) *isolation.State {
	tb.Helper()
	topo, err := strcpuset.Discover(cpusettest.Root(tb, shape))
	if err != nil {
		tb.Fatal(err)
	}
	st, err := isolation.NewState(topo, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func req(id, pool string, milli int64) isolation.ContainerRequest {
	return isolation.ContainerRequest{ID: id, PodName: "pod-" + id, Namespace: "ns", CPURequestMilli: milli,
		Annotations: map[string]string{"strata.io/pool": pool}}
}

func admit(tb testing.TB, st *isolation.State, id, pool string, milli int64) isolation.Admission {
	tb.Helper()
	a, err := st.Admit(req(id, pool, milli))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func poolInfo(st *isolation.State, name string) isolation.PoolInfo {
	for _, p := range st.Pools() {
		if p.Name == name {
			return p
		}
	}
	return isolation.PoolInfo{}
}

// checkPartition: pools' CPUs are disjoint, never reserved, and together
// cover every usable CPU.
func checkPartition(tb testing.TB, st *isolation.State, usable int) {
	tb.Helper()
	var all cpuset.CPUSet
	n := 0
	for _, p := range st.Pools() {
		if p.CPUs.Intersection(st.Reserved()).Size() > 0 {
			tb.Errorf("pool %s holds reserved CPUs %s", p.Name, p.CPUs.Intersection(st.Reserved()))
		}
		if p.CPUs.Intersection(all).Size() > 0 {
			tb.Errorf("pool %s overlaps another pool on %s", p.Name, p.CPUs.Intersection(all))
		}
		all = all.Union(p.CPUs)
		n += p.CPUs.Size()
	}
	if n != usable {
		tb.Errorf("pools hold %d CPUs, want all %d usable", n, usable)
	}
}

func TestAdmitExclusiveTakesFromBatch(t *testing.T) {
	st := newState(t, cpusettest.Intel2S20C2T, nil)
	checkPartition(t, st, 79)
	admit(t, st, "b1", isolation.PoolBatch, 0)
	batchBefore := poolInfo(st, isolation.PoolBatch).Shared

	a := admit(t, st, "lc1", isolation.PoolLatencyCritical, 4000)
	if !a.Exclusive || a.CPUs.Size() != 4 {
		t.Fatalf("admission %+v, want 4 exclusive CPUs", a)
	}
	if !a.CPUs.IsSubsetOf(batchBefore) {
		t.Errorf("exclusive CPUs %s did not come from batch %s", a.CPUs, batchBefore)
	}
	if len(a.Updates) != 1 || a.Updates[0].ID != "b1" || a.Updates[0].CPUs.Intersection(a.CPUs).Size() > 0 {
		t.Errorf("updates %+v, want b1 moved off %s", a.Updates, a.CPUs)
	}
	lc := poolInfo(st, isolation.PoolLatencyCritical)
	if !lc.Exclusive.Equals(a.CPUs) || lc.Shared.Size() != 0 {
		t.Errorf("pool 0: exclusive %s shared %s, want exclusive %s and no shared CPUs", lc.Exclusive, lc.Shared, a.CPUs)
	}
	checkPartition(t, st, 79)

	// A shared member (request not whole) grows the pool's shared CPUs by
	// RCF max × request = 1 × 2.5 → 3 CPUs.
	s := admit(t, st, "lc2", isolation.PoolLatencyCritical, 2500)
	if s.Exclusive || s.CPUs.Size() != 3 {
		t.Errorf("shared admission %+v, want 3 shared CPUs", s)
	}
	checkPartition(t, st, 79)

	// Remove gives exclusive CPUs back to batch and tells its members.
	ch := st.Remove("lc1")
	if len(ch) != 1 || ch[0].ID != "b1" || !a.CPUs.IsSubsetOf(ch[0].CPUs) {
		t.Errorf("remove changes %+v, want b1 to get %s back", ch, a.CPUs)
	}
	checkPartition(t, st, 79)
}

func TestAdmitNoExclusiveCPUsLeft(t *testing.T) {
	st := newState(t, cpusettest.Hybrid, nil) // 24 CPUs, 23 usable
	admit(t, st, "b1", isolation.PoolBatch, 0)
	before := st.Pools()
	r := req("big", isolation.PoolLatencyCritical, 23000) // batch must keep 1 CPU
	r.PodName = "greedy"
	_, err := st.Admit(r)
	if !errors.Is(err, isolation.ErrNoExclusiveCPUs) {
		t.Fatalf("got %v, want ErrNoExclusiveCPUs", err)
	}
	for _, want := range []string{"big", "ns/greedy", "latency-critical", "23 CPUs wanted, 22"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should mention %q", err, want)
		}
	}
	after := st.Pools()
	for i := range before {
		if !before[i].CPUs.Equals(after[i].CPUs) {
			t.Errorf("refusal changed pool %s: %s → %s", before[i].Name, before[i].CPUs, after[i].CPUs)
		}
	}
	if len(st.Containers()) != 1 {
		t.Errorf("refused container was recorded")
	}
	// 22 fit.
	if a := admit(t, st, "fits", isolation.PoolLatencyCritical, 22000); a.CPUs.Size() != 22 {
		t.Errorf("got %s", a.CPUs)
	}
}

func TestAdmitRefusesOutsideAllowList(t *testing.T) {
	cfg := lcOnlyForShop()
	cfg.ReservedCPUs = "0"
	st := newState(t, cpusettest.Intel2S20C2T, cfg)
	r := req("x", isolation.PoolLatencyCritical, 4000)
	r.Namespace = "dev"
	if _, err := st.Admit(r); !errors.Is(err, isolation.ErrNotAllowed) {
		t.Fatalf("got %v, want ErrNotAllowed", err)
	}
	if len(st.Containers()) != 0 || poolInfo(st, isolation.PoolLatencyCritical).CPUs.Size() != 0 {
		t.Errorf("refused pod left state behind")
	}
}

// After a restart the plugin restores containers into their recorded pools
// with their exclusive CPUs; classification is not redone.
func TestRestore(t *testing.T) {
	cfg := lcOnlyForShop()
	cfg.ReservedCPUs = "0"
	st := newState(t, cpusettest.Intel2S20C2T, cfg)
	excl := cpuset.New(10, 11, 50, 51)
	r := req("lc1", isolation.PoolLatencyCritical, 4000)
	r.Namespace, r.Labels = "shop", map[string]string{"tier": "lc"}
	a, err := st.Restore(r, isolation.PoolLatencyCritical, excl)
	if err != nil {
		t.Fatal(err)
	}
	if !a.CPUs.Equals(excl) || !a.Exclusive || a.Pool != isolation.PoolLatencyCritical {
		t.Errorf("restored %+v, want exclusive %s", a, excl)
	}
	// The recorded pool wins over the annotation: restored as online even
	// though the annotation says latency-critical.
	r2 := req("web1", isolation.PoolLatencyCritical, 1500)
	if a, err := st.Restore(r2, isolation.PoolOnline, cpuset.New()); err != nil || a.Pool != isolation.PoolOnline {
		t.Errorf("restore web1: %+v %v", a, err)
	}
	if _, err := st.Restore(req("y", "", 1000), "gold", cpuset.New()); !errors.Is(err, isolation.ErrUnknownPool) {
		t.Errorf("unknown recorded pool: %v", err)
	}
	shop := func(id string, milli int64) isolation.ContainerRequest {
		r := req(id, "", milli)
		r.Namespace, r.Labels = "shop", map[string]string{"tier": "lc"}
		return r
	}
	if _, err := st.Restore(shop("z", 2000), isolation.PoolLatencyCritical, cpuset.New(10, 12)); !errors.Is(err, isolation.ErrNoExclusiveCPUs) {
		t.Errorf("CPUs already taken: %v", err)
	}
	if _, err := st.Restore(shop("r", 1000), isolation.PoolLatencyCritical, cpuset.New(0)); !errors.Is(err, isolation.ErrNoExclusiveCPUs) {
		t.Errorf("reserved CPU restored: %v", err)
	}
	checkPartition(t, st, 79)
}

// Admission settings come from the request and the pool's profile.
func TestAdmissionSettingsFollowProfile(t *testing.T) {
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0"
	cfg.Pools[1].Profile.CPU.Quota = isolation.QuotaUnlimited
	st := newState(t, cpusettest.Intel2S20C2T, cfg)
	const gib = 1 << 30
	mk := func(id, pool string) isolation.ContainerRequest {
		r := req(id, pool, 1500)
		r.CPUShares, r.CPUQuota, r.CPUPeriod = 1536, 300000, 100000
		r.MemoryRequest, r.MemoryLimit, r.OOMScoreAdj = 1*gib, 2*gib, 500
		return r
	}
	cases := []struct {
		pool string
		want isolation.Settings
	}{
		{isolation.PoolLatencyCritical, isolation.Settings{CPUShares: 1536, CPUQuota: 300000, CPUPeriod: 100000,
			MemoryLimit: 2 * gib, MemoryMin: 1 * gib, MemoryHigh: -1, MemorySoftLimit: -1, OOMScoreAdj: 500}},
		{isolation.PoolOnline, isolation.Settings{CPUShares: 1536, CPUQuota: -1, CPUPeriod: 100000,
			MemoryLimit: 2 * gib, MemoryLow: 1 * gib, MemoryHigh: -1, MemorySoftLimit: 1 * gib, OOMScoreAdj: 500}},
		{isolation.PoolBatch, isolation.Settings{CPUShares: 2, CPUQuota: 300000, CPUPeriod: 100000, CPUIdle: true,
			MemoryLimit: 2 * gib, MemoryHigh: 2 * gib * 9 / 10, MemorySoftLimit: -1, OOMScoreAdj: 1000}},
	}
	for _, c := range cases {
		a, err := st.Admit(mk("x-"+c.pool, c.pool))
		if err != nil {
			t.Fatal(err)
		}
		if a.Settings != c.want {
			t.Errorf("pool %s: settings\n%+v, want\n%+v", c.pool, a.Settings, c.want)
		}
	}
}

// An admission takes CPUs from lower pools, but leaves each online pool at
// least RCF.min × its requests (and batch its minCPUs).
func TestAdmissionLeavesLowerPoolsTheirRCFMin(t *testing.T) {
	n := customNode(t, fastConfig()) // pool 0: 55 CPUs, pool 1: 23, batch: 1
	if a, b := n.size(isolation.PoolLatencyCritical), n.size(isolation.PoolOnline); a != 55 || b != 23 {
		t.Fatalf("sizes %d, %d", a, b)
	}
	a := admit(t, n.st, "pinned", isolation.PoolLatencyCritical, 60000)
	if a.CPUs.Size() != 60 {
		t.Fatalf("got %d CPUs", a.CPUs.Size())
	}
	// 18 of pool 1's 23 (keeping ⌈0.1 × 48⌉ = 5), 42 of pool 0's own 55
	// shared (keeping at least ⌈0.2 × 55⌉ = 11), none of batch's 1.
	if got := n.size(isolation.PoolOnline); got < 5 {
		t.Errorf("pool 1 left with %d CPUs, below RCF.min × requests = 5", got)
	}
	if got := n.size(isolation.PoolLatencyCritical); got < 11 {
		t.Errorf("pool 0 shared left with %d CPUs, below 11", got)
	}
	if got := n.size(isolation.PoolBatch); got != 1 {
		t.Errorf("batch left with %d CPUs, want its floor 1", got)
	}
	if _, err := n.st.Admit(req("more", isolation.PoolLatencyCritical, 3000)); !errors.Is(err, isolation.ErrNoExclusiveCPUs) {
		t.Errorf("got %v, want ErrNoExclusiveCPUs", err)
	}
	checkPartition(t, n.st, 79)
}

// After a plugin restart the containers are restored with the CPUs they
// run on: the pools are rebuilt as they were and no cpuset moves.
func TestRestoreAfterRestartMovesNothing(t *testing.T) {
	before := newNode(t, nil)
	admit(t, before.st, "pinned", isolation.PoolLatencyCritical, 3000)
	before.use(isolation.PoolLatencyCritical, 3)
	before.use(isolation.PoolOnline, 10)
	for range 200 {
		before.step(t)
	}
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0"
	after := &node{st: newState(t, cpusettest.Intel2S20C2T, cfg), now: before.now, obs: before.obs}
	// Restore in an order unrelated to pools, as the runtime lists them.
	cs := before.st.Containers()
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		r := req(c.ID, c.Pool, c.Request)
		r.CurrentCPUs = c.CPUs
		if _, err := after.st.Restore(r, c.Pool, c.Exclusive); err != nil {
			t.Fatal(err)
		}
	}
	pb, pa := before.st.Pools(), after.st.Pools()
	for i := range pb {
		if !pb[i].CPUs.Equals(pa[i].CPUs) {
			t.Errorf("pool %s rebuilt as %s, was %s", pb[i].Name, pa[i].CPUs, pb[i].CPUs)
		}
	}
	p := after.step(t)
	for _, ch := range p.Changes {
		if ch.Fields&isolation.FieldCPUs != 0 {
			t.Errorf("restart moved %s to %s: %s", ch.ID, ch.CPUs, ch.Reason)
		}
	}
	if p = after.step(t); len(p.Changes) != 0 {
		t.Errorf("second period after restart still changes %d containers", len(p.Changes))
	}
	checkPartition(t, after.st, 79)
}
