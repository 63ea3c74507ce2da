package cpuset_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

// topologyFiles are the sysfs files discovery reads, relative to the root.
var topologyFiles = []string{
	"devices/system/cpu/online",
	"devices/system/cpu/possible",
	"devices/system/cpu/present",
	"devices/system/cpu/offline",
	"devices/system/cpu/isolated",
	"devices/system/cpu/nohz_full",
	"devices/system/cpu/cpu0/topology/thread_siblings_list",
	"devices/system/cpu/cpu0/topology/core_id",
	"devices/system/cpu/cpu0/topology/physical_package_id",
	"devices/system/cpu/cpu0/topology/die_id",
	"devices/system/cpu/cpu1/cache/index3/shared_cpu_list",
	"devices/system/cpu/cpu1/cache/index3/level",
	"devices/system/node/online",
	"devices/system/node/node0/cpulist",
	"devices/system/node/node0/distance",
	"devices/system/node/node0/meminfo",
}

// FuzzDiscover writes arbitrary content into one sysfs file of a fixture
// machine at a time and discovers the topology: no panic, a bounded error
// (the value quoted and cut), and a discovered topology that is
// consistent — online CPUs within the id bound, each in one NUMA node,
// each its own sibling.
func FuzzDiscover(f *testing.F) {
	f.Add(uint8(0), []byte("0-1\n"))
	f.Add(uint8(0), []byte("0-4000000000\n"))
	f.Add(uint8(1), []byte("0-8191,0-8191,0-8191\n"))
	f.Add(uint8(6), []byte("1\n"))
	f.Add(uint8(7), []byte("-1\n"))
	f.Add(uint8(8), []byte("99999999999999999999\n"))
	f.Add(uint8(12), []byte("0-1023\n"))
	f.Add(uint8(13), []byte("0,0\n"))
	f.Add(uint8(14), []byte("10 20 30\n"))
	f.Add(uint8(15), []byte("Node 0 MemTotal: 18446744073709551615 kB\n"))
	root := cpusettest.Root(f, cpusettest.VM2)
	f.Fuzz(func(t *testing.T, which uint8, content []byte) {
		path := filepath.Join(root, topologyFiles[int(which)%len(topologyFiles)])
		orig, err := os.ReadFile(path)
		existed := err == nil
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if existed {
				_ = os.WriteFile(path, orig, 0o644)
			} else {
				_ = os.Remove(path)
			}
		}()
		topo, err := cpuset.Discover(root)
		if err != nil {
			if n := len(err.Error()); n > 1024+len(path) {
				t.Fatalf("error of %d bytes", n)
			}
			return
		}
		if topo.Online().Size() == 0 {
			t.Fatal("no online CPU")
		}
		for _, c := range topo.CPUs() {
			if c.ID < 0 || c.ID >= cpuset.MaxCPUs || c.NUMANode < 0 || !c.Siblings.Contains(c.ID) {
				t.Fatalf("inconsistent CPU %+v", c)
			}
		}
	})
}
