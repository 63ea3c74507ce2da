package nriplugin

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
)

// TestIdleMemberUpdatesTakeWhole: an idle batch member's pool shrinks when
// a latency-critical container takes exclusive CPUs, and the update that
// moves it must take as a whole. The runtime keeps the container's spec as
// containerd does and hands runc all of it in every update; runc writes in
// its own order and the kernel refuses a weight on an idle group. With
// shares in the member's spec (the batch profile's 2, or the kubelet's),
// every update of it was refused: on v2 before the cpuset, which never
// moved (seen in the test/vm guest); on v1 after it, so the cgroup moved
// while the update failed and the runtime's record kept the old cpuset.
func TestIdleMemberUpdatesTakeWhole(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			node := newFakeNodeMode(t, mode)
			rt := newRuntime(t)
			rt.spec = true
			rt.runc = runcOnFixture(t, node)
			cfg := trusting()
			cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
			startPlugin(t, node, rt, cfg)
			ctx := context.Background()

			batchPod := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
			batch := container(batchPod, "worker", 0, 0)
			batch.Linux.Resources.Cpu.Shares = api.UInt64(2) // the kubelet's, for a best-effort pod
			rt.startRunning(t, node, batchPod, batch, 8001)
			bcg, err := node.h.Open(batch.Linux.CgroupsPath)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 3*time.Second, "batch member idle", func() bool {
				idle, _ := bcg.CPUIdle()
				return idle
			})
			before, _ := bcg.CPUSetCPUs()

			lcPod := pod("prod", "frontend", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
			lc := container(lcPod, "server", 4000, 4000)
			resp, err := rt.create(t, lcPod, lc)
			if err != nil {
				t.Fatal(err)
			}
			exclusive, err := cpuset.Parse(resp.GetAdjust().GetLinux().GetResources().GetCpu().GetCpus())
			if err != nil || exclusive.Size() != 4 {
				t.Fatalf("latency-critical cpuset %q (%v), want 4 exclusive CPUs", resp.GetAdjust().GetLinux().GetResources().GetCpu().GetCpus(), err)
			}
			recorded := func() cpuset.CPUSet {
				rt.mu.Lock()
				defer rt.mu.Unlock()
				s, _ := cpuset.Parse(batch.Linux.Resources.Cpu.Cpus)
				return s
			}
			waitFor(t, 3*time.Second, "batch's cgroup and the runtime's record off the exclusive CPUs", func() bool {
				got, _ := bcg.CPUSetCPUs()
				return got.Size() > 0 && got.Intersection(exclusive).Size() == 0 && recorded().Equals(got)
			})
			rt.mu.Lock()
			refused, shares := rt.refused, batch.Linux.Resources.Cpu.GetShares()
			rt.mu.Unlock()
			if refused != 0 {
				t.Errorf("runc refused %d updates", refused)
			}
			if shares.GetValue() != 0 {
				t.Errorf("batch spec shares = %d, want 0 (idle: the kernel's weight)", shares.GetValue())
			}
			after, _ := bcg.CPUSetCPUs()
			t.Logf("batch moved from %s to %s; latency-critical took %s", before, after, exclusive)

			// The kubelet's own update of the member (a resize) carries its
			// shares: the reply replaces them with 0, else they would land
			// in the spec and every later update would be refused again.
			req := &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(2), Period: api.UInt64(100000)}}
			ur, err := rt.r.UpdateContainer(ctx, &api.UpdateContainerRequest{Pod: batchPod, Container: batch, LinuxResources: req})
			if err != nil {
				t.Fatal(err)
			}
			var replied bool
			for _, u := range ur.GetUpdate() {
				if u.GetContainerId() != batch.Id {
					continue
				}
				replied = true
				if s := u.GetLinux().GetResources().GetCpu().GetShares(); s == nil || s.GetValue() != 0 {
					t.Errorf("reply to the kubelet's update: shares %v, want 0", s)
				}
			}
			if !replied {
				t.Error("no reply for the kubelet's update of the idle member")
			}
		})
	}
}

// TestKernelIdleGroupRefusesWeight pins the kernel rule the fixture runc
// of the unit tests models: a cgroup with cpu.idle=1 refuses a CPU weight
// (cpu.shares on v1, cpu.weight on v2) with EINVAL, whatever the value;
// before idle is set the weight is taken (runc's creation order: weight,
// then the unified map's cpu.idle).
func TestKernelIdleGroupRefusesWeight(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, testutil.CPUIdle)
	_, cg := testutil.NewCgroup(t)
	if err := cg.SetCPUShares(2); err != nil {
		t.Fatalf("weight before idle: %v", err)
	}
	if err := cg.SetCPUIdle(true); err != nil {
		t.Fatal(err)
	}
	for _, shares := range []uint64{2, 3, 1024} {
		if err := cg.SetCPUShares(shares); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("shares %d on an idle group: %v, want EINVAL", shares, err)
		}
	}
}
