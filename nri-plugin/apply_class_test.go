package nriplugin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/iolimit"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/rdt/rdttest"
)

// createIn creates a container of pool through the in-process runtime and
// returns its adjustment's resources.
func createIn(t *testing.T, rt *runtime, pool string) *api.LinuxResources {
	t.Helper()
	pd := pod("jobs", "c-"+pool, map[string]string{"strata.io/pool": pool})
	resp, err := rt.create(t, pd, container(pd, "worker", 100, 0))
	if err != nil {
		t.Fatalf("create in %s: %v", pool, err)
	}
	return resp.GetAdjust().GetLinux().GetResources()
}

// TestBlockIOClassAtCreation: with the runtime's blockio class file, a
// container of a pool that has a class of its name there is created in
// it; a pool without one, and every pool without the file, get no class
// (containerd would refuse the creation), and the blockio controller
// writes their cgroups after start as before.
func TestBlockIOClassAtCreation(t *testing.T) {
	classes := filepath.Join(t.TempDir(), "blockio.yaml")
	if err := os.WriteFile(classes, []byte("Classes:\n  batch:\n  - Weight: 50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file string
		want       map[string]string // pool -> class in the adjustment
	}{
		{"runtime has classes", classes, map[string]string{isolation.PoolBatch: "batch", isolation.PoolOnline: ""}},
		{"runtime has none", "", map[string]string{isolation.PoolBatch: "", isolation.PoolOnline: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newFakeNode(t, cpusettest.Intel2S20C2T)
			rt := newRuntime(t)
			startPlugin(t, node, rt, trusting(), func(o *Options) {
				o.Controllers = []Controller{NewIOController(IOOptions{RuntimeClasses: tc.file})}
			})
			for pool, want := range tc.want {
				res := createIn(t, rt, pool)
				if got := res.GetBlockioClass().GetValue(); got != want || (want == "") != (res.GetBlockioClass() == nil) {
					t.Errorf("%s container: blockio class %v, want %q", pool, res.GetBlockioClass(), want)
				}
			}
		})
	}
	// A file the runtime could not have loaded either is refused.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("Classes:\n  batch:\n  - Wait: 50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	err := NewIOController(IOOptions{RuntimeClasses: bad}).Start(context.Background(),
		ControllerEnv{Logger: quietLogger(), Cgroups: node.h, Config: trusting})
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad runtime class file: err %v, want one naming %s", err, bad)
	}
}

// TestRDTClassAtCreation: while the rdt dimension runs (a resctrl
// fixture), a container of a pool whose class exists is created in it;
// with no resctrl (this machine) no class is ever sent — containerd and
// runc would refuse the container.
func TestRDTClassAtCreation(t *testing.T) {
	root, proc := rdttest.Write(t, rdttest.IntelL3MBA)
	for _, tc := range []struct {
		name, root string
		want       string
	}{
		{"resctrl", root, "strata-batch"},
		{"no resctrl", filepath.Join(t.TempDir(), "absent"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newFakeNode(t, cpusettest.Intel2S20C2T)
			rt := newRuntime(t)
			cfg := trusting()
			cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
			cfg.Pools[2].Profile.RDT = isolation.RDTProfile{L3Ways: 4}
			h := startPlugin(t, node, rt, cfg, func(o *Options) {
				o.Controllers = []Controller{NewRDTController(RDTOptions{Root: tc.root, ProcRoot: proc})}
			})
			if tc.want != "" {
				waitFor(t, 3*time.Second, "batch's class", func() bool {
					return h.plugin.poolClasses().of(fieldRDTClass, isolation.PoolBatch) != ""
				})
			} else {
				time.Sleep(3 * cfg.Period.Duration) // periods in which a class could have appeared
			}
			res := createIn(t, rt, isolation.PoolBatch)
			if got := res.GetRdtClass().GetValue(); got != tc.want || (tc.want == "") != (res.GetRdtClass() == nil) {
				t.Errorf("batch container: RDT class %v, want %q", res.GetRdtClass(), tc.want)
			}
			if res := createIn(t, rt, isolation.PoolOnline); res.GetRdtClass() != nil {
				t.Errorf("online container (no RDT profile, no class): RDT class %v", res.GetRdtClass())
			}
			notApplied := strings.Join(h.plugin.Status().NotApplied, "; ")
			if said := strings.Contains(notApplied, "rdt class: RDT is not enabled"); said != (tc.want == "") {
				t.Errorf("status says %q; want the rdt class listed as not applied only without resctrl", notApplied)
			}
		})
	}
}

// ioPriorityMember creates a batch container under cfg on a plugin with
// runtime capability c and returns the plugin, the fake node, the pod, the
// container and its adjustment.
func ioPriorityMember(t *testing.T, cfg *isolation.Config, c capability) (*Plugin, *fakeNode, *api.PodSandbox, *api.Container, *api.ContainerAdjustment) {
	t.Helper()
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	p, err := New(Options{Config: cfg, SysfsRoot: node.sysfs, ProcRoot: filepath.Join(node.tree.Dir, "proc"),
		Cgroups: node.h, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p.routes.Store(newRouting(c))
	p.synced = true
	pd := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
	ctr := container(pd, "worker", 0, 0)
	adj, _, err := p.CreateContainer(context.Background(), pd, ctr)
	if err != nil {
		t.Fatal(err)
	}
	return p, node, pd, ctr, adj
}

// memberProcess starts a real process (ioprio_set needs one) in class
// class and enters it as the container's in the fake node's cgroup and
// procfs.
func memberProcess(t *testing.T, node *fakeNode, c *api.Container, class iolimit.IOPriorityClass) int {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	if err := iolimit.SetIOPriority("/proc", pid, class, 4); err != nil {
		t.Fatal(err)
	}
	if err := node.tree.AddCgroup(c.Linux.CgroupsPath); err != nil {
		t.Fatal(err)
	}
	fakeProcess(t, node, c.Linux.CgroupsPath, pid, 0)
	if err := os.MkdirAll(filepath.Join(node.tree.Dir, "proc", strconv.Itoa(pid), "task", strconv.Itoa(pid)), 0o755); err != nil {
		t.Fatal(err)
	}
	return pid
}

func ioClass(t *testing.T, pid int) iolimit.IOPriorityClass {
	t.Helper()
	c, _, err := iolimit.IOPriority(pid)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIOPriorityAtCreationAndStart: a pool's IO priority travels in the
// adjustment on containerd ≥ 2.2 and is written at start before; either
// way the started container's process has it, also when the runtime took
// the adjustment and dropped it (runc < 1.2).
func TestIOPriorityAtCreationAndStart(t *testing.T) {
	for _, tc := range []struct {
		c     capability
		inAdj bool
	}{
		{capability{gen: genContainerd17}, false},
		{capability{gen: genContainerd20}, false},
		{capability{gen: genContainerd22}, true},
		{capability{gen: genContainerd23}, true},
	} {
		t.Run(tc.c.String(), func(t *testing.T) {
			cfg := trusting()
			cfg.Pools[2].Profile.IO.IOPriority = "idle"
			p, node, pd, c, adj := ioPriorityMember(t, cfg, tc.c)
			prio := adj.GetLinux().GetIoPriority()
			if (prio != nil) != tc.inAdj || prio != nil && prio.GetClass() != api.IOPrioClass_IOPRIO_CLASS_IDLE {
				t.Errorf("IO priority in the adjustment: %v, want idle: %v", prio, tc.inAdj)
			}
			// The runtime drops it: the process starts with the default.
			pid := memberProcess(t, node, c, iolimit.IOPriorityNone)
			if err := p.StartContainer(context.Background(), pd, c); err != nil {
				t.Fatal(err)
			}
			if got := ioClass(t, pid); got != iolimit.IOPriorityIdle {
				t.Errorf("process IO priority after start: %s, want idle", got)
			}
		})
	}
}

// TestIOPriorityProtectionSwitch: in a pool whose IO protection switches
// the IO class, a member starts in class none (written: the pool owns its
// class); the protection's change to idle and the lift back to none are
// written to the running container's threads, and drift repair notices a
// thread that left the planned class.
func TestIOPriorityProtectionSwitch(t *testing.T) {
	cfg := trusting()
	cfg.Pools[2].Profile.IO.Protect = &isolation.IOProtect{IOPriority: "idle"}
	p, node, pd, c, adj := ioPriorityMember(t, cfg, capability{gen: genContainerd23})
	if prio := adj.GetLinux().GetIoPriority(); prio != nil {
		t.Errorf("IO priority in the adjustment: %v; want none sent (class none is the default)", prio)
	}
	// The process starts idle, as if something else had set it: Strata's
	// class none must be written at start.
	pid := memberProcess(t, node, c, iolimit.IOPriorityIdle)
	if err := p.StartContainer(context.Background(), pd, c); err != nil {
		t.Fatal(err)
	}
	if got := ioClass(t, pid); got != iolimit.IOPriorityNone {
		t.Fatalf("after start: IO class %s, want none", got)
	}
	rt := p.routes.Load()
	p.mu.Lock()
	m := *p.ctrs[c.Id]
	p.mu.Unlock()
	for _, want := range []struct {
		setting string
		class   iolimit.IOPriorityClass
	}{{"idle", iolimit.IOPriorityIdle}, {isolation.IOPriorityNone, iolimit.IOPriorityNone}} {
		m.settings.IOPriority = want.setting
		if failed, _ := p.write(&m, isolation.FieldIOPriority); failed != 0 {
			t.Fatalf("writing IO priority %s failed", want.setting)
		}
		if got := ioClass(t, pid); got != want.class {
			t.Fatalf("after the change to %s: IO class %s", want.setting, got)
		}
		if f, _ := p.drifted(&m, rt, true, true); f&isolation.FieldIOPriority != 0 {
			t.Errorf("IO priority %s as planned, but drift repair sees drift", want.setting)
		}
	}
	if err := iolimit.SetIOPriority("/proc", pid, iolimit.IOPriorityIdle, 0); err != nil {
		t.Fatal(err)
	}
	if f, _ := p.drifted(&m, rt, true, true); f&isolation.FieldIOPriority == 0 {
		t.Error("the process went idle against the planned class none; drift repair does not see it")
	}
}
