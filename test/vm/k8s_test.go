package vm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/internal/testutil"
	e2e "github.com/strata-nri/strata/test/e2e/harness"
	k8s "github.com/strata-nri/strata/test/k8s/harness"
	vm "github.com/strata-nri/strata/test/vm"
)

// K8sEnv set to 0 leaves TestVMKubernetes out (as STRATA_VM_E2E=0 does
// TestVM's e2e run). Warm it takes about 5 min: 1 min to build the
// guest's node and start the control plane, 4 min of guest (2026-12-02,
// at load 7-30: boot event after 6 s, the tests 55, 107 and 79 s, power-off
// at 4m9s).
const K8sEnv = "STRATA_VM_K8S"

// k8sTests are the Kubernetes tier's tests (test/k8s) run on the cgroup v2
// guest's kubelet: QoS classes → pools, in-place resize, the burner with
// the kubelet-update race. They assume a 2-CPU node, as on the host.
var k8sTests = []string{"TestE2EK8sQoSPools", "TestE2EK8sResize", "TestE2EK8sBurnerAndRace"}

// TestVMKubernetes runs the Kubernetes tier on cgroup v2: the control
// plane (etcd, kube-apiserver, controller manager, scheduler) on the host,
// and in a 2-vCPU guest with a NIC on qemu's user network the node —
// containerd 2.4.2 (static), runc, Strata and the kubelet, from a second
// virtio disk — driven by the host's own k8s tests, which reach the API
// server at vm.HostIP (k8s.RemoteEnv) and branch on the cgroup mode where
// v1 and v2 differ.
func TestVMKubernetes(t *testing.T) {
	if os.Getenv(K8sEnv) == "0" {
		t.Skipf("%s=0", K8sEnv)
	}
	e2e.Require(t)
	requireQemu(t)
	start := time.Now()
	var rep *vm.Report
	// Registered first, so it runs last: after the control plane's log
	// tails, where a CI log's excerpt (its end) still shows it.
	t.Cleanup(func() { summarizeFailures(t, rep) })
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute) // the wait for the measure lock included
	defer cancel()
	root, work, kernel, initBin := guestBase(ctx, t)
	const rel = "test/k8s"
	pkg := vm.TestPackage{ImportPath: "github.com/strata-nri/strata/" + rel, Dir: filepath.Join(root, rel), Rel: rel}
	bin := filepath.Join(work, "k8s.test")
	if err := vm.BuildTestBinary(ctx, root, pkg, bin); err != nil {
		t.Fatal(err)
	}
	bins, err := e2e.BuildContainerd(ctx, e2e.BuildOptions{Version: e2eContainerd, Static: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	image, err := e2e.BuildImage(ctx, "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(work, "strata")
	if err := vm.BuildBinary(ctx, root, "./nri-plugin/cmd/strata", plugin); err != nil {
		t.Fatal(err)
	}
	runc := hostTool("runc")
	if runc == "" {
		t.Fatal("runc not found (apt package runc)")
	}
	cp := k8s.StartControlPlane(t, k8s.ControlPlaneOptions{Host: vm.HostIP, NodeIP: vm.GuestIP, Dir: filepath.Join(work, "cp"), Logf: t.Logf})

	const prebuilt, remote = "e2e", "k8s"
	disk := map[string]string{remote: cp.Remote}
	for p, h := range cp.Files {
		disk[filepath.Join(remote, p)] = h
	}
	for p, h := range e2e.PackPrebuilt([]e2e.Binaries{bins}, image, plugin) {
		disk[filepath.Join(prebuilt, p)] = h
	}
	// Limits sized to the stage: the three tests took 179–203 s in the
	// guest (2026-12-02); a test that hangs ends at -test.timeout with
	// every goroutine's stack, a guest that stops at vm.Options.Silence.
	run := vm.Run{
		Name: rel, Binary: bin, SourceDir: pkg.Dir, GuestDir: "/src/" + rel,
		Args: []string{"-test.run", "^(" + strings.Join(k8sTests, "|") + ")$", "-test.v", "-test.count=1", "-test.timeout", "10m"},
		Env: []string{
			e2e.PrebuiltEnv + "=" + filepath.Join(vm.FilesMount, prebuilt),
			k8s.RemoteEnv + "=" + filepath.Join(vm.FilesMount, remote),
			// The kubelet, containerd and runc under TCG: a container
			// starts in seconds, a runc update takes about one.
			k8s.TimeScaleEnv + "=4",
		},
		Timeout: 11 * time.Minute,
	}
	t.Logf("built the guest's node and started the control plane in %s", time.Since(start).Round(time.Second))
	rep, err = vm.Boot(ctx, vm.Options{
		Kernel: kernel, Init: initBin, WorkDir: work,
		CPUs: 2, MemoryMiB: 3072, Network: true,
		Runs:      []vm.Run{run},
		Files:     map[string]string{"/bin/runc": runc},
		DiskFiles: disk,
		Env:       []string{testutil.RequireKernelEnv + "=" + os.Getenv(testutil.RequireKernelEnv)},
		Timeout:   13 * time.Minute,
		Logf:      t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	reportRun(t, rep, rel, k8sTests)
	for _, p := range rep.Check(map[string][]string{rel: k8sTests}) {
		if strings.HasPrefix(p, "guest kernel panicked") || !strings.Contains(p, ": Test") && !strings.Contains(p, "test binary") && !strings.Contains(p, "never started") {
			t.Error(p)
		}
	}
	log, _ := os.ReadFile(filepath.Join(work, "console.log"))
	keep := filepath.Join(vm.DefaultCacheDir(), "last-k8s-console.log")
	if err := os.WriteFile(keep, log, 0o644); err == nil {
		t.Logf("guest console: %s", keep)
	}
	if t.Failed() {
		t.Logf("console tail:\n%s", tail(string(log), 80))
		t.Logf("kube-apiserver log tail:%s", tail(cp.Log("kube-apiserver"), 20))
	}
	t.Logf("guest: %v; %s; stage took %s", rep.Boot, rep.Summary(), time.Since(start).Round(time.Second))
}
