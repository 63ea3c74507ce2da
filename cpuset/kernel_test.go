package cpuset_test

import (
	"path"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/internal/testutil"
	kcpuset "k8s.io/utils/cpuset"
)

// requireCpusetController skips (or, with STRATA_TEST_REQUIRE_KERNEL=1,
// fails) unless the host's cgroups carry the cpuset controller.
func requireCpusetController(t *testing.T) *cgroup.Hierarchy {
	t.Helper()
	testutil.RequireRoot(t)
	h, err := testutil.HostHierarchy()
	if err != nil {
		t.Fatalf("detect cgroups: %v", err)
	}
	if h.Mode() == cgroup.V2 {
		testutil.RequireFeature(t, testutil.CgroupV2Controllers(cgroup.CPUSet))
	} else {
		testutil.RequireFeature(t, testutil.CgroupV1(cgroup.CPUSet))
	}
	return h
}

func wantAllowed(t *testing.T, pid int, field, want string) {
	t.Helper()
	got, err := testutil.ProcStatusField(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("pid %d %s = %s, want %s", pid, field, got, want)
	}
}

// TestKernelApply applies a cpuset to a fresh cgroup, starts a process in
// it and reads what the kernel lets it run on from /proc; then moves the
// cpuset under the running process.
func TestKernelApply(t *testing.T) {
	requireCpusetController(t)
	topo, err := cpuset.Discover("/sys")
	if err != nil {
		t.Fatal(err)
	}
	_, cg := testutil.NewCgroup(t)
	online := topo.Online().List()
	cpus := kcpuset.New(online[len(online)-1])
	mems := topo.MemsFor(cpus)
	if err := cpuset.Apply(cg, cpus, mems); err != nil {
		t.Fatal(err)
	}
	if got, err := cg.CPUSetCPUs(); err != nil || !got.Equals(cpus) {
		t.Fatalf("cpuset.cpus = %s, %v; want %s", got, err, cpus)
	}
	cmd := testutil.StartInCgroup(t, cg, "sleep", "60")
	wantAllowed(t, cmd.Process.Pid, "Cpus_allowed_list", cpus.String())
	wantAllowed(t, cmd.Process.Pid, "Mems_allowed_list", mems.String())

	if len(online) < 2 {
		t.Logf("one online CPU: moving the running process is not tested")
		return
	}
	cpus = kcpuset.New(online[0])
	if err := cpuset.Apply(cg, cpus, topo.MemsFor(cpus)); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, cmd.Process.Pid, "Cpus_allowed_list", cpus.String())
}

// TestKernelApplyNestedOrdering checks that ApplyNested orders its writes
// so cgroup v1 accepts them, where the naive order is refused: shrinking a
// parent before its children (EBUSY) and growing a child before its
// parent (EINVAL).
func TestKernelApplyNestedOrdering(t *testing.T) {
	h := requireCpusetController(t)
	topo, err := cpuset.Discover("/sys")
	if err != nil {
		t.Fatal(err)
	}
	online := topo.Online().List()
	if len(online) < 2 {
		t.Skipf("needs two online CPUs, have %s", topo.Online())
	}
	lo, hi := kcpuset.New(online[0]), kcpuset.New(online[1])
	both := lo.Union(hi)
	mems := topo.MemsFor(both)
	_, pool := testutil.NewCgroup(t)
	if err := cpuset.Apply(pool, both, mems); err != nil {
		t.Fatal(err)
	}
	var kids []*cgroup.Cgroup
	for _, name := range []string{"a", "b"} {
		cg, err := h.Create(path.Join(pool.Path(), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := cpuset.Apply(cg, both, mems); err != nil {
			t.Fatal(err)
		}
		kids = append(kids, cg)
	}
	a, b := kids[0], kids[1]
	cmd := testutil.StartInCgroup(t, a, "sleep", "60")
	v1 := h.Mode() != cgroup.V2

	// Shrink everything to lo.
	if v1 {
		if err := pool.SetCPUSetCPUs(lo); err == nil {
			t.Fatal("v1 let the parent shrink below its children; the ordering rule this test checks is not enforced here")
		}
	}
	err = cpuset.ApplyNested(cpuset.Assignment{Cgroup: pool, CPUs: lo, Mems: mems},
		[]cpuset.Assignment{{Cgroup: a, CPUs: lo, Mems: mems}, {Cgroup: b, CPUs: lo, Mems: mems}})
	if err != nil {
		t.Fatalf("shrinking: %v", err)
	}
	wantAllowed(t, cmd.Process.Pid, "Cpus_allowed_list", lo.String())

	// Grow the parent back and move child a to hi.
	if v1 {
		if err := a.SetCPUSetCPUs(hi); err == nil {
			t.Fatal("v1 let a child grow beyond its parent; the ordering rule this test checks is not enforced here")
		}
	}
	err = cpuset.ApplyNested(cpuset.Assignment{Cgroup: pool, CPUs: both, Mems: mems},
		[]cpuset.Assignment{{Cgroup: a, CPUs: hi, Mems: mems}, {Cgroup: b, CPUs: both, Mems: mems}})
	if err != nil {
		t.Fatalf("growing: %v", err)
	}
	wantAllowed(t, cmd.Process.Pid, "Cpus_allowed_list", hi.String())
	for cg, want := range map[*cgroup.Cgroup]kcpuset.CPUSet{pool: both, a: hi, b: both} {
		if got, err := cg.CPUSetCPUs(); err != nil || !got.Equals(want) {
			t.Errorf("%s cpus = %s, %v; want %s", cg.Path(), got, err, want)
		}
	}

	// Both directions at once: the parent moves to hi, taking b along.
	err = cpuset.ApplyNested(cpuset.Assignment{Cgroup: pool, CPUs: hi, Mems: mems},
		[]cpuset.Assignment{{Cgroup: a, CPUs: hi, Mems: mems}, {Cgroup: b, CPUs: hi, Mems: mems}})
	if err != nil {
		t.Fatalf("moving: %v", err)
	}
	if got, _ := pool.CPUSetCPUs(); !got.Equals(hi) {
		t.Errorf("pool cpus = %s, want %s", got, hi)
	}
}
