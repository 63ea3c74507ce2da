package nriplugin

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// TestUpdateContainerResize: an update that changes a member's CPU request
// (the kubelet's in-place resize) re-admits it: 2 → 4 whole CPUs gives 4
// exclusive CPUs, containing the 2 it had or not; a request that cannot be
// met leaves it on its CPUs.
func TestUpdateContainerResize(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	h := startPlugin(t, node, rt, trusting())

	p := pod("prod", "frontend", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	c := container(p, "server", 2000, 2000)
	if _, err := rt.create(t, p, c); err != nil {
		t.Fatal(err)
	}
	update := func(milli int64) cpuset.CPUSet {
		t.Helper()
		res := &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(uint64(milli * 1024 / 1000)), Quota: api.Int64(milli * 100), Period: api.UInt64(100000)}}
		resp, err := rt.r.UpdateContainer(context.Background(), &api.UpdateContainerRequest{Pod: p, Container: c, LinuxResources: res})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range resp.GetUpdate() {
			if u.GetContainerId() == c.Id {
				got, err := cpuset.Parse(u.GetLinux().GetResources().GetCpu().GetCpus())
				if err != nil {
					t.Fatal(err)
				}
				c.Linux.Resources = res
				c.Linux.Resources.Cpu.Cpus = got.String()
				return got
			}
		}
		t.Fatalf("no update for %s in the reply: %v", c.Id, resp.GetUpdate())
		return cpuset.New()
	}
	exclusive := func() (cpuset.CPUSet, bool) {
		for _, m := range h.plugin.Status().Containers {
			if m.ID == c.Id {
				s, _ := cpuset.Parse(m.CPUs)
				return s, m.Exclusive
			}
		}
		t.Fatalf("%s not a member", c.Id)
		return cpuset.New(), false
	}
	if got := update(4000); got.Size() != 4 {
		t.Fatalf("resized to 4 CPUs: cpuset %s", got)
	}
	if s, ex := exclusive(); !ex || s.Size() != 4 {
		t.Errorf("after the resize the member holds %s (exclusive %v), want 4 exclusive CPUs", s, ex)
	}
	before := update(4000) // same request: nothing moves
	if got := update(500000); !got.Equals(before) {
		t.Errorf("an impossible resize (500 CPUs) moved the member from %s to %s", before, got)
	}
	if got := update(1000); got.Size() != 1 {
		t.Errorf("resized down to 1 CPU: cpuset %s", got)
	}
}

// TestResizedMemberStaysManaged: a started member resized in place (the
// kubelet's update) is still a started member: when its cpuset is changed
// behind Strata's back afterwards (a stale update landing after the
// kubelet's, as seen on a real kubelet), drift repair puts Strata's back
// within a few periods, and the dimensions are not told it left.
func TestResizedMemberStaysManaged(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	rt.runc = runcOnFixture(t, node)
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	dim := &fakeDimension{name: "dim"}
	h := startPlugin(t, node, rt, cfg, func(o *Options) { o.Controllers = []Controller{dim} })
	ctx := context.Background()

	p := pod("prod", "frontend", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	c := container(p, "server", 2000, 2000)
	rt.startRunning(t, node, p, c, 6001)
	waitFor(t, 3*time.Second, "the dimension told of the started member", func() bool {
		admitted, _, _, _, _ := dim.snapshot()
		_, ok := admitted[c.Id]
		return ok
	})

	res := &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(4096), Quota: api.Int64(400000), Period: api.UInt64(100000)}}
	resp, err := rt.r.UpdateContainer(ctx, &api.UpdateContainerRequest{Pod: p, Container: c, LinuxResources: res})
	if err != nil {
		t.Fatal(err)
	}
	var granted cpuset.CPUSet
	for _, u := range resp.GetUpdate() {
		if u.GetContainerId() == c.Id {
			granted, _ = cpuset.Parse(u.GetLinux().GetResources().GetCpu().GetCpus())
			rt.runc(c, u.GetLinux().GetResources())
		}
	}
	if granted.Size() != 4 {
		t.Fatalf("resized to 4 CPUs: the reply gives %s", granted)
	}
	cg, err := node.h.Open(c.Linux.CgroupsPath)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the resize's cpuset in the cgroup", func() bool {
		got, _ := cg.CPUSetCPUs()
		return got.Equals(granted)
	})

	// A stale cpuset lands after the resize.
	if err := node.tree.WriteFile("cpuset", c.Linux.CgroupsPath, "cpuset.cpus", "0-1\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "drift repair restores the resized member's cpuset", func() bool {
		got, _ := cg.CPUSetCPUs()
		return got.Equals(granted)
	})
	if _, removed, _, _, _ := dim.snapshot(); len(removed) != 0 {
		t.Errorf("the dimension was told the resized member left: %v", removed)
	}
	h.plugin.mu.Lock()
	started := h.plugin.ctrs[c.Id] != nil && h.plugin.ctrs[c.Id].started
	h.plugin.mu.Unlock()
	if !started {
		t.Error("the resized member is no longer marked started")
	}
}
