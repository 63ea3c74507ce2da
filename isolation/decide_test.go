package isolation_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

var noon = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

type node struct {
	st  *isolation.State
	obs isolation.Observations
	now time.Time
}

// newNode: 80-CPU machine, CPU 0 reserved; pool 0 has 4 shared members of
// 2.5 CPUs, pool 1 has 8 of 4 CPUs, batch 4 greedy members.
func newNode(tb testing.TB, cfg *isolation.Config) *node {
	tb.Helper()
	if cfg == nil {
		cfg = isolation.DefaultConfig()
		cfg.ReservedCPUs = "0"
	}
	n := &node{st: newState(tb, cpusettest.Intel2S20C2T, cfg), now: noon,
		obs: isolation.Observations{Containers: map[string]isolation.ContainerUsage{}}}
	for i := range 4 {
		admit(tb, n.st, id("lc", i), isolation.PoolLatencyCritical, 2500)
	}
	for i := range 8 {
		admit(tb, n.st, id("web", i), isolation.PoolOnline, 4000)
	}
	for i := range 4 {
		admit(tb, n.st, id("b", i), isolation.PoolBatch, 0)
	}
	return n
}

func id(p string, i int) string { return p + string(rune('0'+i)) }

// use sets every member of a pool to the same usage so the pool totals u.
func (n *node) use(pool string, total float64) {
	var ids []string
	for _, c := range n.st.Containers() {
		if c.Pool == pool && c.Exclusive.Size() == 0 {
			ids = append(ids, c.ID)
		}
	}
	for _, i := range ids {
		n.obs.Containers[i] = isolation.ContainerUsage{CPU: total / float64(len(ids))}
	}
}

func (n *node) step(tb testing.TB) isolation.Plan {
	tb.Helper()
	p := isolation.Decide(n.obs, n.st, n.now)
	if err := n.st.Commit(&p); err != nil {
		tb.Fatal(err)
	}
	n.now = n.now.Add(time.Second)
	return p
}

func (n *node) size(pool string) int { return poolInfo(n.st, pool).Shared.Size() }

func TestDecideIsPureAndDeterministic(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, nil)
	for _, n := range []*node{a, b} {
		n.use(isolation.PoolLatencyCritical, 2) // 10 CPUs: load 0.2, below the band
		n.use(isolation.PoolOnline, 4)
	}
	before := a.st.Pools()
	p1 := isolation.Decide(a.obs, a.st, noon)
	p2 := isolation.Decide(a.obs, a.st, noon)
	p3 := isolation.Decide(b.obs, b.st, noon)
	if !reflect.DeepEqual(p1, p2) {
		t.Error("two Decide calls on one state differ")
	}
	if !reflect.DeepEqual(p1.Pools, p3.Pools) || !reflect.DeepEqual(p1.Changes, p3.Changes) || !reflect.DeepEqual(p1.Actions, p3.Actions) {
		t.Error("identical states and observations gave different plans")
	}
	if !reflect.DeepEqual(before, a.st.Pools()) {
		t.Error("Decide changed the state")
	}
	if s := p1.String(); !strings.Contains(s, "latency-critical 10→10 CPUs (+0 exclusive) load 0.20: load 0.200 below band") ||
		!strings.Contains(s, "batch capacity") {
		t.Errorf("plan summary:\n%s", s)
	}
	if p1.Pools[0].Target >= p1.Pools[0].PrevSize || p1.Pools[0].Reason == "" {
		t.Errorf("pool 0 at load %.2f should want to shrink, with a reason: %+v", p1.Pools[0].Load, p1.Pools[0])
	}
}

func TestCommitRejectsStalePlan(t *testing.T) {
	n := newNode(t, nil)
	p := isolation.Decide(n.obs, n.st, noon)
	admit(t, n.st, "late", isolation.PoolOnline, 1000)
	if err := n.st.Commit(&p); !errors.Is(err, isolation.ErrStalePlan) {
		t.Errorf("got %v, want ErrStalePlan", err)
	}
}

// A pool below its band shrinks by at most maxShrinkCores per step and
// waits shrinkInterval between steps; pool members get the new CPUs.
func TestShrinkIsRateLimited(t *testing.T) {
	n := newNode(t, nil)
	n.use(isolation.PoolLatencyCritical, 4)
	n.use(isolation.PoolOnline, 3) // pool 1 holds 32 CPUs: load 0.09
	var sizes []int
	for range 65 {
		sizes = append(sizes, n.size(isolation.PoolOnline))
		n.step(t)
	}
	// The pools grew when their members were admitted: the first period
	// starts the dwell. 32 → 30 at t=30s, → 28 at t=60s.
	for i, s := range sizes {
		want := 32 - 2*((i-1)/30)
		if s != want {
			t.Fatalf("period %d: pool 1 has %d CPUs, want %d (sizes %v)", i, s, want, sizes)
		}
	}
}

// fastConfig converges in one period: no shrink limits, no predictor.
func fastConfig() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0"
	cfg.Resize.ShrinkInterval.Duration = 0
	cfg.Resize.MaxShrinkCores = 1000
	cfg.Predictor.Disabled = true
	return cfg
}

// customNode: pool 0 with 10 members of 5.5 CPUs, pool 1 with 8 of 6 CPUs,
// 4 batch members.
func customNode(tb testing.TB, cfg *isolation.Config) *node {
	n := &node{st: newState(tb, cpusettest.Intel2S20C2T, cfg), now: noon,
		obs: isolation.Observations{Containers: map[string]isolation.ContainerUsage{}}}
	for i := range 10 {
		admit(tb, n.st, id("lc", i), isolation.PoolLatencyCritical, 5500)
	}
	for i := range 8 {
		admit(tb, n.st, id("web", i), isolation.PoolOnline, 6000)
	}
	for i := range 4 {
		admit(tb, n.st, id("b", i), isolation.PoolBatch, 0)
	}
	return n
}

// Above the band but below the protection levels, growth is limited to
// max(maxGrowCores, maxGrowPercent % of the pool) per period, and comes
// from batch.
func TestGrowIsStepLimitedWithoutPreempt(t *testing.T) {
	cfg := fastConfig()
	cfg.Resize.MaxGrowPercent = 0 // only the 10-core limit
	n := customNode(t, cfg)
	n.use(isolation.PoolLatencyCritical, 10) // → 25 CPUs
	n.use(isolation.PoolOnline, 12)          // → 23 CPUs
	n.step(t)
	if got := n.size(isolation.PoolLatencyCritical); got != 25 {
		t.Fatalf("pool 0 converged to %d, want 25", got)
	}
	n.use(isolation.PoolLatencyCritical, 19) // load 0.76: above band, below level "elevated" (0.8)
	p := n.step(t)
	lc, on, b := p.Pools[0], p.Pools[1], p.Pools[2]
	if lc.Level >= 0 {
		t.Fatalf("pool 0 in level %s", lc.LevelName)
	}
	if lc.Target != 48 || lc.Size != 35 {
		t.Errorf("pool 0 target %d size %d, want target ⌈19/0.4⌉ = 48 and size 25 + 10 = 35", lc.Target, lc.Size)
	}
	if on.Size != on.PrevSize || b.PrevSize-b.Size != 10 {
		t.Errorf("CPUs should come from batch only: batch %d→%d, online %d→%d", b.PrevSize, b.Size, on.PrevSize, on.Size)
	}
	if !strings.Contains(lc.Reason, "took 10 from batch") || !strings.Contains(lc.Reason, "short of target by 13") {
		t.Errorf("reason %q", lc.Reason)
	}
}

// With preempt (load ≥ 0.8 enters level "elevated"), a pool grows without
// step limit, takes from batch down to its floor, then from pool 1 — never
// from a higher pool.
func TestPreemptTakesBatchThenLowerPool(t *testing.T) {
	cfg := fastConfig()
	cfg.Pools[2].MinCPUs = 4
	n := customNode(t, cfg)
	n.use(isolation.PoolLatencyCritical, 8) // → 20 CPUs
	n.use(isolation.PoolOnline, 24)         // → 46 CPUs
	n.step(t)
	if a, b := n.size(isolation.PoolLatencyCritical), n.size(isolation.PoolOnline); a != 20 || b != 46 {
		t.Fatalf("converged to %d and %d CPUs, want 20 and 46", a, b)
	}
	n.use(isolation.PoolLatencyCritical, 20) // load 1.0 → target 50
	p := n.step(t)
	lc, on, b := p.Pools[0], p.Pools[1], p.Pools[2]
	if lc.Level < 0 || lc.Size != 50 {
		t.Fatalf("pool 0 level %d size %d, want a level and 50 CPUs", lc.Level, lc.Size)
	}
	if b.Size != 4 {
		t.Errorf("batch %d → %d, want its floor 4 taken first", b.PrevSize, b.Size)
	}
	if on.Size != 46-(30-(13-4)) {
		t.Errorf("online %d → %d, want the remaining 21 preempted", on.PrevSize, on.Size)
	}
	if !strings.Contains(lc.Reason, "took 9 from batch") || !strings.Contains(lc.Reason, "preempted 21 from online") {
		t.Errorf("reason %q should say what was taken and preempted", lc.Reason)
	}
	var kinds []isolation.ActionKind
	for _, a := range p.Actions {
		kinds = append(kinds, a.Kind)
	}
	if len(kinds) < 2 || kinds[0] != isolation.ActionRelease || kinds[1] != isolation.ActionPreempt {
		t.Errorf("actions %v, want release and preempt announced", kinds)
	}
	// Pool 1, now far above its band, may take only from batch — which is
	// at its floor — and never from pool 0.
	p = n.step(t)
	if p.Pools[0].Size < 50 {
		t.Errorf("pool 0 lost CPUs to a lower pool: %d", p.Pools[0].Size)
	}
	checkPartition(t, n.st, 79)
}

// Exclusive CPUs are never moved and never part of another pool, however
// loads swing.
func TestExclusiveCPUsNeverMove(t *testing.T) {
	n := newNode(t, nil)
	excl := admit(t, n.st, "pinned", isolation.PoolLatencyCritical, 4000).CPUs
	for i := range 400 {
		f := float64(i%40) / 10
		n.use(isolation.PoolLatencyCritical, 1+3*f)
		n.use(isolation.PoolOnline, 30-6*f)
		p := n.step(t)
		for _, pp := range p.Pools {
			if pp.Shared.Intersection(excl).Size() > 0 {
				t.Fatalf("period %d: pool %s shares exclusive CPUs %s", i, pp.Name, pp.Shared.Intersection(excl))
			}
		}
		for _, ch := range p.Changes {
			if ch.ID == "pinned" && ch.Fields&isolation.FieldCPUs != 0 {
				t.Fatalf("period %d: pinned container's CPUs changed to %s", i, ch.CPUs)
			}
		}
	}
	if !poolInfo(n.st, isolation.PoolLatencyCritical).Exclusive.Equals(excl) {
		t.Error("pool 0's exclusive CPUs changed")
	}
	checkPartition(t, n.st, 79)
}

func TestBatchCapacityView(t *testing.T) {
	n := newNode(t, nil)
	n.use(isolation.PoolLatencyCritical, 4)
	n.use(isolation.PoolOnline, 16)
	p := n.step(t) // noon: watermark 10 % of 79
	b := p.Batch
	if b.NodeCPUs != 79 || b.OnlineUsage != 20 || b.WatermarkFrom != "batch.watermark" {
		t.Fatalf("view %+v", b)
	}
	want := 79 - max(b.OnlineUsage, b.OnlinePredicted) - 7.9
	if diff := b.CPUs - want; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("capacity %.3f, want %.3f: %s", b.CPUs, want, b)
	}
	// At 23:00 the schedule's 5 % applies.
	n.now = time.Date(2026, 1, 5, 23, 0, 0, 0, time.UTC)
	p = n.step(t)
	if p.Batch.WatermarkFrom != "batch.schedule[0]" || p.Batch.Watermark != 79*0.05 {
		t.Errorf("night view %s", p.Batch)
	}
	if !strings.Contains(p.Batch.String(), "watermark 3.95 (batch.schedule[0])") {
		t.Errorf("explanation %q", p.Batch)
	}
}

// The node switch: the plugin turns colocation off by building a new State
// from the new configuration and restoring the running containers into it.
func TestColocationOff(t *testing.T) {
	for _, mode := range []string{isolation.WhenDisabledSuspend, isolation.WhenDisabledEvict} {
		t.Run(mode, func(t *testing.T) {
			on := newNode(t, nil)
			on.step(t)
			cfg := isolation.DefaultConfig()
			cfg.ReservedCPUs = "0"
			cfg.Colocation = isolation.ColocationConfig{Disabled: true, WhenDisabled: mode}
			n := &node{st: newState(t, cpusettest.Intel2S20C2T, cfg), now: on.now, obs: on.obs}
			for _, c := range on.st.Containers() {
				r := req(c.ID, "", c.Request)
				if _, err := n.st.Restore(r, c.Pool, c.Exclusive); err != nil {
					t.Fatal(err)
				}
			}
			p := n.step(t)
			if p.Batch.CPUs != 0 || p.Batch.Colocation {
				t.Errorf("batch capacity %s, want 0", p.Batch)
			}
			var hit int
			want := isolation.ActionSuspend
			if mode == isolation.WhenDisabledEvict {
				want = isolation.ActionEvict
			}
			for _, a := range p.Actions {
				if a.Kind == want && strings.HasPrefix(a.Container, "b") && a.Reason != "" {
					hit++
				}
			}
			if hit != 4 {
				t.Errorf("%d %s actions for 4 batch members: %+v", hit, want, p.Actions)
			}
			if mode == isolation.WhenDisabledEvict {
				return
			}
			for _, ch := range p.Changes {
				if strings.HasPrefix(ch.ID, "b") && (ch.Settings.CPUQuota != 1000 || !ch.Settings.CPUIdle) {
					t.Errorf("suspended %s settings %+v", ch.ID, ch.Settings)
				}
			}
			// Announced once.
			if p2 := n.step(t); len(p2.Actions) != 0 {
				t.Errorf("suspend repeated: %+v", p2.Actions)
			}
			// A batch member arriving now starts suspended.
			a := admit(t, n.st, "late", isolation.PoolBatch, 0)
			if a.Settings.CPUQuota != 1000 || !a.Settings.CPUIdle {
				t.Errorf("late batch member admitted with %+v", a.Settings)
			}
			if p3 := n.step(t); len(p3.Actions) != 0 {
				t.Errorf("late member: actions %+v", p3.Actions)
			}
		})
	}
}

// Under memory pressure, members of pools below the pressured pool are
// downgraded (cpu.shares 2, cpu.idle) with a reason, and restored after the
// cooldown once the pressure is gone.
func TestCPUDowngradeAndRestore(t *testing.T) {
	n := newNode(t, nil)
	n.use(isolation.PoolLatencyCritical, 4)
	n.use(isolation.PoolOnline, 16)
	n.obs.Node = isolation.NodePressure{MemoryTotal: 100 << 30, MemoryUsed: 90 << 30} // level "high"
	p := n.step(t)
	if p.Pools[0].LevelName != "high" {
		t.Fatalf("pool 0 level %q, want high", p.Pools[0].LevelName)
	}
	downgraded := 0
	for _, ch := range p.Changes {
		if strings.HasPrefix(ch.ID, "web") {
			if ch.Settings.CPUShares != 2 || !ch.Settings.CPUIdle || ch.Fields&(isolation.FieldCPUShares|isolation.FieldCPUIdle) == 0 ||
				!strings.Contains(ch.Reason, "cpuDowngrade: pool latency-critical at level high") {
				t.Errorf("change %+v", ch)
			}
			downgraded++
		}
		if strings.HasPrefix(ch.ID, "lc") && ch.Fields&isolation.FieldCPUIdle != 0 {
			t.Errorf("pool 0 member downgraded: %+v", ch)
		}
	}
	if downgraded != 8 {
		t.Errorf("%d online members downgraded, want 8", downgraded)
	}
	n.obs.Node.MemoryUsed = 50 << 30
	for i := 1; i <= 12; i++ {
		p = n.step(t)
		restored := 0
		for _, ch := range p.Changes {
			if strings.HasPrefix(ch.ID, "web") && !ch.Settings.CPUIdle && ch.Settings.CPUShares == 4096 {
				restored++
			}
		}
		switch {
		case i < 10 && (restored > 0 || p.Pools[0].Level != 1):
			t.Fatalf("second %d: restored %d, level %d: the cooldown is 10 s", i, restored, p.Pools[0].Level)
		case i == 10 && restored != 8:
			t.Fatalf("second %d: restored %d of 8 after the cooldown (level %d)", i, restored, p.Pools[0].Level)
		}
	}
	for _, c := range n.st.Containers() {
		if c.Downgraded {
			t.Errorf("%s still downgraded", c.ID)
		}
	}
}

// CPU PSI raises a level, except for a pool whose members are throttled:
// their stall is their own quota, not interference.
func TestCPUPSIIgnoredWhenThrottled(t *testing.T) {
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0"
	cfg.Protection.Levels = []isolation.ProtectionLevel{{Name: "stalled", When: isolation.Thresholds{CPUSome: 20}, Actions: []isolation.ActionKind{isolation.ActionRelease}}}
	for _, throttled := range []float64{0, 0.5} {
		n := newNode(t, cfg)
		for i := range 4 {
			n.obs.Containers[id("lc", i)] = isolation.ContainerUsage{CPU: 1, Throttled: throttled}
		}
		n.obs.Pools = map[string]isolation.PoolObservation{isolation.PoolLatencyCritical: {
			Pressure: isolation.PoolPressure{CPU: isolation.PSI{Some: 35}}, PressureMeasured: true}}
		p := n.step(t)
		if got, want := p.Pools[0].Level, map[float64]int{0: 0, 0.5: -1}[throttled]; got != want {
			t.Errorf("throttled %.1f: level %d, want %d", throttled, got, want)
		}
	}
}

// The predicted peak keeps a shrinking pool larger — but not below keep =
// (low + mid) / 2, so prediction never pushes a pool out of its band.
func TestPredictorKeepsHeadroom(t *testing.T) {
	cfg := fastConfig()
	cfg.Predictor.Disabled = false
	n := customNode(t, cfg)
	n.use(isolation.PoolLatencyCritical, 16) // 40 CPUs at load 0.4
	n.use(isolation.PoolOnline, 12)
	for range 100 {
		n.step(t)
	}
	n.use(isolation.PoolLatencyCritical, 8) // load 0.2: shrink
	p := n.step(t)
	lc := p.Pools[0]
	// Without prediction: ⌈8/0.4⌉ = 20. The peak ≈ 16 asks ⌈16/0.5⌉ = 32,
	// capped at ⌊8/0.35⌋ = 22 so the load stays ≥ keep 0.35.
	if lc.Predicted < 16 || lc.Target != 22 {
		t.Errorf("predicted %.2f target %d, want ≥ 16 and 22", lc.Predicted, lc.Target)
	}
	p = n.step(t)
	if l := p.Pools[0].Load; l < 0.35 || l > 0.5 {
		t.Errorf("load after the shrink %.3f, want within [keep 0.35, high 0.5]", l)
	}
}

// A bad sample (NaN, negative, infinite) counts as idle instead of
// poisoning the pool's load.
func TestBadSamplesCountAsIdle(t *testing.T) {
	n := newNode(t, nil)
	n.use(isolation.PoolOnline, 16)
	n.obs.Containers["web0"] = isolation.ContainerUsage{CPU: math.NaN()}
	n.obs.Containers["web1"] = isolation.ContainerUsage{CPU: math.Inf(1)}
	n.obs.Containers["web2"] = isolation.ContainerUsage{CPU: -3}
	p := n.step(t)
	if u := p.Pools[1].Usage; u != 10 {
		t.Errorf("pool 1 usage %v, want 10 (5 good samples of 2)", u)
	}
	checkPartition(t, n.st, 79)
}
