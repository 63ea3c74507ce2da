package cgroup_test

import (
	"fmt"
	"os"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
)

// Open a container's cgroup from the systemd-style path containerd reports
// and set its CPU weight and quota by meaning; the layer writes cgroup v2's
// cpu.weight and cpu.max. The tree here is a fixture; on a host, use
// cgroup.Detect(cgroup.Options{}).
func Example() {
	dir, _ := os.MkdirTemp("", "cgroup-example")
	defer os.RemoveAll(dir)
	tree, _ := cgrouptest.New(dir, cgroup.V2, "0-3", "0")
	rel := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-c1.scope"
	_ = tree.AddCgroup(rel)

	h, err := cgroup.Detect(tree.Options())
	if err != nil {
		fmt.Println(err)
		return
	}
	cg, err := h.Open("kubepods-burstable-pod1.slice:cri-containerd:c1")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = cg.SetCPUShares(2048)
	_ = cg.SetCPUQuota(150000, 100000)
	weight, _ := tree.ReadFile("", rel, "cpu.weight")
	max, _ := tree.ReadFile("", rel, "cpu.max")
	// v2 weights are coarser than v1 shares: reading back gives the
	// largest shares value with the same weight.
	shares, _ := cg.CPUShares()
	fmt.Println(h.Mode(), cg.Path())
	fmt.Println("cpu.weight:", weight, "cpu.max:", max, "shares:", shares)
	// Output:
	// v2 /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-c1.scope
	// cpu.weight: 174 cpu.max: 150000 100000 shares: 2059
}
