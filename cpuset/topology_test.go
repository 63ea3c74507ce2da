package cpuset_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

func TestDiscoverShapes(t *testing.T) {
	tests := []struct {
		shape                        cpusettest.Shape
		online                       string
		packages, nodes, l3s, l2s    int
		cpu                          int // a CPU to check in detail
		want                         cpuset.CPUInfo
		siblings, node0CPUs, l3OfCPU string
		distances                    []int // node 0's row
	}{
		{shape: cpusettest.VM2, online: "0-1", packages: 1, nodes: 1, l3s: 1, l2s: 2,
			cpu: 1, want: cpuset.CPUInfo{ID: 1, Core: 1, L3: 0, L2: 1},
			siblings: "1", node0CPUs: "0-1", l3OfCPU: "0-1", distances: []int{10}},
		// Server numbering: CPU 45 is the second thread of socket 0's core 5.
		{shape: cpusettest.Intel2S20C2T, online: "0-79", packages: 2, nodes: 2, l3s: 2, l2s: 40,
			cpu: 45, want: cpuset.CPUInfo{ID: 45, Core: 5, L3: 0, L2: 5},
			siblings: "5,45", node0CPUs: "0-19,40-59", l3OfCPU: "0-19,40-59", distances: []int{10, 21}},
		// CPU 20 starts socket 0's CCX 5 (cores 20-23).
		{shape: cpusettest.EPYCNPS1, online: "0-255", packages: 2, nodes: 2, l3s: 32, l2s: 128,
			cpu: 20, want: cpuset.CPUInfo{ID: 20, Core: 20, L3: 5, L2: 20},
			siblings: "20,148", node0CPUs: "0-63,128-191", l3OfCPU: "20-23,148-151", distances: []int{10, 32}},
		// NPS4: node 1 holds cores 16-31; CPU 20 is in it.
		{shape: cpusettest.EPYCNPS4, online: "0-255", packages: 2, nodes: 8, l3s: 32, l2s: 128,
			cpu: 20, want: cpuset.CPUInfo{ID: 20, Core: 20, NUMANode: 1, L3: 5, L2: 20},
			siblings: "20,148", node0CPUs: "0-15,128-143", l3OfCPU: "20-23,148-151",
			distances: []int{10, 12, 12, 12, 32, 32, 32, 32}},
		{shape: cpusettest.FourSocket, online: "0-191", packages: 4, nodes: 4, l3s: 4, l2s: 96,
			cpu: 150, want: cpuset.CPUInfo{ID: 150, Core: 6, Package: 2, NUMANode: 2, L3: 2, L2: 54},
			siblings: "54,150", node0CPUs: "0-23,96-119", l3OfCPU: "48-71,144-167", distances: []int{10, 21, 21, 21}},
		// SNC2: CPU 14 is in node 1 but shares socket 0's single L3 with node 0.
		{shape: cpusettest.IntelSNC2, online: "0-111", packages: 2, nodes: 4, l3s: 2, l2s: 56,
			cpu: 14, want: cpuset.CPUInfo{ID: 14, Core: 14, NUMANode: 1, L3: 0, L2: 14},
			siblings: "14,70", node0CPUs: "0-13,56-69", l3OfCPU: "0-27,56-83", distances: []int{10, 11, 21, 21}},
		// Hybrid: CPU 17 is an efficiency core in the first 4-core L2 cluster.
		{shape: cpusettest.Hybrid, online: "0-23", packages: 1, nodes: 1, l3s: 1, l2s: 10,
			cpu: 17, want: cpuset.CPUInfo{ID: 17, Core: 9, L3: 0, L2: 8, Kind: cpuset.KindEfficiency},
			siblings: "17", node0CPUs: "0-23", l3OfCPU: "0-23", distances: []int{10}},
		// arm64 big.LITTLE: the little cores 0-3 come first and are told
		// apart only by cpu_capacity.
		{shape: cpusettest.ARMBigLittle, online: "0-7", packages: 1, nodes: 1, l3s: 1, l2s: 8,
			cpu: 1, want: cpuset.CPUInfo{ID: 1, Core: 1, L3: 0, L2: 1, Kind: cpuset.KindEfficiency, Capacity: 530},
			siblings: "1", node0CPUs: "0-7", l3OfCPU: "0-7", distances: []int{10}},
		// Offline 12-15: core 4 has lost its sibling 12; core 2 is isolated.
		{shape: cpusettest.OfflineCPUs, online: "0-11", packages: 1, nodes: 1, l3s: 2, l2s: 8,
			cpu: 4, want: cpuset.CPUInfo{ID: 4, Core: 4, L3: 1, L2: 4},
			siblings: "4", node0CPUs: "0-11", l3OfCPU: "4-7", distances: []int{10}},
		{shape: cpusettest.Big448, online: "0-447", packages: 4, nodes: 8, l3s: 4, l2s: 224,
			cpu: 300, want: cpuset.CPUInfo{ID: 300, Core: 20, Package: 1, NUMANode: 2, L3: 1, L2: 76},
			siblings: "76,300", node0CPUs: "0-27,224-251", l3OfCPU: "56-111,280-335",
			distances: []int{10, 12, 21, 21, 21, 21, 21, 21}},
	}
	for _, tc := range tests {
		t.Run(tc.shape.Name, func(t *testing.T) {
			topo := fixture(t, tc.shape)
			if got := topo.Online().String(); got != tc.online {
				t.Errorf("Online() = %s, want %s", got, tc.online)
			}
			pkgs := map[int]bool{}
			for _, c := range topo.CPUs() {
				pkgs[c.Package] = true
			}
			if len(pkgs) != tc.packages {
				t.Errorf("%d packages, want %d", len(pkgs), tc.packages)
			}
			nodes := topo.NUMANodes()
			if len(nodes) != tc.nodes || len(topo.L3Groups()) != tc.l3s || len(topo.L2Groups()) != tc.l2s {
				t.Errorf("nodes/L3/L2 = %d/%d/%d, want %d/%d/%d", len(nodes), len(topo.L3Groups()), len(topo.L2Groups()), tc.nodes, tc.l3s, tc.l2s)
			}
			if got := nodes[0].CPUs.String(); got != tc.node0CPUs {
				t.Errorf("node 0 CPUs = %s, want %s", got, tc.node0CPUs)
			}
			if !reflect.DeepEqual(nodes[0].Distances, tc.distances) {
				t.Errorf("node 0 distances = %v, want %v", nodes[0].Distances, tc.distances)
			}
			if want := tc.shape.NodeMemoryKiB * 1024; want != 0 && nodes[0].MemoryBytes != want {
				t.Errorf("node 0 memory = %d, want %d", nodes[0].MemoryBytes, want)
			}
			got, ok := topo.CPU(tc.cpu)
			if !ok {
				t.Fatalf("CPU(%d) not found", tc.cpu)
			}
			if got.Siblings.String() != tc.siblings {
				t.Errorf("CPU %d siblings = %s, want %s", tc.cpu, got.Siblings, tc.siblings)
			}
			if l3 := topo.L3Groups()[got.L3].String(); l3 != tc.l3OfCPU {
				t.Errorf("CPU %d L3 group = %s, want %s", tc.cpu, l3, tc.l3OfCPU)
			}
			got.Siblings = tc.want.Siblings
			if tc.want.Capacity == 0 {
				tc.want.Capacity = 1024 // what x86 kernels show for every CPU
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("CPU(%d) = %+v, want %+v", tc.cpu, got, tc.want)
			}
		})
	}
}

func TestDiscoverOfflineAndIsolated(t *testing.T) {
	topo := fixture(t, cpusettest.OfflineCPUs)
	if got := topo.Offline().String(); got != "12-15" {
		t.Errorf("Offline() = %s, want 12-15", got)
	}
	if got := topo.Possible().String(); got != "0-15" {
		t.Errorf("Possible() = %s, want 0-15", got)
	}
	if _, ok := topo.CPU(12); ok {
		t.Error("CPU(12) found, but it is offline")
	}
	if got := topo.Isolated().String(); got != "2,10" {
		t.Errorf("Isolated() = %s, want 2,10", got)
	}
	if got := topo.NoHZFull().String(); got != "2,10" {
		t.Errorf("NoHZFull() = %s, want 2,10", got)
	}
	if c, _ := topo.CPU(10); !c.Isolated {
		t.Error("CPU 10 not marked isolated")
	}
}

func TestDiscoverHybrid(t *testing.T) {
	topo := fixture(t, cpusettest.Hybrid)
	if !topo.Hybrid() {
		t.Fatal("Hybrid() = false")
	}
	c, _ := topo.CPU(1)
	if c.Kind != cpuset.KindPerformance || c.Siblings.String() != "0-1" {
		t.Errorf("CPU 1 = %+v, want a performance thread with siblings 0-1", c)
	}
	if got := topo.L2Groups()[func() int { c, _ := topo.CPU(21); return c.L2 }()].String(); got != "20-23" {
		t.Errorf("L2 of CPU 21 = %s, want the E-core cluster 20-23", got)
	}
	arm := fixture(t, cpusettest.ARMBigLittle)
	if c, _ := arm.CPU(4); !arm.Hybrid() || c.Kind != cpuset.KindPerformance || c.Capacity != 1024 {
		t.Errorf("ARM big core 4 = %+v (hybrid %v), want a performance core of capacity 1024", c, arm.Hybrid())
	}
	if fixture(t, cpusettest.Intel2S20C2T).Hybrid() {
		t.Error("Intel2S20C2T reported hybrid")
	}
}

// The generator must produce what the real machine shows: the captured
// /sys of the CI VM and the generated VM2 tree discover identically.
func TestGeneratorMatchesRealVM(t *testing.T) {
	real, err := cpuset.Discover(filepath.Join("testdata", "vm2-sys"))
	if err != nil {
		t.Fatal(err)
	}
	gen := fixture(t, cpusettest.VM2)
	if !reflect.DeepEqual(real.CPUs(), gen.CPUs()) {
		t.Errorf("CPUs differ:\nreal %+v\ngen  %+v", real.CPUs(), gen.CPUs())
	}
	if !reflect.DeepEqual(real.NUMANodes(), gen.NUMANodes()) {
		t.Errorf("nodes differ:\nreal %+v\ngen  %+v", real.NUMANodes(), gen.NUMANodes())
	}
	if !reflect.DeepEqual(real.L3Groups(), gen.L3Groups()) || !reflect.DeepEqual(real.L2Groups(), gen.L2Groups()) {
		t.Errorf("caches differ: real L3 %v L2 %v, gen L3 %v L2 %v", real.L3Groups(), real.L2Groups(), gen.L3Groups(), gen.L2Groups())
	}
}

// On Linux the running machine's own /sys must discover and agree with
// the kernel's online list.
func TestDiscoverThisMachine(t *testing.T) {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Skipf("no sysfs here: %v", err)
	}
	topo, err := cpuset.Discover("/sys")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := topo.Online().String(), strings.TrimSpace(string(data)); got != want {
		t.Errorf("Online() = %s, /sys says %s", got, want)
	}
	for _, id := range topo.Online().List() {
		c, _ := topo.CPU(id)
		if !c.Siblings.Contains(id) || c.NUMANode < 0 {
			t.Errorf("CPU %d: %+v", id, c)
		}
	}
}

func TestDiscoverBadInput(t *testing.T) {
	const cpu = "devices/system/cpu"
	const node = "devices/system/node"
	tests := []struct {
		name    string
		file    string // relative to the root
		content string // "" removes the file
	}{
		{"online missing", cpu + "/online", ""},
		{"online malformed", cpu + "/online", "0-x"},
		{"online reversed range", cpu + "/online", "5-3"},
		{"offline malformed", cpu + "/offline", "12,"},
		{"isolated malformed", cpu + "/isolated", "a"},
		{"package id missing", cpu + "/cpu5/topology/physical_package_id", ""},
		{"package id malformed", cpu + "/cpu5/topology/physical_package_id", "zero"},
		{"core id missing", cpu + "/cpu3/topology/core_id", ""},
		{"siblings malformed", cpu + "/cpu1/topology/thread_siblings_list", "1-"},
		{"siblings without self", cpu + "/cpu1/topology/thread_siblings_list", "2"},
		{"cache level malformed", cpu + "/cpu0/cache/index3/level", "three"},
		{"cache shared list missing", cpu + "/cpu0/cache/index2/shared_cpu_list", ""},
		{"node cpulist missing", node + "/node0/cpulist", ""},
		{"node distance malformed", node + "/node0/distance", "10 x"},
		{"node distance row too long", node + "/node0/distance", "10 21"},
		{"node meminfo missing", node + "/node0/meminfo", ""},
		{"node meminfo without MemTotal", node + "/node0/meminfo", "Node 0 MemFree: 1 kB"},
		{"node online malformed", node + "/online", "0--1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := cpusettest.Root(t, cpusettest.OfflineCPUs)
			path := filepath.Join(root, tc.file)
			if tc.content == "" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, []byte(tc.content+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := cpuset.Discover(root)
			if err == nil {
				t.Fatalf("Discover succeeded with %s = %q", tc.file, tc.content)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}

// A CPU missing from every node's cpulist is an inconsistent tree.
func TestDiscoverCPUWithoutNode(t *testing.T) {
	root := cpusettest.Root(t, cpusettest.VM2)
	if err := os.WriteFile(filepath.Join(root, "devices/system/node/node0/cpulist"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := cpuset.Discover(root)
	if err == nil || !strings.Contains(err.Error(), "CPU 1") {
		t.Fatalf("Discover() error = %v, want one naming CPU 1", err)
	}
}

// Kernels without NUMA (and some containers' sysfs) have no node
// directory: everything is node 0.
func TestDiscoverWithoutNodes(t *testing.T) {
	root := cpusettest.Root(t, cpusettest.VM2)
	if err := os.RemoveAll(filepath.Join(root, "devices/system/node")); err != nil {
		t.Fatal(err)
	}
	topo, err := cpuset.Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	if n := topo.NUMANodes(); len(n) != 1 || n[0].CPUs.String() != "0-1" {
		t.Errorf("NUMANodes() = %+v, want one node with 0-1", n)
	}
}

func TestMemsFor(t *testing.T) {
	topo := fixture(t, cpusettest.EPYCNPS4)
	// 0: node 0; 16: node 1 (cores 16-31); 200 = second thread of core 72,
	// socket 1's core 8, node 4.
	if got := topo.MemsFor(mustParse(t, "0,16,200")).String(); got != "0-1,4" {
		t.Errorf("MemsFor(0,16,200) = %s, want 0-1,4", got)
	}
	if got := topo.MemsFor(mustParse(t, "")); got.Size() != 0 {
		t.Errorf("MemsFor(empty) = %s, want empty", got)
	}
}

// TestDiscoverNullNoHZFull: Debian's 6.1 kernels (CONFIG_NO_HZ_FULL, booted
// without nohz_full=) print "(null)" in nohz_full; it means no CPUs. Found
// by the cgroup v2 guest of test/vm.
func TestDiscoverNullNoHZFull(t *testing.T) {
	root := t.TempDir()
	if err := cpusettest.WriteSysfs(root, cpusettest.OfflineCPUs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "devices/system/cpu/nohz_full"), []byte("(null)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := cpuset.Discover(root)
	if err != nil {
		t.Fatalf("Discover with nohz_full \"(null)\": %v", err)
	}
	if got := topo.NoHZFull(); got.Size() != 0 {
		t.Errorf("NoHZFull() = %s, want none", got)
	}
	if got := topo.Isolated().String(); got != "2,10" {
		t.Errorf("Isolated() = %s, want 2,10 (from the isolated list alone)", got)
	}
}
