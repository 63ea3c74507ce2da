package iolimit_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/iolimit"
)

// Throttle one cgroup's reads from the disk below a directory to 10 MiB/s
// and give it a low weight. The cgroup tree and sysfs here are fixtures; on
// a host, use cgroup.Detect(cgroup.Options{}) and iolimit.Options{}, and
// resolve the device with ByPath("/var/lib/data").
func Example() {
	dir, _ := os.MkdirTemp("", "iolimit-example")
	defer os.RemoveAll(dir)
	tree, _ := cgrouptest.New(filepath.Join(dir, "cg"), cgroup.V2, "0-3", "0")
	_ = tree.AddCgroup("/batch")
	_ = tree.AddIO("/batch", cgrouptest.IOFiles{BFQ: true})
	sys := filepath.Join(dir, "sys")
	_ = os.MkdirAll(filepath.Join(sys, "devices/virtual/block/vda/queue"), 0o755)
	_ = os.WriteFile(filepath.Join(sys, "devices/virtual/block/vda/dev"), []byte("254:0\n"), 0o644)
	_ = os.WriteFile(filepath.Join(sys, "devices/virtual/block/vda/queue/scheduler"), []byte("none [mq-deadline] bfq\n"), 0o644)
	_ = os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755)
	_ = os.Symlink("../../devices/virtual/block/vda", filepath.Join(sys, "dev/block/254:0"))

	h, _ := cgroup.Detect(tree.Options())
	cg, _ := h.Open("/batch")
	l := iolimit.New(iolimit.Options{SysRoot: sys})
	vda, err := l.Resolver().ByNumber(cgroup.DevNum{Major: 254, Minor: 0})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := l.Apply(cg, iolimit.Settings{
		Weight:        50,
		DeviceWeights: []iolimit.DeviceWeight{{Device: vda.Num, Weight: 50}},
		Limits:        []iolimit.Limit{{Device: vda.Num, ReadBPS: 10 << 20}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ioMax, _ := tree.ReadFile("", "/batch", "io.max")
	fmt.Println("io.max:", ioMax)
	for _, why := range rep.Ineffective {
		fmt.Println(why)
	}
	// Output:
	// io.max: 254:0 rbps=10485760 wbps=max riops=max wiops=max
	// iolimit: weight on vda (254:0) in cgroup /batch (v2): IO weight has no effect: io.weight is absent (kernel without iocost); io.bfq.weight needs the bfq scheduler, the device uses mq-deadline (select it: echo bfq > /sys/block/vda/queue/scheduler)
}
