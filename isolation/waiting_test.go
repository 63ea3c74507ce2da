package isolation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/isolation"
)

// wait gives every shared member of pool the run-queue delay p99 (and a
// proportionate mean and p50).
func (n *node) wait(pool string, p99 time.Duration) {
	for _, c := range n.st.Containers() {
		if c.Pool == pool && c.Exclusive.Size() == 0 {
			u := n.obs.Containers[c.ID]
			u.RunQueueP99, u.RunQueueP50, u.RunQueueMean = p99, p99/4, p99/3
			n.obs.Containers[c.ID] = u
		}
	}
}

// shrunkNode is newNode after one quiet period with the shrink limits
// lifted: pool 0 on 5 CPUs, online on 16, below their requests (10, 32)
// so that they can grow.
func shrunkNode(t *testing.T, cfg *isolation.Config) *node {
	t.Helper()
	cfg.Resize.ShrinkInterval = isolation.Duration{}
	cfg.Resize.MaxShrinkCores = 20
	n := newNode(t, cfg)
	n.use(isolation.PoolLatencyCritical, 2)
	n.use(isolation.PoolOnline, 8)
	n.step(t)
	if a, b := n.size(isolation.PoolLatencyCritical), n.size(isolation.PoolOnline); a != 5 || b != 16 {
		t.Fatalf("after a quiet period pool 0 has %d CPUs, online %d; want 5 and 16", a, b)
	}
	return n
}

// TestWaitingGrowsPoolNearBandTop: resize.waiting grows a pool whose load
// is in the top quarter of its band and whose members wait for a CPU, as
// if the load were above the band; a pool lower in its band, a pool whose
// members do not wait, and every pool with the rule disabled keep their
// size. Pool 0 (band 30–50 %) runs on 5 CPUs, so its top quarter starts
// at load 0.45.
func TestWaitingGrowsPoolNearBandTop(t *testing.T) {
	for _, tc := range []struct {
		name     string
		load     float64
		p99      time.Duration
		psi      float64 // CPU PSI some of every member
		cfg      func(*isolation.Config)
		wantGrow bool
	}{
		{name: "near the top, waiting", load: 0.47, p99: 2 * time.Millisecond, wantGrow: true},
		{name: "at the top's edge, waiting", load: 0.45, p99: 2 * time.Millisecond, wantGrow: true},
		{name: "near the top, not waiting", load: 0.47, p99: 500 * time.Microsecond},
		{name: "band middle, waiting", load: 0.44, p99: 5 * time.Millisecond},
		{name: "near the top, waiting, rule disabled", load: 0.47, p99: 2 * time.Millisecond,
			cfg: func(c *isolation.Config) { c.Resize.Waiting.Disabled = true }},
		{name: "nearTop 0 needs the band's top", load: 0.47, p99: 2 * time.Millisecond,
			cfg: func(c *isolation.Config) { c.Resize.Waiting.NearTop = 0 }},
		{name: "PSI off by default", load: 0.47, psi: 40},
		{name: "PSI threshold met", load: 0.47, psi: 40, wantGrow: true,
			cfg: func(c *isolation.Config) { c.Resize.Waiting.CPUSome = 20 }},
		{name: "PSI threshold not met", load: 0.47, psi: 10,
			cfg: func(c *isolation.Config) { c.Resize.Waiting.CPUSome = 20 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := isolation.DefaultConfig()
			cfg.ReservedCPUs = "0"
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			n := shrunkNode(t, cfg)
			usage := tc.load * 5
			n.use(isolation.PoolLatencyCritical, usage)
			n.use(isolation.PoolOnline, 8) // 16 CPUs: load 0.5, in its band
			n.wait(isolation.PoolLatencyCritical, tc.p99)
			if tc.psi > 0 {
				n.measure(isolation.PoolLatencyCritical, isolation.PoolPressure{CPU: isolation.PSI{Some: tc.psi}})
			}
			p := n.step(t)
			lc, on := poolPlan(t, &p, isolation.PoolLatencyCritical), poolPlan(t, &p, isolation.PoolOnline)
			if on.Size != on.PrevSize {
				t.Errorf("online %d → %d CPUs: only pool 0 waits", on.PrevSize, on.Size)
			}
			if !tc.wantGrow {
				if lc.Size != lc.PrevSize || lc.Waiting != "" {
					t.Errorf("pool 0 %d → %d CPUs (waiting %q) at load %.2f, p99 %v: want no resize", lc.PrevSize, lc.Size, lc.Waiting, lc.Load, tc.p99)
				}
				return
			}
			// As above the band: towards its middle, ⌈usage / 0.4⌉, taken from batch.
			want := int(usage/0.4 + 0.999)
			if lc.Size != want || lc.Target != want {
				t.Errorf("pool 0 %d → %d CPUs (target %d) at load %.2f, want %d", lc.PrevSize, lc.Size, lc.Target, lc.Load, want)
			}
			if lc.Waiting == "" || !strings.Contains(lc.Reason, "waiting for a CPU") || !strings.Contains(lc.Reason, "near the top of band") {
				t.Errorf("waiting %q, reason %q: want the signal named", lc.Waiting, lc.Reason)
			}
			if !strings.Contains(lc.Reason, "took") || !strings.Contains(lc.Reason, isolation.PoolBatch) {
				t.Errorf("reason %q: want the CPUs taken from batch", lc.Reason)
			}
			t.Logf("%s", lc.Reason)
		})
	}
}

// TestWaitingGrowthKeepsTierOrder: pool 0 and the online pool both near
// their bands' tops and waiting grow from batch; in the periods after,
// with pool 0 quiet and online still waiting, online takes nothing of
// pool 0's; a lowest pool waiting changes nothing.
func TestWaitingGrowthKeepsTierOrder(t *testing.T) {
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0"
	n := shrunkNode(t, cfg)
	n.use(isolation.PoolLatencyCritical, 2.35) // 5 CPUs: 0.47, in the top quarter of 30–50 %
	n.use(isolation.PoolOnline, 9.3)           // 16 CPUs: 0.58, in the top quarter of 45–60 %
	n.wait(isolation.PoolLatencyCritical, 3*time.Millisecond)
	n.wait(isolation.PoolOnline, 3*time.Millisecond)
	n.wait(isolation.PoolBatch, 50*time.Millisecond)
	p := n.step(t)
	lc, on, b := poolPlan(t, &p, isolation.PoolLatencyCritical), poolPlan(t, &p, isolation.PoolOnline), poolPlan(t, &p, isolation.PoolBatch)
	t.Logf("pool 0 %d → %d, online %d → %d (target %d), batch %d → %d", lc.PrevSize, lc.Size, on.PrevSize, on.Size, on.Target, b.PrevSize, b.Size)
	if lc.Size != 6 || on.Size != 18 || b.Size != b.PrevSize-3 {
		t.Errorf("pool 0 %d → %d CPUs, online %d → %d, batch %d → %d: want 6 and ⌈9.3 / 0.525⌉ = 18, both from batch",
			lc.PrevSize, lc.Size, on.PrevSize, on.Size, b.PrevSize, b.Size)
	}
	if b.Waiting != "" {
		t.Errorf("batch waiting %q: the lowest pool is meant to wait", b.Waiting)
	}
	// Then pool 0 is in its band, not waiting, and online near its top
	// and waiting, period after period: online takes nothing of pool 0's.
	n.use(isolation.PoolLatencyCritical, 0.4*6)
	n.wait(isolation.PoolLatencyCritical, 0)
	for i := range 8 {
		n.use(isolation.PoolOnline, 0.58*float64(n.size(isolation.PoolOnline)))
		n.wait(isolation.PoolOnline, 3*time.Millisecond)
		p = n.step(t)
		if lc := poolPlan(t, &p, isolation.PoolLatencyCritical); lc.Size < lc.PrevSize {
			t.Fatalf("period %d: pool 0 lost CPUs (%d → %d) to a waiting lower pool: %s", i, lc.PrevSize, lc.Size, poolPlan(t, &p, isolation.PoolOnline).Reason)
		}
	}
	if on := n.size(isolation.PoolOnline); on != 32 {
		t.Errorf("online at %d CPUs after 8 periods near its top and waiting, want its request 32", on)
	}
}

// TestWaitingConfigValidated: bad resize.waiting values are refused,
// naming the field.
func TestWaitingConfigValidated(t *testing.T) {
	for _, tc := range []struct {
		field string
		set   func(*isolation.WaitingGrowth)
	}{
		{"resize.waiting.nearTop", func(w *isolation.WaitingGrowth) { w.NearTop = 0.5 }},
		{"resize.waiting.nearTop", func(w *isolation.WaitingGrowth) { w.NearTop = -0.1 }},
		{"resize.waiting.runQueueDelayP99", func(w *isolation.WaitingGrowth) { w.RunQueueP99.Duration = -time.Millisecond }},
		{"resize.waiting.runQueueDelayP99", func(w *isolation.WaitingGrowth) { w.RunQueueP99.Duration = time.Minute }},
		{"resize.waiting.cpuPSISome", func(w *isolation.WaitingGrowth) { w.CPUSome = 101 }},
	} {
		cfg := isolation.DefaultConfig()
		tc.set(&cfg.Resize.Waiting)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v; want an error naming %s", cfg.Resize.Waiting, err, tc.field)
		}
	}
	cfg, err := isolation.ParseConfig([]byte("resize: {waiting: {nearTop: 0.1, cpuPSISome: 15}}"))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Resize.Waiting; w.NearTop != 0.1 || w.CPUSome != 15 || w.RunQueueP99.Duration != time.Millisecond {
		t.Errorf("parsed %+v: want nearTop 0.1, cpuPSISome 15 and the default 1ms run-queue threshold kept", w)
	}
}
