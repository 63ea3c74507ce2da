package nriplugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// fakeNode is a machine made of fixture trees: sysfs of a real topology
// shape and a cgroup v1 tree, so the plugin runs unprivileged anywhere.
type fakeNode struct {
	sysfs string
	tree  *cgrouptest.Tree
	h     *cgroup.Hierarchy
	topo  *strcpuset.Topology
}

func newFakeNode(t testing.TB, shape cpusettest.Shape) *fakeNode {
	t.Helper()
	n := &fakeNode{sysfs: cpusettest.Root(t, shape)}
	topo, err := strcpuset.Discover(n.sysfs)
	if err != nil {
		t.Fatal(err)
	}
	n.topo = topo
	if n.tree, err = cgrouptest.New(t.TempDir(), cgroup.V1, topo.Online().String(), "0"); err != nil {
		t.Fatal(err)
	}
	if n.h, err = n.tree.Hierarchy(); err != nil {
		t.Fatal(err)
	}
	return n
}

// trusting is the default configuration with the latency-critical pool
// open to namespace prod, where the tests' latency-critical pods live.
func trusting() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"prod"}}
	return cfg
}

func quietLogger() *slog.Logger {
	if os.Getenv("STRATA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// runtime is NRI's own runtime side (the code containerd embeds), serving
// on a temporary socket; the plugin connects to it as to containerd.
type runtime struct {
	r       *nri.Adaptation
	socket  string
	mu      sync.Mutex
	pods    []*api.PodSandbox
	ctrs    []*api.Container
	updated []*api.ContainerUpdate
	// runc, when set, plays the OCI runtime: it is given the resources of
	// each adjustment and update, to write them into a fixture cgroup.
	runc func(c *api.Container, res *api.LinuxResources) error
	// spec, when set, makes the runtime keep each container's resources
	// as containerd keeps its OCI spec, and hand runc all of them: the
	// adjustment's fields replace the request's at creation; an update's
	// non-zero fields replace the spec's (containerd's WithResources
	// skips zeros) and runc gets the whole result; an update runc refuses
	// leaves the spec as it was. refused counts those.
	spec    bool
	refused int
}

func newRuntime(t testing.TB) *runtime {
	t.Helper()
	rt := &runtime{socket: filepath.Join(t.TempDir(), "nri.sock")}
	sync := func(ctx context.Context, cb nri.SyncCB) error {
		rt.mu.Lock()
		pods, ctrs := rt.pods, rt.ctrs
		rt.mu.Unlock()
		_, err := cb(ctx, pods, ctrs)
		return err
	}
	update := func(_ context.Context, u []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		rt.updated = append(rt.updated, u...)
		// Apply them, as containerd would, so later Synchronize calls
		// report what containers run on now.
		for _, up := range u {
			for _, c := range rt.ctrs {
				if c.Id != up.GetContainerId() {
					continue
				}
				if rt.spec {
					old := proto.Clone(c.Linux.Resources).(*api.LinuxResources)
					mergeUpdate(c.Linux.Resources, up.GetLinux().GetResources())
					if rt.runc != nil && rt.runc(c, c.Linux.Resources) != nil {
						c.Linux.Resources = old
						rt.refused++
					}
					continue
				}
				if cpus := up.GetLinux().GetResources().GetCpu().GetCpus(); cpus != "" {
					c.Linux.Resources.Cpu.Cpus = cpus
				}
				if rt.runc != nil {
					_ = rt.runc(c, up.GetLinux().GetResources())
				}
			}
		}
		return nil, nil
	}
	r, err := nri.New("fake-runtime", "v0.0.0", sync, update,
		nri.WithSocketPath(rt.socket), nri.WithPluginPath(t.TempDir()), nri.WithPluginConfigPath(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	rt.r = r
	return rt
}

// patience bounds waits on observable conditions. It is generous: a wait
// returns as soon as its condition holds, and a starved CPU (a 10 % CPU
// quota, a loaded CI machine) only makes it take longer.
const patience = 30 * time.Second

type harness struct {
	node   *fakeNode
	rt     *runtime
	plugin *Plugin
	cancel context.CancelFunc
	done   chan struct{}
}

func startPlugin(t testing.TB, node *fakeNode, rt *runtime, cfg *isolation.Config, more ...func(*Options)) *harness {
	t.Helper()
	opts := Options{SocketPath: rt.socket, Config: cfg, SysfsRoot: node.sysfs, ProcRoot: filepath.Join(node.tree.Dir, "proc"),
		Cgroups: node.h, Logger: quietLogger(), ReconnectDelay: 50 * time.Millisecond}
	for _, f := range more {
		f(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{node: node, rt: rt, plugin: p, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(h.done); _ = p.Run(ctx) }()
	t.Cleanup(h.stop)
	// The runtime adds a plugin to those it relays events to only after
	// Synchronize returned: probe until a creation reaches the plugin.
	deadline := time.Now().Add(patience)
	probe := &api.PodSandbox{Id: "probe-pod", Name: "probe", Namespace: "probe", Uid: "probe"}
	for {
		c := &api.Container{Id: "probe", PodSandboxId: probe.Id, Name: "probe", Linux: &api.LinuxContainer{}}
		resp, err := rt.r.CreateContainer(context.Background(), &api.CreateContainerRequest{Pod: probe, Container: c})
		_ = rt.r.RemoveContainer(context.Background(), &api.RemoveContainerRequest{Pod: probe, Container: c})
		if err == nil && resp.GetAdjust().GetAnnotations()[AnnotationAssignedPool] != "" {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin did not register and synchronize within %v", patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

var seq int

func pod(ns, name string, annotations map[string]string) *api.PodSandbox {
	seq++
	return &api.PodSandbox{Id: fmt.Sprintf("pod-%d", seq), Name: name, Uid: fmt.Sprintf("uid-%d", seq), Namespace: ns, Annotations: annotations}
}

// container builds a container the way containerd reports one created by
// the kubelet: shares from the CPU request, quota from the limit.
func container(p *api.PodSandbox, name string, cpuMilli, limitMilli int64) *api.Container {
	seq++
	res := &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(uint64(cpuMilli * 1024 / 1000)), Period: api.UInt64(100000)}}
	if limitMilli > 0 {
		res.Cpu.Quota = api.Int64(limitMilli * 100)
	}
	return &api.Container{Id: fmt.Sprintf("ctr-%d", seq), PodSandboxId: p.Id, Name: name, State: api.ContainerState_CONTAINER_CREATED,
		Linux: &api.LinuxContainer{Resources: res, CgroupsPath: "/kubepods/" + p.Uid + "/" + fmt.Sprintf("ctr-%d", seq)}}
}

// startRunning adds c's cgroup to the fixture tree, puts a fake process of
// each of pids in it (fakeProcess, oom_score_adj 0), creates and starts c
// through the plugin, and marks it running, as the runtime then reports it.
func (rt *runtime) startRunning(t testing.TB, node *fakeNode, p *api.PodSandbox, c *api.Container, pids ...int) {
	t.Helper()
	if err := node.tree.AddCgroup(c.Linux.CgroupsPath); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		fakeProcess(t, node, c.Linux.CgroupsPath, pid, 0)
	}
	if _, err := rt.create(t, p, c); err != nil {
		t.Fatal(err)
	}
	if err := rt.r.StartContainer(context.Background(), &api.StartContainerRequest{Pod: p, Container: c}); err != nil {
		t.Fatal(err)
	}
	c.State = api.ContainerState_CONTAINER_RUNNING
}

func (rt *runtime) create(t testing.TB, p *api.PodSandbox, c *api.Container) (*api.CreateContainerResponse, error) {
	t.Helper()
	resp, err := rt.r.CreateContainer(context.Background(), &api.CreateContainerRequest{Pod: p, Container: c})
	if err == nil {
		// What the runtime would now report for this container.
		applyAdjustment(c, resp.GetAdjust())
		rt.mu.Lock()
		res := resp.GetAdjust().GetLinux().GetResources()
		if rt.spec {
			adjustSpec(c.Linux.Resources, res)
			res = c.Linux.Resources
		}
		if rt.runc != nil {
			if err := rt.runc(c, res); err != nil {
				t.Errorf("runc refused to create container %s: %v", c.GetId(), err)
			}
		}
		rt.pods = append(rt.pods, p)
		rt.ctrs = append(rt.ctrs, c)
		rt.mu.Unlock()
	}
	return resp, err
}

func applyAdjustment(c *api.Container, a *api.ContainerAdjustment) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	for k, v := range a.GetAnnotations() {
		c.Annotations[k] = v
	}
	if cpus := a.GetLinux().GetResources().GetCpu().GetCpus(); cpus != "" {
		c.Linux.Resources.Cpu.Cpus = cpus
	}
	if mems := a.GetLinux().GetResources().GetCpu().GetMems(); mems != "" {
		c.Linux.Resources.Cpu.Mems = mems
	}
}

// adjustSpec applies a creation adjustment's CPU, memory and unified
// fields to a container's spec resources, as NRI's spec generator does:
// every field the adjustment sets replaces the request's, zeros included.
func adjustSpec(spec, adj *api.LinuxResources) {
	if spec.Cpu == nil {
		spec.Cpu = &api.LinuxCPU{}
	}
	if c := adj.GetCpu(); c != nil {
		if c.Shares != nil {
			spec.Cpu.Shares = api.UInt64(c.Shares.GetValue())
		}
		if c.Quota != nil {
			spec.Cpu.Quota = api.Int64(c.Quota.GetValue())
		}
		if c.Period != nil {
			spec.Cpu.Period = api.UInt64(c.Period.GetValue())
		}
		if c.Cpus != "" {
			spec.Cpu.Cpus = c.Cpus
		}
		if c.Mems != "" {
			spec.Cpu.Mems = c.Mems
		}
	}
	if m := adj.GetMemory(); m != nil {
		if spec.Memory == nil {
			spec.Memory = &api.LinuxMemory{}
		}
		if m.Limit != nil {
			spec.Memory.Limit = api.Int64(m.Limit.GetValue())
		}
		if m.Reservation != nil {
			spec.Memory.Reservation = api.Int64(m.Reservation.GetValue())
		}
	}
	for k, v := range adj.GetUnified() {
		if spec.Unified == nil {
			spec.Unified = map[string]string{}
		}
		spec.Unified[k] = v
	}
}

// mergeUpdate applies an update to a container's spec resources as
// containerd's CRI UpdateContainerResources does (opts.WithResources):
// only non-zero values replace the spec's, so an update cannot take a
// field out of the spec, and 0 shares leave the spec's shares.
func mergeUpdate(spec, up *api.LinuxResources) {
	if spec.Cpu == nil {
		spec.Cpu = &api.LinuxCPU{}
	}
	c := up.GetCpu()
	if v := c.GetShares().GetValue(); v != 0 {
		spec.Cpu.Shares = api.UInt64(v)
	}
	if v := c.GetQuota().GetValue(); v != 0 {
		spec.Cpu.Quota = api.Int64(v)
	}
	if v := c.GetPeriod().GetValue(); v != 0 {
		spec.Cpu.Period = api.UInt64(v)
	}
	if c.GetCpus() != "" {
		spec.Cpu.Cpus = c.GetCpus()
	}
	if c.GetMems() != "" {
		spec.Cpu.Mems = c.GetMems()
	}
	if v := up.GetMemory().GetLimit().GetValue(); v != 0 {
		if spec.Memory == nil {
			spec.Memory = &api.LinuxMemory{}
		}
		spec.Memory.Limit = api.Int64(v)
	}
	for k, v := range up.GetUnified() {
		if spec.Unified == nil {
			spec.Unified = map[string]string{}
		}
		spec.Unified[k] = v
	}
}

func TestCreateContainerPlacesPools(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	startPlugin(t, node, rt, trusting())

	lcPod := pod("prod", "frontend", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	lc := container(lcPod, "server", 2000, 2000)
	resp, err := rt.create(t, lcPod, lc)
	if err != nil {
		t.Fatal(err)
	}
	adj := resp.GetAdjust()
	if got := adj.GetAnnotations()[AnnotationAssignedPool]; got != isolation.PoolLatencyCritical {
		t.Fatalf("assigned pool annotation = %q", got)
	}
	cpus, err := cpuset.Parse(adj.GetLinux().GetResources().GetCpu().GetCpus())
	if err != nil || cpus.Size() != 2 {
		t.Fatalf("exclusive cpuset = %q (%v), want 2 CPUs", adj.GetLinux().GetResources().GetCpu().GetCpus(), err)
	}
	// On 2 sockets × 20 cores × 2 threads, 2 CPUs are one whole core: two
	// SMT siblings in one NUMA node.
	first, _ := node.topo.CPU(cpus.List()[0])
	if !cpus.Equals(first.Siblings) {
		t.Errorf("exclusive CPUs %s are not one whole core (siblings of %d: %s)", cpus, first.ID, first.Siblings)
	}
	if mems := node.topo.MemsFor(cpus); mems.Size() != 1 || adj.GetLinux().GetResources().GetCpu().GetMems() != mems.String() {
		t.Errorf("mems = %q, want the one NUMA node %s", adj.GetLinux().GetResources().GetCpu().GetMems(), mems)
	}
	if adj.GetAnnotations()[AnnotationExclusiveCPUs] != cpus.String() {
		t.Errorf("exclusive CPUs annotation = %q, want %s", adj.GetAnnotations()[AnnotationExclusiveCPUs], cpus)
	}

	batchPod := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
	resp, err = rt.create(t, batchPod, container(batchPod, "worker", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	adj = resp.GetAdjust()
	if adj.GetAnnotations()[AnnotationAssignedPool] != isolation.PoolBatch {
		t.Errorf("batch pod assigned %q", adj.GetAnnotations()[AnnotationAssignedPool])
	}
	bcpus, _ := cpuset.Parse(adj.GetLinux().GetResources().GetCpu().GetCpus())
	if bcpus.Size() == 0 || bcpus.Intersection(cpus).Size() != 0 {
		t.Errorf("batch cpuset %s must be non-empty and exclude the exclusive CPUs %s", bcpus, cpus)
	}
	// The batch profile is idle: the kernel sets an idle group's weight
	// and refuses writes of it, so the adjustment replaces the kubelet's
	// shares with 0, which runc does not write.
	if shares := adj.GetLinux().GetResources().GetCpu().GetShares(); shares == nil || shares.GetValue() != 0 {
		t.Errorf("batch CPU shares = %v, want 0 (idle: no weight for runc to write)", shares)
	}
}

func TestCreateContainerRefusesBadAnnotation(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	startPlugin(t, node, rt, trusting())
	p := pod("prod", "web", map[string]string{"strata.io/pool": "turbo"})
	_, err := rt.create(t, p, container(p, "c", 500, 0))
	if err == nil {
		t.Fatal("container with an unknown pool annotation was admitted")
	}
	for _, want := range []string{"strata.io/pool", "turbo", isolation.PoolLatencyCritical, isolation.PoolOnline, isolation.PoolBatch} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestCreateContainerAllowList(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	cfg := isolation.DefaultConfig()
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"prod"}}
	startPlugin(t, node, rt, cfg)

	p := pod("sandbox", "sneaky", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	_, err := rt.create(t, p, container(p, "c", 2000, 2000))
	// The error crosses the NRI protocol as text: it must say why and whom.
	if err == nil || !strings.Contains(err.Error(), isolation.ErrNotAllowed.Error()) || !strings.Contains(err.Error(), "sandbox/sneaky") {
		t.Fatalf("pod outside pool 0's allow-list: err = %v, want a refusal naming the pod and saying %q", err, isolation.ErrNotAllowed)
	}
	ok := pod("prod", "trusted", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	resp, err := rt.create(t, ok, container(ok, "c", 2000, 2000))
	if err != nil {
		t.Fatalf("pod inside the allow-list refused: %v", err)
	}
	if resp.GetAdjust().GetAnnotations()[AnnotationAssignedPool] != isolation.PoolLatencyCritical {
		t.Errorf("allowed pod assigned %q", resp.GetAdjust().GetAnnotations()[AnnotationAssignedPool])
	}
}

// TestRestartKeepsPools kills the plugin and starts a new one: the
// containers it had placed keep their pools and CPUs, exclusive and shared,
// rebuilt from their annotations and current cpusets at Synchronize.
func TestRestartKeepsPools(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	// A fast loop without shrink dwell: the idle pools shrink before the
	// restart, away from the layout a fresh admission would give, so the
	// test tells restoring from admitting anew.
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	cfg.Resize.ShrinkInterval = isolation.Duration{}
	h := startPlugin(t, node, rt, cfg)
	type placed struct{ pool, cpus string }
	want := map[string]placed{}
	var ids []string
	for i, x := range []struct {
		pool  string
		milli int64
	}{
		{isolation.PoolLatencyCritical, 2000}, // exclusive
		{isolation.PoolLatencyCritical, 1500}, // shared in pool 0
		{isolation.PoolOnline, 2500},
		{isolation.PoolBatch, 0},
	} {
		p := pod("prod", fmt.Sprintf("p%d", i), map[string]string{"strata.io/pool": x.pool})
		c := container(p, "c", x.milli, x.milli)
		if _, err := rt.create(t, p, c); err != nil {
			t.Fatal(err)
		}
		c.State = api.ContainerState_CONTAINER_RUNNING
		ids = append(ids, c.Id)
	}
	// Let the loop shrink the idle pools — until the runtime has received
	// new CPUs for the shared members of pool 0 and pool 1 — then record
	// every member's CPUs as the runtime has them.
	deadline := time.Now().Add(patience)
	for {
		_, lcMoved := rt.lastCPUs(ids[1])
		_, onMoved := rt.lastCPUs(ids[2])
		if lcMoved && onMoved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle pools did not shrink within %v", patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.stop()
	rt.mu.Lock()
	for _, c := range rt.ctrs {
		want[c.Id] = placed{c.Annotations[AnnotationAssignedPool], c.Linux.Resources.Cpu.Cpus}
	}
	rt.mu.Unlock()

	h2 := startPlugin(t, node, rt, cfg)
	h2.plugin.mu.Lock()
	defer h2.plugin.mu.Unlock()
	if len(h2.plugin.ctrs) != len(want) {
		t.Fatalf("restarted plugin knows %d containers, want %d", len(h2.plugin.ctrs), len(want))
	}
	for id, w := range want {
		m := h2.plugin.ctrs[id]
		if m == nil || m.pool != w.pool {
			t.Errorf("container %s: pool after restart %v, want %s", id, m, w.pool)
			continue
		}
		if m.cpus.String() != w.cpus {
			t.Errorf("container %s (pool %s): CPUs after restart %s, want %s as before", id, m.pool, m.cpus, w.cpus)
		}
	}
}

// proxy stands between the plugin and the runtime's socket. Restart cuts
// every connection, as a dying containerd does, and forwards new ones to
// another runtime socket.
type proxy struct {
	path   string
	mu     sync.Mutex
	target string
	conns  []net.Conn
	l      net.Listener
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	px := &proxy{path: filepath.Join(t.TempDir(), "proxy.sock"), target: target}
	l, err := net.Listen("unix", px.path)
	if err != nil {
		t.Fatal(err)
	}
	px.l = l
	t.Cleanup(func() { l.Close(); px.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			px.mu.Lock()
			target := px.target
			px.mu.Unlock()
			up, err := net.Dial("unix", target)
			if err != nil {
				c.Close()
				continue
			}
			px.mu.Lock()
			px.conns = append(px.conns, c, up)
			px.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return px
}

func (px *proxy) cut() {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, c := range px.conns {
		c.Close()
	}
	px.conns = nil
}

func (px *proxy) restart(target string) {
	px.mu.Lock()
	px.target = target
	px.mu.Unlock()
	px.cut()
}

// TestRuntimeRestartReconnects restarts the runtime under the plugin: the
// connection drops, a new runtime with the same containers comes up, the
// plugin reconnects with a fresh stub, re-synchronises, and no container
// changes pool or exclusive CPUs.
func TestRuntimeRestartReconnects(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	px := newProxy(t, rt.socket)
	sock := rt.socket
	rt.socket = px.path
	h := startPlugin(t, node, rt, trusting())
	rt.socket = sock
	p := pod("prod", "api", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	c := container(p, "c", 2000, 2000)
	if _, err := rt.create(t, p, c); err != nil {
		t.Fatal(err)
	}
	c.State = api.ContainerState_CONTAINER_RUNNING
	before := c.Annotations[AnnotationExclusiveCPUs]
	if before == "" {
		t.Fatal("no exclusive CPUs recorded")
	}

	rt2 := newRuntime(t)
	rt2.pods, rt2.ctrs = rt.pods, rt.ctrs
	px.restart(rt2.socket)
	// Wait for what the runtime sees: it relays a creation to the plugin
	// only once the plugin registered and its Synchronize returned. The
	// restored member is in the plugin's table by then.
	p2 := pod("prod", "next", map[string]string{"strata.io/pool": isolation.PoolBatch})
	deadline := time.Now().Add(patience)
	for {
		resp, err := rt2.r.CreateContainer(context.Background(), &api.CreateContainerRequest{Pod: p2, Container: container(p2, "c", 100, 0)})
		got := resp.GetAdjust().GetAnnotations()[AnnotationAssignedPool]
		if err == nil && got == isolation.PoolBatch {
			break
		}
		if err != nil || got != "" || time.Now().After(deadline) {
			t.Fatalf("create after reconnect: pool %q, %v (the runtime did not register the plugin again within %v)", got, err, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.plugin.mu.Lock()
	m := h.plugin.ctrs[c.Id]
	h.plugin.mu.Unlock()
	if m == nil || m.pool != isolation.PoolLatencyCritical || m.cpus.String() != before {
		t.Fatalf("after runtime restart: %+v, want pool %s cpus %s", m, isolation.PoolLatencyCritical, before)
	}
}

// TestRunWithRuntimeEnvironment starts the plugin the way a runtime starts a
// pre-installed one, with NRI_PLUGIN_NAME and NRI_PLUGIN_IDX set: it must
// register under those, not fail on setting the index twice.
func TestRunWithRuntimeEnvironment(t *testing.T) {
	t.Setenv("NRI_PLUGIN_NAME", "strata")
	t.Setenv("NRI_PLUGIN_IDX", "42")
	node := newFakeNode(t, cpusettest.VM2)
	rt := newRuntime(t)
	startPlugin(t, node, rt, trusting())
}

// TestPluginIdentity: the name and index come as the NRI stub finds them
// (the runtime's environment, else an "<idx>-<name>" binary name), else
// Strata's own; a bad index is refused at New, naming it.
func TestPluginIdentity(t *testing.T) {
	node := newFakeNode(t, cpusettest.VM2)
	newPlugin := func(o Options) (*Plugin, error) {
		o.SysfsRoot, o.ProcRoot, o.Cgroups, o.Logger = node.sysfs, filepath.Join(node.tree.Dir, "proc"), node.h, quietLogger()
		return New(o)
	}
	args := os.Args
	t.Cleanup(func() { os.Args = args })
	for _, tc := range []struct {
		argv0, envIdx, envName string
		opts                   Options
		idx, name              string
	}{
		{argv0: "/usr/bin/strata", idx: "50", name: "strata"},
		{argv0: "/opt/nri/plugins/42-strata", idx: "42", name: "strata"},
		{argv0: "/usr/bin/strata", envIdx: "07", envName: "qos", idx: "07", name: "qos"},
		{argv0: "/opt/nri/plugins/42-strata", opts: Options{PluginIdx: "60", PluginName: "mine"}, idx: "60", name: "mine"},
	} {
		os.Args = []string{tc.argv0}
		t.Setenv("NRI_PLUGIN_IDX", tc.envIdx)
		t.Setenv("NRI_PLUGIN_NAME", tc.envName)
		p, err := newPlugin(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if p.opts.PluginIdx != tc.idx || p.opts.PluginName != tc.name {
			t.Errorf("%s (env %q %q, options %q %q): %s-%s, want %s-%s", tc.argv0, tc.envIdx, tc.envName,
				tc.opts.PluginIdx, tc.opts.PluginName, p.opts.PluginIdx, p.opts.PluginName, tc.idx, tc.name)
		}
	}
	os.Args = []string{"/usr/bin/strata"}
	if _, err := newPlugin(Options{PluginIdx: "5"}); err == nil || !strings.Contains(err.Error(), `"5"`) {
		t.Errorf("index 5: err %v, want one naming it", err)
	}
}
