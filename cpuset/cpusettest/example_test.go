package cpusettest_test

import (
	"fmt"
	"os"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

// Discover a two-socket server's topology on any machine, from a sysfs
// tree written for its shape.
func Example() {
	dir, err := os.MkdirTemp("", "cpusettest-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := cpusettest.WriteSysfs(dir, cpusettest.Intel2S20C2T); err != nil {
		panic(err)
	}
	topo, err := cpuset.Discover(dir)
	if err != nil {
		panic(err)
	}
	fmt.Println(topo.Online().Size(), "CPUs on", len(topo.NUMANodes()), "NUMA nodes")
	// Output:
	// 80 CPUs on 2 NUMA nodes
}
