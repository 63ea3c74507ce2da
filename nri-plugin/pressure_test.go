package nriplugin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
)

// psiNode is a fake node (see newFakeNodeMode) with a procfs of
// /proc/stat, /proc/meminfo and quiet node PSI files.
func psiNode(t *testing.T, mode cgroup.Mode) *fakeNode {
	t.Helper()
	n := newFakeNodeMode(t, mode)
	var stat strings.Builder
	stat.WriteString("cpu  100 0 100 1000 0 0 0 0 0 0\n")
	for _, c := range n.topo.Online().List() {
		fmt.Fprintf(&stat, "cpu%d 1 0 1 10 0 0 0 0 0 0\n", c)
	}
	n.writeProc(t, "stat", stat.String())
	n.writeProc(t, "meminfo", "MemTotal:       16384000 kB\nMemAvailable:   12288000 kB\n")
	for _, r := range []string{"cpu", "memory", "io"} {
		n.setNodePSI(t, r, 0)
	}
	return n
}

func (n *fakeNode) writeProc(t *testing.T, name, content string) {
	t.Helper()
	path := filepath.Join(n.tree.Dir, "proc", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setNodePSI writes /proc/pressure/<r> with avg10 as both some and full.
func (n *fakeNode) setNodePSI(t *testing.T, r string, avg10 float64) {
	t.Helper()
	n.writeProc(t, filepath.Join("pressure", r), fmt.Sprintf(
		"some avg10=%.2f avg60=0.00 avg300=0.00 total=0\nfull avg10=%.2f avg60=0.00 avg300=0.00 total=0\n", avg10, avg10))
}

// psiLevelConfig: one protection level, entered at memory PSI full ≥ 10,
// left 100 ms after the pressure is gone.
func psiLevelConfig() *isolation.Config {
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	cfg.Protection.Cooldown = isolation.Duration{Duration: 100 * time.Millisecond}
	cfg.Protection.Levels = []isolation.ProtectionLevel{{Name: "stalled",
		When: isolation.Thresholds{MemoryFull: 10}, Actions: []isolation.ActionKind{isolation.ActionRelease}}}
	return cfg
}

// addMember creates a one-CPU container of namespace ns in pool, with its
// fixture cgroup.
func addMember(t *testing.T, node *fakeNode, rt *runtime, ns, pool string) *api.Container {
	t.Helper()
	p := pod(ns, "app", map[string]string{"strata.io/pool": pool})
	c := container(p, "server", 1000, 0)
	if err := node.tree.AddCgroup(c.Linux.CgroupsPath); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.create(t, p, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitStatus polls /status until ok holds for it.
func waitStatus(t *testing.T, h *harness, what string, ok func(*Status) bool) *Status {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		st := h.plugin.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; pools %+v", what, patience, st.Pools)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoopProtectsOnThePoolsOwnPSI runs the real loop on a hybrid fixture
// host, where every container has PSI files of its own: a latency-critical
// member stalled on memory raises its pool's level while the node is
// quiet; then with the node stalled and the members quiet, no pool that
// has members of its own enters the level. Reading the node's PSI for the
// pools fails both halves.
func TestLoopProtectsOnThePoolsOwnPSI(t *testing.T) {
	node := psiNode(t, cgroup.Hybrid)
	rt := newRuntime(t)
	h := startPlugin(t, node, rt, psiLevelConfig())
	lc := addMember(t, node, rt, "prod", isolation.PoolLatencyCritical)
	addMember(t, node, rt, "web", isolation.PoolOnline)
	setPSI := func(c string, full float64) {
		t.Helper()
		if err := node.tree.SetPressure(c, cgroup.PSIMemory, 0, 0, full, full); err != nil {
			t.Fatal(err)
		}
	}
	setPSI(lc.Linux.CgroupsPath, 45)
	st := waitStatus(t, h, "latency-critical enters its level on its member's memory PSI", func(st *Status) bool {
		return st.Pools[0].Level == "stalled" && strings.HasPrefix(st.Pools[1].Pressure, "members")
	})
	if !strings.HasPrefix(st.Pools[0].Pressure, "members (1 of 1 measured, worst)") || !strings.Contains(st.Pools[0].Pressure, "full 45.0%") {
		t.Errorf("latency-critical pressure %q, want its one member's, memory full 45.0%%", st.Pools[0].Pressure)
	}
	if st.Pools[1].Level != "" || !strings.HasPrefix(st.Pools[1].Pressure, "members") {
		t.Errorf("online: level %q on %q; want none, from its own quiet member", st.Pools[1].Level, st.Pools[1].Pressure)
	}

	setPSI(lc.Linux.CgroupsPath, 0)
	node.setNodePSI(t, "memory", 45)
	waitStatus(t, h, "latency-critical leaves its level once its member is quiet, on a stalled node", func(st *Status) bool {
		return st.Pools[0].Level == "" && strings.Contains(st.Pools[2].Pressure, "full 45.0%")
	})
	time.Sleep(300 * time.Millisecond) // several periods on a stalled node
	st = h.plugin.Status()
	for _, ps := range st.Pools[:2] {
		if ps.Level != "" {
			t.Errorf("%s entered level %q on the node's PSI (%s)", ps.Name, ps.Level, ps.Pressure)
		}
	}
	// Batch has no members: the node's PSI stands in, and says why.
	if b := st.Pools[2]; b.Pressure != "node (no members): cpu some 0.0%, memory some 45.0% full 45.0%" {
		t.Errorf("batch pressure %q, want the node's, for want of members", b.Pressure)
	}
}

// TestStatusSaysWhyPoolPSIIsTheNodes: on pure cgroup v1 no container has
// PSI of its own; status says the node's PSI stands in and why.
func TestStatusSaysWhyPoolPSIIsTheNodes(t *testing.T) {
	node := psiNode(t, cgroup.V1)
	rt := newRuntime(t)
	h := startPlugin(t, node, rt, psiLevelConfig())
	addMember(t, node, rt, "web", isolation.PoolOnline)
	node.setNodePSI(t, "memory", 30)
	st := waitStatus(t, h, "online reads the node's PSI", func(st *Status) bool {
		return st.Pools[1].Members == 1 && strings.Contains(st.Pools[1].Pressure, "full 30.0%")
	})
	if want := "node (cgroup v1 without a cgroup2 mount has no per-cgroup PSI)"; !strings.HasPrefix(st.Pools[1].Pressure, want) {
		t.Errorf("online pressure %q, want it to start %q", st.Pools[1].Pressure, want)
	}
	if st.Pools[1].Level != "stalled" {
		t.Errorf("online level %q, want stalled: the node's PSI stands in for the pool's", st.Pools[1].Level)
	}
}
