package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// fakeDimension records every hook call. With fail set, every hook after
// Start errs and ApplyPools panics; with unsupported set, Start reports
// ErrNotSupported.
type fakeDimension struct {
	name        string
	fail        bool
	unsupported bool

	mu       sync.Mutex
	started  bool
	admitted map[string]Member
	removed  []string
	observed int
	applied  []map[string]string // per ApplyPools: pool → its CPUs
	calls    int32               // concurrent calls in flight (must stay ≤ 1)
	overlap  bool
}

func (f *fakeDimension) enter() func() {
	f.mu.Lock()
	f.calls++
	if f.calls > 1 {
		f.overlap = true
	}
	f.mu.Unlock()
	return func() { f.mu.Lock(); f.calls--; f.mu.Unlock() }
}

func (f *fakeDimension) err(hook string) error {
	if f.fail {
		return fmt.Errorf("%s: device gone", hook)
	}
	return nil
}

func (f *fakeDimension) Name() string { return f.name }
func (f *fakeDimension) Start(_ context.Context, env ControllerEnv) error {
	if f.unsupported {
		return fmt.Errorf("no clsact qdisc: %w", ErrNotSupported)
	}
	if env.Cgroups == nil || env.Config() == nil || env.Logger == nil {
		return errors.New("incomplete environment")
	}
	f.mu.Lock()
	f.started = true
	f.admitted = map[string]Member{}
	f.mu.Unlock()
	return nil
}
func (f *fakeDimension) Stop() {}
func (f *fakeDimension) ContainerAdmitted(m Member) error {
	defer f.enter()()
	f.mu.Lock()
	f.admitted[m.ID] = m
	f.mu.Unlock()
	return f.err("admit")
}
func (f *fakeDimension) ContainerRemoved(m Member) error {
	defer f.enter()()
	f.mu.Lock()
	f.removed = append(f.removed, m.ID)
	delete(f.admitted, m.ID)
	f.mu.Unlock()
	return f.err("remove")
}
func (f *fakeDimension) Observe(obs *isolation.Observations) error {
	defer f.enter()()
	f.mu.Lock()
	f.observed++
	f.mu.Unlock()
	return f.err("observe")
}
func (f *fakeDimension) ApplyPools(plan *isolation.Plan) error {
	defer f.enter()()
	if f.fail {
		panic("apply: nil map")
	}
	sections := map[string]string{}
	for _, pp := range plan.Pools {
		sections[pp.Name] = pp.CPUs.String()
	}
	f.mu.Lock()
	f.applied = append(f.applied, sections)
	f.mu.Unlock()
	return nil
}
func (f *fakeDimension) Status() ControllerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ControllerStatus{Summary: fmt.Sprintf("%d members", len(f.admitted)), Pools: map[string]string{isolation.PoolBatch: "class 1:30"}}
}
func (f *fakeDimension) Collectors() []prometheus.Collector { return nil }

func (f *fakeDimension) snapshot() (admitted map[string]Member, removed []string, observed, applied int, last map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	admitted = map[string]Member{}
	for k, v := range f.admitted {
		admitted[k] = v
	}
	if n := len(f.applied); n > 0 {
		last = f.applied[n-1]
	}
	return admitted, append([]string(nil), f.removed...), f.observed, len(f.applied), last
}

// TestControllersSeeMembersAndPools registers three fake dimensions — one
// healthy, one that fails every hook (and panics applying), one the host
// does not support — around the real loop: the healthy one must be told
// of each started container with its pool, cgroup and pod IPs, of each
// stopped one, and get every period's pools; the failing one must not
// stop it or the loop; the unsupported one is disabled with its reason.
func TestControllersSeeMembersAndPools(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	failing := &fakeDimension{name: "failing", fail: true}
	good := &fakeDimension{name: "good"}
	absent := &fakeDimension{name: "absent", unsupported: true}
	h := startPlugin(t, node, rt, cfg, func(o *Options) { o.Controllers = []Controller{failing, good, absent} })

	lcPod := pod("prod", "api", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	lcPod.Ips = []string{"10.0.0.7"}
	lc := container(lcPod, "server", 2000, 2000)
	batchPod := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
	batch := container(batchPod, "worker", 0, 0)
	ctx := context.Background()
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
	if admitted, _, _, _, _ := good.snapshot(); len(admitted) != 0 {
		t.Fatalf("admitted at creation: %v; a container is admitted to dimensions once it started", admitted)
	}
	for _, pc := range []struct {
		p *api.PodSandbox
		c *api.Container
	}{{lcPod, lc}, {batchPod, batch}} {
		if err := rt.r.StartContainer(ctx, &api.StartContainerRequest{Pod: pc.p, Container: pc.c}); err != nil {
			t.Fatal(err)
		}
	}

	waitFor(t, 3*time.Second, "both members admitted and three periods applied", func() bool {
		admitted, _, observed, applied, _ := good.snapshot()
		return len(admitted) == 2 && observed >= 3 && applied >= 3
	})
	admitted, _, _, _, last := good.snapshot()
	m := admitted[lc.Id]
	if m.Pool != isolation.PoolLatencyCritical || m.Pod != "prod/api" || len(m.PodIPs) != 1 || m.PodIPs[0] != "10.0.0.7" ||
		m.Cgroup == nil || m.CgroupsPath != lc.Linux.CgroupsPath || m.Annotations["strata.io/pool"] != isolation.PoolLatencyCritical {
		t.Errorf("latency-critical member as the dimension sees it: %+v", m)
	}
	if _, err := m.Pids(); err != nil {
		t.Errorf("member pids: %v", err)
	}
	if admitted[batch.Id].Pool != isolation.PoolBatch {
		t.Errorf("batch member admitted in pool %q", admitted[batch.Id].Pool)
	}
	st := h.plugin.Status()
	for _, ps := range st.Pools {
		if last[ps.Name] != ps.CPUs {
			t.Errorf("pool %s: dimension applied a section with CPUs %q, status says %q", ps.Name, last[ps.Name], ps.CPUs)
		}
	}

	// The failing dimension got the same calls and errs; the loop went on.
	fadm, _, fobs, _, _ := failing.snapshot()
	if len(fadm) != 2 || fobs < 3 {
		t.Errorf("failing dimension: %d admissions, %d observations; it must be called like the others", len(fadm), fobs)
	}

	// Stop the batch member: removed from the dimensions.
	if _, err := rt.r.StopContainer(ctx, &api.StopContainerRequest{Pod: batchPod, Container: batch}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "batch member removed", func() bool {
		_, removed, _, _, _ := good.snapshot()
		return len(removed) == 1 && removed[0] == batch.Id
	})
	_, _, _, before, _ := good.snapshot()
	waitFor(t, 2*time.Second, "the loop keeps applying", func() bool {
		_, _, _, n, _ := good.snapshot()
		return n >= before+2
	})
	if good.overlap || failing.overlap {
		t.Error("a controller's hooks ran concurrently")
	}

	byName := map[string]DimensionStatus{}
	for _, d := range h.plugin.Status().Dimensions {
		byName[d.Name] = d
	}
	if d := byName["good"]; d.State != dimRunning || d.LastError != "" || d.Summary != "1 members" {
		t.Errorf("good dimension status %+v", d)
	}
	if d := byName["failing"]; d.State != dimRunning || !strings.Contains(d.LastError, "panic: apply") {
		t.Errorf("failing dimension status %+v; want running with the apply panic as last error", d)
	}
	if d := byName["absent"]; d.State != dimNotSupported || !strings.Contains(d.Reason, "no clsact qdisc") {
		t.Errorf("unsupported dimension status %+v", d)
	}
	if absent.started {
		t.Error("an unsupported dimension was started")
	}
	var b strings.Builder
	h.plugin.Status().Print(&b)
	for _, want := range []string{"DIMENSION", "absent", "not supported", "no clsact qdisc", "class 1:30"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, b.String())
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
