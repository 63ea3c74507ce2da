package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
)

// nriRuntime plays containerd and runc for the Strata scenarios: it is
// NRI's own runtime side (package adaptation, the code containerd embeds)
// serving on a private socket, and it writes every adjustment and update
// the plugin sends into the real cgroup of the container it names, as runc
// would. The plugin itself is the unmodified nri-plugin package running in
// a child process (role "strata"), so its admission, loop, drift repair and
// direct writes are the ones a node runs; only the container runtime is
// this stand-in. Pod sandboxes, images and namespaces do not exist here:
// a "container" is a cgroup holding benchmark processes.
type nriRuntime struct {
	r      *nri.Adaptation
	dir    string
	socket string

	mu   sync.Mutex
	ctrs map[string]*runtimeContainer
	pods map[string]*api.PodSandbox
	// failed counts updates the stand-in runc refused; errText keeps the
	// distinct messages (at most maxErrText).
	failed  int
	errText []string
	// trace, when set, records every update received (trace.go).
	trace *traceLog
}

type runtimeContainer struct {
	ctr *api.Container
	cg  *cgroup.Cgroup
	pod *api.PodSandbox
}

// quietNRI routes NRI's own runtime-side logs (info on every plugin
// connection) to a warnings-only logger, once per process.
var quietNRI = sync.OnceFunc(func() {
	nriplugin.RouteNRILogs(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
})

func newNRIRuntime(trace *traceLog) (*nriRuntime, error) {
	quietNRI()
	dir, err := os.MkdirTemp("", "strata-colocation-nri-")
	if err != nil {
		return nil, err
	}
	rt := &nriRuntime{dir: dir, socket: filepath.Join(dir, "nri.sock"), trace: trace,
		ctrs: map[string]*runtimeContainer{}, pods: map[string]*api.PodSandbox{}}
	sync := func(ctx context.Context, cb nri.SyncCB) error {
		rt.mu.Lock()
		var pods []*api.PodSandbox
		var ctrs []*api.Container
		for _, p := range rt.pods {
			pods = append(pods, p)
		}
		for _, c := range rt.ctrs {
			ctrs = append(ctrs, c.ctr)
		}
		rt.mu.Unlock()
		updates, err := cb(ctx, pods, ctrs)
		if err == nil {
			_, _ = rt.update(updates)
		}
		return err
	}
	update := func(_ context.Context, u []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) {
		return rt.update(u)
	}
	// Private plugin and configuration directories: no pre-installed plugin
	// of the host is launched.
	for _, d := range []string{"plugins", "conf.d"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	r, err := nri.New("containerd", "v2.4.2", sync, update, nri.WithSocketPath(rt.socket),
		nri.WithPluginPath(filepath.Join(dir, "plugins")), nri.WithPluginConfigPath(filepath.Join(dir, "conf.d")))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := r.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	rt.r = r
	return rt, nil
}

func (rt *nriRuntime) stop() {
	rt.r.Stop()
	os.RemoveAll(rt.dir)
}

// update applies the plugin's updates to the containers' cgroups. As
// containerd does, an update marked IgnoreFailure that fails (a vanished
// container, a refused write) is returned in failed rather than failing
// the batch; any other failure is the error.
func (rt *nriRuntime) update(us []*api.ContainerUpdate) (failed []*api.ContainerUpdate, err error) {
	var errs, ignored []error
	for _, u := range us {
		recv := time.Now()
		rt.mu.Lock()
		c := rt.ctrs[u.GetContainerId()]
		rt.mu.Unlock()
		res := u.GetLinux().GetResources()
		var uerr error
		switch {
		case c == nil:
			uerr = fmt.Errorf("update of container %s: no such container", u.GetContainerId())
		default:
			if werr := runcApply(c.cg, res); werr != nil {
				uerr = fmt.Errorf("update of container %s: %w", u.GetContainerId(), werr)
			} else {
				rt.mu.Lock()
				mergeResources(c.ctr.Linux.Resources, res)
				rt.mu.Unlock()
			}
		}
		if rt.trace != nil {
			rt.trace.update(updateRecord{id: u.GetContainerId(), cpus: cpusIn(res), recv: recv, written: time.Now()})
		}
		if uerr == nil {
			continue
		}
		if u.GetIgnoreFailure() {
			failed = append(failed, u)
			ignored = append(ignored, uerr)
		} else {
			errs = append(errs, uerr)
		}
	}
	if n := len(errs) + len(ignored); n > 0 {
		rt.mu.Lock()
		rt.failed += n
		for _, e := range append(errs, ignored...) {
			if len(rt.errText) < maxErrText && !slices.Contains(rt.errText, e.Error()) {
				rt.errText = append(rt.errText, e.Error())
			}
		}
		rt.mu.Unlock()
	}
	return failed, errors.Join(errs...)
}

const maxErrText = 4

// cpusIn is the number of CPUs in res's cpuset, 0 when it carries none.
func cpusIn(res *api.LinuxResources) int {
	set, err := cpuset.Parse(res.GetCpu().GetCpus())
	if err != nil {
		return 0
	}
	return set.Size()
}

// runcApply writes the CPU and memory resources of an adjustment or update
// into cg as runc's cgroupfs manager does: controller by controller in
// its order (cpuset, memory, cpu), stopping at the first refused write —
// so a refused cpu.shares leaves the cpuset already changed, as on a node.
func runcApply(cg *cgroup.Cgroup, res *api.LinuxResources) error {
	if res == nil {
		return nil
	}
	cpu := res.GetCpu()
	if s := cpu.GetMems(); s != "" {
		m, err := cpuset.Parse(s)
		if err != nil {
			return fmt.Errorf("cpuset mems %q: %w", s, err)
		}
		if err := cg.SetCPUSetMems(m); err != nil {
			return err
		}
	}
	if s := cpu.GetCpus(); s != "" {
		c, err := cpuset.Parse(s)
		if err != nil {
			return fmt.Errorf("cpuset cpus %q: %w", s, err)
		}
		if err := cg.SetCPUSetCPUs(c); err != nil {
			return err
		}
	}
	if v := res.GetMemory().GetLimit(); v != nil {
		if err := cg.SetMemoryLimit(v.GetValue()); err != nil {
			return err
		}
	}
	// 0 shares mean "none" to runc, which then writes no weight: the
	// plugin gives idle members 0, since the kernel refuses a weight on
	// an idle group.
	if v := cpu.GetShares(); v != nil && v.GetValue() != 0 {
		if err := cg.SetCPUShares(v.GetValue()); err != nil {
			return err
		}
	}
	if q := cpu.GetQuota(); q != nil {
		period := uint64(100000)
		if p := cpu.GetPeriod(); p != nil && p.GetValue() > 0 {
			period = p.GetValue()
		}
		if err := cg.SetCPUQuota(q.GetValue(), period); err != nil {
			return err
		}
	}
	return nil
}

func mergeResources(dst, src *api.LinuxResources) {
	if src == nil || dst == nil {
		return
	}
	if c := src.GetCpu(); c != nil {
		if dst.Cpu == nil {
			dst.Cpu = &api.LinuxCPU{}
		}
		if c.Cpus != "" {
			dst.Cpu.Cpus = c.Cpus
		}
		if c.Mems != "" {
			dst.Cpu.Mems = c.Mems
		}
		if c.Shares != nil {
			dst.Cpu.Shares = c.Shares
		}
		if c.Quota != nil {
			dst.Cpu.Quota = c.Quota
		}
		if c.Period != nil {
			dst.Cpu.Period = c.Period
		}
	}
	if m := src.GetMemory(); m != nil {
		if dst.Memory == nil {
			dst.Memory = &api.LinuxMemory{}
		}
		if m.Limit != nil {
			dst.Memory.Limit = m.Limit
		}
	}
}

// waitPlugin blocks until a plugin registered and synchronized: the
// runtime relays events to a plugin only after its Synchronize returned, so
// it probes with a throwaway container until a creation comes back with
// Strata's pool annotation.
func (rt *nriRuntime) waitPlugin(ctx context.Context, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	probe := &api.PodSandbox{Id: "probe-pod", Name: "probe", Namespace: "probe", Uid: "probe"}
	for {
		c := &api.Container{Id: "probe", PodSandboxId: probe.Id, Name: "probe", Linux: &api.LinuxContainer{}}
		resp, err := rt.r.CreateContainer(ctx, &api.CreateContainerRequest{Pod: probe, Container: c})
		_ = rt.r.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: probe, Container: c})
		if err == nil && resp.GetAdjust().GetAnnotations()[nriplugin.AnnotationAssignedPool] != "" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the strata plugin did not register and synchronize within %s (last: %v)", patience, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// containerSpec is a container as the kubelet would ask for it.
type containerSpec struct {
	name, namespace string
	annotations     map[string]string
	cpuRequestMilli int64 // 0: BestEffort (cpu.shares 2)
	cg              *cgroup.Cgroup
}

// create runs the container's creation through the plugin and writes the
// adjustment into its cgroup. The container is "created": start it with
// start once its processes are in the cgroup.
func (rt *nriRuntime) create(ctx context.Context, s containerSpec) (string, error) {
	shares := uint64(2)
	if s.cpuRequestMilli > 0 {
		shares = uint64(s.cpuRequestMilli * 1024 / 1000)
	}
	id := s.namespace + "-" + s.name
	pod := &api.PodSandbox{Id: "pod-" + id, Name: s.name, Uid: "uid-" + id, Namespace: s.namespace, Annotations: s.annotations}
	ctr := &api.Container{Id: id, PodSandboxId: pod.Id, Name: s.name, State: api.ContainerState_CONTAINER_CREATED,
		Annotations: map[string]string{},
		Linux: &api.LinuxContainer{CgroupsPath: s.cg.Path(), Resources: &api.LinuxResources{
			Cpu: &api.LinuxCPU{Shares: api.UInt64(shares), Period: api.UInt64(100000)}}}}
	// What runc writes from the container's own spec first.
	if err := runcApply(s.cg, ctr.Linux.Resources); err != nil {
		return "", fmt.Errorf("container %s: %w", id, err)
	}
	rt.mu.Lock()
	rt.ctrs[id] = &runtimeContainer{ctr: ctr, cg: s.cg, pod: pod}
	rt.pods[pod.Id] = pod
	rt.mu.Unlock()
	resp, err := rt.r.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		rt.forget(id)
		return "", fmt.Errorf("container %s: %w", id, err)
	}
	adj := resp.GetAdjust()
	rt.mu.Lock()
	for k, v := range adj.GetAnnotations() {
		ctr.Annotations[k] = v
	}
	mergeResources(ctr.Linux.Resources, adj.GetLinux().GetResources())
	if o := adj.GetLinux().GetOomScoreAdj(); o != nil {
		ctr.Linux.OomScoreAdj = o
	}
	rt.mu.Unlock()
	if err := runcApply(s.cg, adj.GetLinux().GetResources()); err != nil {
		return "", fmt.Errorf("container %s: adjustment: %w", id, err)
	}
	// Updates the creation implied for this very container.
	if _, err := rt.update(resp.GetUpdate()); err != nil {
		return "", err
	}
	return id, nil
}

// start tells the plugin the container runs (its processes are in its
// cgroup), after setting their oom_score_adj from the adjustment as runc
// would.
func (rt *nriRuntime) start(ctx context.Context, id string) error {
	rt.mu.Lock()
	c := rt.ctrs[id]
	rt.mu.Unlock()
	if c == nil {
		return fmt.Errorf("start %s: no such container", id)
	}
	if o := c.ctr.Linux.GetOomScoreAdj(); o != nil {
		pids, err := c.cg.Procs()
		if err != nil {
			return err
		}
		for _, pid := range pids {
			f := fmt.Sprintf("/proc/%d/oom_score_adj", pid)
			if err := os.WriteFile(f, []byte(strconv.Itoa(int(o.GetValue()))), 0); err != nil {
				return fmt.Errorf("start %s: %w", id, err)
			}
		}
	}
	rt.mu.Lock()
	c.ctr.State = api.ContainerState_CONTAINER_RUNNING
	rt.mu.Unlock()
	if err := rt.r.StartContainer(ctx, &api.StartContainerRequest{Pod: c.pod, Container: c.ctr}); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return rt.r.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: c.pod, Container: c.ctr})
}

// remove stops and removes the container, relaying both events.
func (rt *nriRuntime) remove(ctx context.Context, id string) error {
	rt.mu.Lock()
	c := rt.ctrs[id]
	rt.mu.Unlock()
	if c == nil {
		return nil
	}
	rt.mu.Lock()
	c.ctr.State = api.ContainerState_CONTAINER_STOPPED
	rt.mu.Unlock()
	resp, err := rt.r.StopContainer(ctx, &api.StopContainerRequest{Pod: c.pod, Container: c.ctr})
	if err == nil {
		_, _ = rt.update(resp.GetUpdate())
	}
	rerr := rt.r.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: c.pod, Container: c.ctr})
	rt.forget(id)
	return errors.Join(err, rerr)
}

func (rt *nriRuntime) forget(id string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if c := rt.ctrs[id]; c != nil {
		delete(rt.pods, c.pod.Id)
	}
	delete(rt.ctrs, id)
}

// updateErrors returns how many updates failed to apply so far, and their
// distinct messages.
func (rt *nriRuntime) updateErrors() (int, []string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.failed, slices.Clone(rt.errText)
}
