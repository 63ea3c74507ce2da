package nriplugin

import (
	"path/filepath"
	"testing"
	"time"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
)

// TestKernelPoolPSIFromMemberCgroups reads real per-cgroup PSI: three
// spinning tasks share one CPU in a latency-critical member's cgroup while
// an online member's cgroup only sleeps. Through the plugin's sampler and
// isolation's decision, latency-critical enters the CPU-PSI level and
// online does not — though the node's own CPU PSI, which the stall drives
// up, is over the threshold too. On a hybrid host the tasks are placed in
// the cgroup2 tree as runc places containers; in the v2 VM tier the
// cgroup is the v2 one.
func TestKernelPoolPSIFromMemberCgroups(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, testutil.PSI)
	h, stalled := testutil.NewCgroup(t)
	if h.UnifiedRoot() == "" {
		t.Skip("per-cgroup PSI needs a cgroup2 mount; this host is pure cgroup v1")
	}
	if h.Mode() == cgroup.V2 {
		testutil.RequireFeature(t, testutil.CgroupV2Controllers(cgroup.CPUSet))
	} else {
		testutil.RequireFeature(t, testutil.CgroupV1(cgroup.CPUSet))
	}
	_, quiet := testutil.NewCgroup(t)
	if err := stalled.SetCPUSetCPUs(cpuset.New(0)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := stalled.JoinUnified(testutil.StartBusy(t, stalled).Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if err := quiet.JoinUnified(testutil.StartInCgroup(t, quiet, "/bin/sleep", "600").Process.Pid); err != nil {
		t.Fatal(err)
	}

	sysfs := cpusettest.Root(t, cpusettest.Intel2S20C2T)
	p, err := New(Options{Config: trusting(), SysfsRoot: sysfs, ProcRoot: "/proc", Cgroups: h, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for id, cg := range map[string]*cgroup.Cgroup{"stalled": stalled, "quiet": quiet} {
		if err := p.sampler.cgroups.Add(id, cg); err != nil {
			t.Fatal(err)
		}
	}
	cfg := trusting() // namespace prod may enter latency-critical
	cfg.ReservedCPUs = "0"
	const threshold = 10 // percent, CPU PSI some avg10
	cfg.Protection.Levels = []isolation.ProtectionLevel{{Name: "stalled",
		When: isolation.Thresholds{CPUSome: threshold}, Actions: []isolation.ActionKind{isolation.ActionRelease}}}
	topo := p.topo
	st, err := isolation.NewState(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for id, pool := range map[string]string{"stalled": isolation.PoolLatencyCritical, "quiet": isolation.PoolOnline} {
		if _, err := st.Admit(isolation.ContainerRequest{ID: id, Name: id, PodName: id, PodUID: id, Namespace: "prod",
			CPUShares: 512, Annotations: map[string]string{cfg.Classification.Annotation: pool}}); err != nil {
			t.Fatal(err)
		}
	}

	// avg10 rises over seconds; sample until the stall shows, at most 20 s.
	var obs *isolation.Observations
	var plan isolation.Plan
	p.observe()
	for deadline := time.Now().Add(20 * time.Second); ; {
		time.Sleep(time.Second)
		obs = p.observe()
		plan = isolation.Decide(*obs, st, time.Now())
		if obs.Containers["stalled"].Pressure.CPU.Some >= 2*threshold && obs.Node.CPU.Some >= threshold || time.Now().After(deadline) {
			break
		}
	}
	s, q := obs.Containers["stalled"], obs.Containers["quiet"]
	t.Logf("node cpu some %.1f%%; stalled member %.1f%% (measured %v, %.2f CPUs); quiet member %.1f%% (measured %v)",
		obs.Node.CPU.Some, s.Pressure.CPU.Some, s.PressureMeasured, s.CPU, q.Pressure.CPU.Some, q.PressureMeasured)
	if !s.PressureMeasured || !q.PressureMeasured {
		t.Fatalf("members' own PSI not read (stalled %v, quiet %v) from %s", s.PressureMeasured, q.PressureMeasured,
			filepath.Join(h.UnifiedRoot(), "…", "cpu.pressure"))
	}
	if s.Pressure.CPU.Some < 2*threshold || obs.Node.CPU.Some < threshold {
		t.Fatalf("the stall did not show within 20 s: member %.1f%%, node %.1f%%; want ≥ %d%% and ≥ %d%%",
			s.Pressure.CPU.Some, obs.Node.CPU.Some, 2*threshold, threshold)
	}
	if q.Pressure.CPU.Some > 1 {
		t.Errorf("a sleeping member shows CPU PSI some %.1f%%, want ≤ 1%%", q.Pressure.CPU.Some)
	}
	lc, on := &plan.Pools[0], &plan.Pools[1]
	if lc.LevelName != "stalled" || lc.PressureFrom != isolation.PressureFromMembers {
		t.Errorf("latency-critical: level %q from %s, want stalled from its member", lc.LevelName, lc.PressureFrom)
	}
	if on.LevelName != "" || on.PressureFrom != isolation.PressureFromMembers {
		t.Errorf("online: level %q from %s (pool %.1f%%, node %.1f%%); want none, from its own quiet member",
			on.LevelName, on.PressureFrom, on.Pressure.CPU.Some, obs.Node.CPU.Some)
	}
}
