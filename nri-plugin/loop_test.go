package nriplugin

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// burn makes a fixture container look busy: its cpuacct.usage advances by
// cores × wall time, as the kernel's would, until ctx ends. The counter is
// rewritten in place with one write, never truncated: a kernel counter file
// is never seen empty, and a growing number never gets shorter.
func burn(ctx context.Context, t *testing.T, node *fakeNode, c *api.Container, cores float64) {
	start := time.Now()
	path := filepath.Join(node.tree.ControllerDir("cpu,cpuacct", c.Linux.CgroupsPath), "cpuacct.usage")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	for {
		used := time.Duration(float64(time.Since(start)) * cores)
		if _, err := f.WriteAt([]byte(strconv.FormatInt(int64(used), 10)+"\n"), 0); err != nil {
			t.Error(err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// lastCPUs returns the last cpuset the runtime was told for a container.
func (rt *runtime) lastCPUs(id string) (cpuset.CPUSet, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for i := len(rt.updated) - 1; i >= 0; i-- {
		u := rt.updated[i]
		if u.GetContainerId() == id {
			if s := u.GetLinux().GetResources().GetCpu().GetCpus(); s != "" {
				set, err := cpuset.Parse(s)
				return set, err == nil
			}
		}
	}
	return cpuset.New(), false
}

// TestLoopGrowsBusyPool runs the real feedback loop at 100 ms: a pool-0
// member that burns 3 CPUs must make pool 0 grow, with CPUs taken from
// batch and delivered by unsolicited updates, within a few periods; when it
// goes idle, batch gets CPUs back. The member requests 8.5 CPUs, because a
// pool never holds more than its members' requests (RCF ≤ 1).
func TestLoopGrowsBusyPool(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 100 * time.Millisecond}
	cfg.Resize.ShrinkInterval = isolation.Duration{Duration: 200 * time.Millisecond}
	h := startPlugin(t, node, rt, cfg)

	lcPod := pod("prod", "api", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	lc := container(lcPod, "server", 8500, 0) // fractional: shares pool 0's CPUs
	batchPod := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
	batch := container(batchPod, "worker", 1000, 0)
	for _, pc := range []struct {
		p *api.PodSandbox
		c *api.Container
	}{{lcPod, lc}, {batchPod, batch}} {
		if err := node.tree.AddCgroup(pc.c.Linux.CgroupsPath); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.create(t, pc.p, pc.c); err != nil {
			t.Fatal(err)
		}
	}
	// Idle at first: pool 0 shrinks toward its RCF floor, at most 2 CPUs
	// per shrink interval.
	var st *Status
	deadline := time.Now().Add(patience)
	for st = h.plugin.Status(); st.Pools[0].Size >= 6; st = h.plugin.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("idle pool 0 still holds %d CPUs after %v; the test needs it below 6", st.Pools[0].Size, patience)
		}
		time.Sleep(50 * time.Millisecond)
	}
	lcStart, batchStart := st.Pools[0].Size, st.Pools[2].Size
	t.Logf("idle: pool 0 %s (%d), batch %s (%d)", st.Pools[0].CPUs, lcStart, st.Pools[2].CPUs, batchStart)

	ctx, cancel := context.WithCancel(context.Background())
	go burn(ctx, t, node, lc, 3)
	go burn(ctx, t, node, batch, float64(batchStart)) // batch uses all it has

	// Pool 0 must grow: 3 busy CPUs over its band (30–50 %) want 6–10 CPUs.
	var grown cpuset.CPUSet
	deadline = time.Now().Add(patience)
	for {
		if s, ok := rt.lastCPUs(lc.Id); ok && s.Size() >= 6 {
			grown = s
			break
		}
		if time.Now().After(deadline) {
			s, _ := rt.lastCPUs(lc.Id)
			cancel()
			t.Fatalf("pool 0 did not grow to ≥ 6 CPUs within %v under a 3-CPU load (last update %s)", patience, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The batch update rides in the same or a later batch of updates:
	// wait until the runtime has it.
	var bNow cpuset.CPUSet
	for deadline = time.Now().Add(patience); ; time.Sleep(10 * time.Millisecond) {
		var ok bool
		bNow, ok = rt.lastCPUs(batch.Id)
		if ok && bNow.Intersection(grown).Size() == 0 && bNow.Size() < batchStart {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch after pool 0 grew: %s (had %d CPUs); it must have shrunk and not overlap pool 0's %s", bNow, batchStart, grown)
		}
	}
	t.Logf("grown: pool 0 %s (%d), batch %s (%d)", grown, grown.Size(), bNow, bNow.Size())

	waitForStatus := time.Now().Add(patience)
	for st = h.plugin.Status(); st.Pools[0].Size < 6 || st.Pools[0].Load <= 0; st = h.plugin.Status() {
		if time.Now().After(waitForStatus) {
			t.Errorf("status pool 0: size %d load %.2f, want ≥ 6 CPUs under load", st.Pools[0].Size, st.Pools[0].Load)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()

	// Idle: pool 0 releases; batch grows back.
	deadline = time.Now().Add(patience)
	for {
		if s, ok := rt.lastCPUs(batch.Id); ok && s.Size() > bNow.Size() {
			break
		}
		if time.Now().After(deadline) {
			s, _ := rt.lastCPUs(batch.Id)
			t.Fatalf("batch did not get CPUs back within %v after pool 0 went idle (batch %s)", patience, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSampleMemoryEvery: members' memory is read every 2 s of periods, at
// least every period.
func TestSampleMemoryEvery(t *testing.T) {
	for _, c := range []struct {
		period time.Duration
		want   int
	}{{100 * time.Millisecond, 20}, {time.Second, 2}, {1500 * time.Millisecond, 2}, {2 * time.Second, 1}, {5 * time.Second, 1}, {0, 2}} {
		if got := sampleMemoryEvery(c.period); got != c.want {
			t.Errorf("sampleMemoryEvery(%v) = %d, want %d", c.period, got, c.want)
		}
	}
}
