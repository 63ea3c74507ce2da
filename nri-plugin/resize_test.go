package nriplugin

import (
	"context"
	"testing"

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
