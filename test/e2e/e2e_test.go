package e2e_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/strata-nri/strata/test/e2e/cri"
	"github.com/strata-nri/strata/test/e2e/harness"
)

// TestE2EHarnessLifecycle runs a busybox container through its whole life on
// containerd 2.4.2 without plugins: the resources it was given reach its
// cgroup, ExecSync works, an update reaches the cgroup, the container
// survives a containerd restart with the same process, and Close leaves no
// cgroup or run directory behind.
func TestE2EHarnessLifecycle(t *testing.T) {
	env := harness.Start(t, harness.Options{ContainerdVersion: "2.4.2"})
	checkLifecycle(t, env)
}

// TestE2EHarnessNoopPlugin is the lifecycle with the no-op NRI plugin
// connected: the plugin registers, sees the container being created,
// reconnects by itself after a containerd restart and sees new containers
// again, and registers again after its own restart.
func TestE2EHarnessNoopPlugin(t *testing.T) {
	checkWithNoopPlugin(t, "2.4.2")
}

// TestE2EHarnessContainerd21 is the same on containerd 2.1.4, whose NRI
// (v0.8.0) is the oldest protocol Strata's plugin must speak.
func TestE2EHarnessContainerd21(t *testing.T) {
	checkWithNoopPlugin(t, "2.1.4")
}

// TestE2EHarnessContainerd17 is the same on containerd 1.7.35 (NRI v0.8.0,
// off by default in 1.7 and enabled by the harness's version 2 config): the
// oldest release line an operator may still run.
func TestE2EHarnessContainerd17(t *testing.T) {
	checkWithNoopPlugin(t, "1.7.35")
}

func checkWithNoopPlugin(t *testing.T, version string) {
	ctx := context.Background()
	harness.Require(t)
	bin, err := harness.GoBuild(ctx, "./test/e2e/noopplugin", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := harness.Start(t, harness.Options{
		ContainerdVersion: version,
		Plugins:           []harness.Plugin{{Path: bin, Args: []string{"-v"}, Name: "noop", Index: "10"}},
	})
	// Start returned, so containerd logged the plugin as connected and
	// synchronized; the plugin's own log must agree.
	waitPluginLog(t, env, "synchronize: ")

	w, err := env.RunContainer(ctx, cri.PodOptions{Name: "noop-1"}, cri.ContainerOptions{Name: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	waitPluginLog(t, env, "create container default/noop-1/c1 ("+w.ContainerID+")")
	waitPluginLog(t, env, "start container default/noop-1/c1 ("+w.ContainerID+")")
	checkLifecycle(t, env)

	// After a containerd restart the plugin must come back on its own and
	// see the containers that exist.
	since := env.ContainerdLogSize()
	if err := env.RestartContainerd(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitPluginRegistered(ctx, 0, since, 20*time.Second); err != nil {
		t.Fatalf("plugin did not reconnect after containerd restart: %v", err)
	}
	w2, err := env.RunContainer(ctx, cri.PodOptions{Name: "noop-2"}, cri.ContainerOptions{Name: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	waitPluginLog(t, env, "create container default/noop-2/c2 ("+w2.ContainerID+")")

	if err := env.RestartPlugin(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !env.PluginRunning(0) {
		t.Fatal("plugin not running after RestartPlugin")
	}
}

func waitPluginLog(t *testing.T, env *harness.Env, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err := env.PluginLog(0)
		if err == nil && strings.Contains(log, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin log has no %q after 10s:\n%s", want, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkLifecycle(t *testing.T, env *harness.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const shares, quota, period, memLimit = 512, 50000, 100000, 64 << 20
	start := time.Now()
	w, err := env.RunContainer(ctx, cri.PodOptions{
		Name:        "lifecycle",
		Labels:      map[string]string{"app": "sleep"},
		Annotations: map[string]string{"strata.io/test": "lifecycle"},
	}, cri.ContainerOptions{
		Name:    "sleeper",
		Command: []string{"sleep", "3600"},
		Resources: &runtimeapi.LinuxContainerResources{
			CpuShares: shares, CpuQuota: quota, CpuPeriod: period, MemoryLimitInBytes: memLimit,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod + container created and started in %s", time.Since(start).Round(time.Millisecond))

	st, err := env.CRI().ContainerStatus(ctx, w.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.Pid <= 0 {
		t.Fatalf("container %s: state %v pid %d, want running with a pid", w.ContainerID, st.State, st.Pid)
	}
	if want := env.CgroupParent("lifecycle") + "/" + w.ContainerID; st.CgroupsPath != want {
		t.Errorf("cgroupsPath = %q, want %q", st.CgroupsPath, want)
	}
	cg, err := env.Cgroup(ctx, w.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	procs, err := cg.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if !containsInt(procs, st.Pid) {
		t.Errorf("container pid %d not in its cgroup %s (procs %v)", st.Pid, cg.Path(), procs)
	}
	if got, err := cg.CPUShares(); err != nil || got != shares {
		t.Errorf("cpu shares = %d, %v; want %d", got, err, shares)
	}
	if q, p, err := cg.CPUQuota(); err != nil || q != quota || p != period {
		t.Errorf("cpu quota = %d/%d, %v; want %d/%d", q, p, err, quota, period)
	}
	if got, err := cg.MemoryLimit(); err != nil || got != memLimit {
		t.Errorf("memory limit = %d, %v; want %d", got, err, memLimit)
	}

	res, err := env.CRI().ExecSync(ctx, w.ContainerID, []string{"sh", "-c", "echo hello; exit 3"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "hello\n" || res.ExitCode != 3 {
		t.Errorf("ExecSync = %q exit %d, want \"hello\\n\" exit 3", res.Stdout, res.ExitCode)
	}

	if err := env.CRI().UpdateContainerResources(ctx, w.ContainerID, &runtimeapi.LinuxContainerResources{
		CpuShares: 256, CpuQuota: quota, CpuPeriod: period, MemoryLimitInBytes: memLimit,
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := cg.CPUShares(); err != nil || got != 256 {
		t.Errorf("cpu shares after update = %d, %v; want 256", got, err)
	}

	if err := env.RestartContainerd(ctx); err != nil {
		t.Fatal(err)
	}
	st2, err := env.CRI().ContainerStatus(ctx, w.ContainerID)
	if err != nil {
		t.Fatalf("container lost across containerd restart: %v", err)
	}
	if st2.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st2.Pid != st.Pid {
		t.Errorf("after restart: state %v pid %d, want running with pid %d", st2.State, st2.Pid, st.Pid)
	}
	list, err := env.CRI().ListContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !containsContainer(list, w.ContainerID) {
		t.Errorf("ListContainers after restart lacks %s", w.ContainerID)
	}

	if err := env.CRI().StopContainer(ctx, w.ContainerID, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := env.CRI().RemoveContainer(ctx, w.ContainerID); err != nil {
		t.Fatal(err)
	}
	if cg.Exists() {
		t.Errorf("cgroup %s still exists after the container was removed", cg.Path())
	}
	if err := env.CRI().StopPod(ctx, w.Pod.ID); err != nil {
		t.Fatal(err)
	}
	if err := env.CRI().RemovePod(ctx, w.Pod.ID); err != nil {
		t.Fatal(err)
	}
}

// TestE2EHarnessClose checks that Close removes what a run made even with
// pods still running: the run's cgroup tree, its directory, its processes.
func TestE2EHarnessClose(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	ctx := context.Background()
	var pids []int
	for i := 0; i < 6; i++ {
		w, err := env.RunContainer(ctx, cri.PodOptions{Name: "left-running-" + strconv.Itoa(i)}, cri.ContainerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := env.CRI().ContainerStatus(ctx, w.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, st.Pid)
	}
	root, err := env.Hierarchy().Open(env.State().CgroupRoot)
	if err != nil {
		t.Fatal(err)
	}
	if !root.Exists() {
		t.Fatalf("run cgroup %s missing while a pod runs", root.Path())
	}
	state := env.State()
	if err := env.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if root.Exists() {
		t.Errorf("run cgroup %s still exists after Close", root.Path())
	}
	if _, err := os.Stat(state.Dir); !os.IsNotExist(err) {
		t.Errorf("run dir %s still exists after Close (stat: %v)", state.Dir, err)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("container process %d survived Close", pid)
		}
	}
	if !gone(state.ContainerdPID) {
		t.Errorf("containerd %d survived Close", state.ContainerdPID)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func containsContainer(list []*runtimeapi.Container, id string) bool {
	for _, c := range list {
		if c.Id == id {
			return true
		}
	}
	return false
}

// gone reports whether pid has exited within 5 s. A zombie counts as gone:
// it has exited, and whether its parent (often PID 1 here) reaps it is not
// the harness's business.
func gone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
