package cgroup_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// TestKernelSettingsAndMeasuredQuota writes every value through the layer to
// a real cgroup, checks the kernel's own files, then measures a busy child:
// a 20 ms / 100 ms quota must give 0.20 ± 0.03 CPU, as cpuacct counts it.
func TestKernelSettingsAndMeasuredQuota(t *testing.T) {
	testutil.RequireRoot(t)
	for _, ctl := range []string{cgroup.CPU, cgroup.CPUAcct, cgroup.CPUSet, cgroup.Memory} {
		testutil.RequireFeature(t, testutil.CgroupV1(ctl))
	}
	_, cg := testutil.NewCgroup(t)
	// Shares are set below too, but the parent's weight matters as much.
	testutil.Prioritize(t, cg)

	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	all, err := cpuset.Parse(string(online[:len(online)-1]))
	if err != nil {
		t.Fatal(err)
	}
	pin := cpuset.New(all.List()[all.Size()-1]) // the last online CPU

	if err := cg.SetCPUShares(256); err != nil {
		t.Fatal(err)
	}
	if err := cg.SetCPUQuota(20000, 100000); err != nil {
		t.Fatal(err)
	}
	if err := cg.SetCPUSetCPUs(pin); err != nil {
		t.Fatal(err)
	}
	if err := cg.SetMemoryLimit(64 << 20); err != nil {
		t.Fatal(err)
	}
	check := func(ctl, file, want string) {
		t.Helper()
		dir, err := cg.Dir(ctl)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b[:len(b)-1]); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	check(cgroup.CPU, "cpu.shares", "256")
	check(cgroup.CPU, "cpu.cfs_quota_us", "20000")
	check(cgroup.CPU, "cpu.cfs_period_us", "100000")
	check(cgroup.CPUSet, "cpuset.cpus", pin.String())
	check(cgroup.Memory, "memory.limit_in_bytes", strconv.Itoa(64<<20))
	if l, err := cg.MemoryLimit(); err != nil || l != 64<<20 {
		t.Errorf("MemoryLimit = %d, %v", l, err)
	}

	busy := testutil.StartBusy(t, cg)
	allowed, err := testutil.ProcStatusField(busy.Process.Pid, "Cpus_allowed_list")
	if err != nil {
		t.Fatal(err)
	}
	if allowed != pin.String() {
		t.Errorf("Cpus_allowed_list of the child = %q, want %q", allowed, pin.String())
	}
	if pids, err := cg.Procs(); err != nil || len(pids) != 1 || pids[0] != busy.Process.Pid {
		t.Errorf("Procs = %v, %v; want [%d]", pids, err, busy.Process.Pid)
	}

	// Let the child reach steady state, then measure over 2 s (20 periods).
	time.Sleep(300 * time.Millisecond)
	u0, err := cg.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	u1, err := cg.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	cpus := float64(u1-u0) / float64(time.Since(t0))
	const want, tol = 0.20, 0.03
	t.Logf("measured %.3f CPU under a 20ms/100ms quota", cpus)
	if math.Abs(cpus-want) > tol {
		t.Errorf("busy child used %.3f CPU, want %.2f ± %.2f", cpus, want, tol)
	}
	st, err := cg.CPUStat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttled == 0 || st.ThrottledTime == 0 {
		t.Errorf("cpu.stat shows no throttling under quota: %+v", st)
	}

	// Lifting the quota lets the child run freely (> 0.8 CPU on its pinned CPU).
	if err := cg.SetCPUQuota(-1, 0); err != nil {
		t.Fatal(err)
	}
	if q, _, _ := cg.CPUQuota(); q != -1 {
		t.Errorf("quota after lifting = %d, want -1", q)
	}
	u0, _ = cg.CPUUsage()
	t0 = time.Now()
	time.Sleep(time.Second)
	u1, _ = cg.CPUUsage()
	if free := float64(u1-u0) / float64(time.Since(t0)); free < 0.8 {
		t.Errorf("without quota the child used %.3f CPU, want > 0.8", free)
	}
}

func TestKernelCPUIdle(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, testutil.CPUIdle)
	_, cg := testutil.NewCgroup(t)
	if err := cg.SetCPUIdle(true); err != nil {
		t.Fatal(err)
	}
	if idle, err := cg.CPUIdle(); err != nil || !idle {
		t.Fatalf("CPUIdle = %v, %v; want true", idle, err)
	}
}

// TestKernelVanished removes a real cgroup and checks that reads and writes
// report ErrVanished, as a container that exits mid-update does.
func TestKernelVanished(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, testutil.CgroupV1(cgroup.CPU))
	h, parent := testutil.NewCgroup(t)
	child, err := h.Create(parent.Path() + "/gone")
	if err != nil {
		t.Fatal(err)
	}
	if !child.Exists() {
		t.Fatal("created cgroup does not exist")
	}
	if err := child.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := child.SetCPUShares(512); !errors.Is(err, cgroup.ErrVanished) {
		t.Errorf("write after removal: %v, want ErrVanished", err)
	}
	if _, err := child.CPUUsage(); !errors.Is(err, cgroup.ErrVanished) {
		t.Errorf("read after removal: %v, want ErrVanished", err)
	}
	if err := child.Remove(); err != nil {
		t.Errorf("second Remove: %v, want nil", err)
	}
}

// TestKernelCpusetInheritance checks that Create makes a v1 cpuset cgroup
// usable at once (the kernel leaves cpus and mems empty) and that a child
// may not hold CPUs its parent lacks.
func TestKernelCpusetInheritance(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, testutil.CgroupV1(cgroup.CPUSet))
	h, parent := testutil.NewCgroup(t)
	pcpus, err := parent.CPUSetCPUs()
	if err != nil || pcpus.Size() == 0 {
		t.Fatalf("new cgroup cpuset.cpus = %v, %v; want inherited from its parent", pcpus, err)
	}
	if mems, err := parent.CPUSetMems(); err != nil || mems.Size() == 0 {
		t.Fatalf("new cgroup cpuset.mems = %v, %v", mems, err)
	}
	child, err := h.Create(parent.Path() + "/child")
	if err != nil {
		t.Fatal(err)
	}
	if pcpus.Size() < 2 {
		t.Skip("needs 2 CPUs to test the subset rule") // not a kernel feature: a machine shape
	}
	first := cpuset.New(pcpus.List()[0])
	if err := parent.SetCPUSetCPUs(pcpus); err != nil {
		t.Fatal(err)
	}
	if err := child.SetCPUSetCPUs(first); err != nil {
		t.Fatal(err)
	}
	// Shrinking the parent below the child's CPUs is refused by v1.
	rest := pcpus.Difference(first)
	err = parent.SetCPUSetCPUs(rest)
	var fe *cgroup.FileError
	if !errors.As(err, &fe) || fe.Value != rest.String() {
		t.Errorf("shrinking parent under its child: %v, want a FileError naming value %q", err, rest.String())
	}
}

// TestKernelHybridUnifiedPlacement: on a hybrid host a process added to a
// cgroup also joins the cgroup's directory in the unified mount, as runc
// places containers, so that directory's PSI files describe it.
func TestKernelHybridUnifiedPlacement(t *testing.T) {
	testutil.RequireRoot(t)
	h, err := testutil.HostHierarchy()
	if err != nil {
		t.Fatal(err)
	}
	if h.Mode() != cgroup.Hybrid {
		t.Skipf("host cgroup mode is %s: no separate unified mount to join", h.Mode()) // a host layout, not a kernel feature
	}
	_, cg := testutil.NewCgroup(t)
	cmd := testutil.StartInCgroup(t, cg, "sleep", "60")
	dir, err := cg.UnifiedDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(" "+strings.Join(strings.Fields(string(b)), " ")+" ", " "+strconv.Itoa(cmd.Process.Pid)+" ") {
		t.Errorf("pid %d not in %s/cgroup.procs (%q)", cmd.Process.Pid, dir, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "cpu.pressure")); err != nil {
		t.Errorf("no per-cgroup PSI in the unified directory: %v", err)
	}
}
