package nriplugin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
)

// A plugin on a fixture machine (a 2-socket, 20-core, SMT sysfs tree and a
// cgroup v1 tree) admits a latency-critical container with a 2-CPU request:
// it gets one whole core, exclusively. In production the runtime calls the
// handlers over NRI after Run connected; here the example calls one
// directly.
func Example() {
	dir, _ := os.MkdirTemp("", "strata-example")
	defer os.RemoveAll(dir)
	sysfs := filepath.Join(dir, "sys")
	_ = cpusettest.WriteSysfs(sysfs, cpusettest.Intel2S20C2T)
	tree, _ := cgrouptest.New(filepath.Join(dir, "cg"), cgroup.V1, "0-79", "0-1")
	h, _ := tree.Hierarchy()

	// Only namespace prod may ask for the latency-critical pool.
	cfg := isolation.DefaultConfig()
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"prod"}}
	p, err := nriplugin.New(nriplugin.Options{
		Config:    cfg,
		SysfsRoot: sysfs, Cgroups: h, ProcRoot: filepath.Join(tree.Dir, "proc"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	pod := &api.PodSandbox{Id: "p1", Name: "frontend", Namespace: "prod", Uid: "u1",
		Annotations: map[string]string{"strata.io/pool": isolation.PoolLatencyCritical}}
	ctr := &api.Container{Id: "c1", PodSandboxId: "p1", Name: "server", Linux: &api.LinuxContainer{
		Resources: &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(2048), Quota: api.Int64(200000), Period: api.UInt64(100000)}}}}
	adj, _, err := p.CreateContainer(context.Background(), pod, ctr)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("pool:", adj.GetAnnotations()[nriplugin.AnnotationAssignedPool])
	fmt.Println("cpus:", adj.GetLinux().GetResources().GetCpu().GetCpus(), "mems:", adj.GetLinux().GetResources().GetCpu().GetMems())
	fmt.Println("exclusive:", adj.GetAnnotations()[nriplugin.AnnotationExclusiveCPUs])
	// Output:
	// pool: latency-critical
	// cpus: 1,41 mems: 0
	// exclusive: 1,41
}
