package cpusettest

import "fmt"

// Shape describes a machine's CPU topology.
type Shape struct {
	Name           string
	Packages       int
	DiesPerPackage int // default 1
	NodesPerDie    int // NUMA nodes per die (Intel SNC, AMD NPS4); default 1
	// L3PerNode is the number of L3 groups (AMD CCX) in each NUMA node;
	// default 1. With L3PerDie set, one L3 is shared by all nodes of a
	// die, as on Intel parts in sub-NUMA clustering mode, and L3PerNode
	// must be 0 or 1.
	L3PerNode int
	L3PerDie  bool
	// CoresPerL3 is the number of (performance) cores per L3 group — with
	// L3PerDie, per node.
	CoresPerL3     int
	ThreadsPerCore int // default 1
	// ECoresPerL3 adds single-threaded efficiency cores after the
	// performance cores of each L3 group, sharing an L2 in clusters of
	// ECoresPerL2 (default 4), and makes the machine hybrid.
	ECoresPerL3 int
	ECoresPerL2 int
	// ECoresFirst numbers the efficiency cores before the performance
	// cores (arm64 big.LITTLE parts list the little cluster first).
	ECoresFirst bool
	// HybridByCapacity shows core kinds only through cpuN/cpu_capacity, as
	// arm64 kernels do, instead of the cpu_core/cpu_atom PMU lists.
	HybridByCapacity bool
	// ECapacity is the cpu_capacity of efficiency cores; every other CPU
	// shows 1024. Default 1024 (as x86 kernels without hybrid capacity
	// scaling show).
	ECapacity int
	// NoDieID omits topology/die_id, which only x86 kernels provide.
	NoDieID bool
	// SiblingsAdjacent numbers SMT siblings consecutively (desktop parts);
	// otherwise first threads of all cores come first (servers).
	SiblingsAdjacent bool
	// Offline, Isolated and NoHZFull are kernel CPU lists ("2,10-11").
	Offline, Isolated, NoHZFull string
	// NodeMemoryKiB is each node's MemTotal; default 16 GiB.
	NodeMemoryKiB uint64
	// Distances between nodes: same die, same package (other die), other
	// package. Defaults 11, 12, 21. The local distance is 10.
	DistanceSameDie, DistanceSamePackage, DistanceRemote int
	// Cache sizes as sysfs writes them ("48K"); defaults are Intel-like.
	L1dSize, L1iSize, L2Size, L3Size string
	// KernelMax is NR_CPUS-1 of the kernel build; default 8191 (Debian).
	KernelMax int
	// ClusterIDUnknown writes cluster_id 65535, as kernels do when the
	// CPU reports no L2 cluster (common in VMs).
	ClusterIDUnknown bool
}

// CPUs returns the number of logical CPUs of the shape, online or not.
func (s Shape) CPUs() int {
	s = s.withDefaults()
	perL3 := s.CoresPerL3*s.ThreadsPerCore + s.ECoresPerL3
	return s.Packages * s.DiesPerPackage * s.NodesPerDie * s.l3PerNode() * perL3
}

func (s Shape) l3PerNode() int {
	if s.L3PerDie {
		return 1
	}
	return s.L3PerNode
}

func (s Shape) withDefaults() Shape {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.DiesPerPackage, 1)
	def(&s.NodesPerDie, 1)
	def(&s.L3PerNode, 1)
	def(&s.ThreadsPerCore, 1)
	def(&s.ECoresPerL2, 4)
	def(&s.DistanceSameDie, 11)
	def(&s.DistanceSamePackage, 12)
	def(&s.DistanceRemote, 21)
	def(&s.KernelMax, 8191)
	if s.NodeMemoryKiB == 0 {
		s.NodeMemoryKiB = 16 << 20
	}
	defs := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	defs(&s.L1dSize, "48K")
	defs(&s.L1iSize, "32K")
	defs(&s.L2Size, "1280K")
	defs(&s.L3Size, "30720K")
	return s
}

func (s Shape) validate() error {
	if s.Packages <= 0 || s.CoresPerL3 <= 0 {
		return fmt.Errorf("cpusettest: shape %q needs Packages and CoresPerL3 > 0", s.Name)
	}
	if s.L3PerDie && s.L3PerNode > 1 {
		return fmt.Errorf("cpusettest: shape %q sets L3PerDie with L3PerNode %d", s.Name, s.L3PerNode)
	}
	if s.ThreadsPerCore > 2 {
		return fmt.Errorf("cpusettest: shape %q: ThreadsPerCore %d, at most 2 supported", s.Name, s.ThreadsPerCore)
	}
	return nil
}

// Named shapes, modelled on real machines.
var (
	// VM2 is this project's CI machine: a 2-vCPU KVM guest on AMD EPYC,
	// one thread per core, one shared L3, no cluster information.
	VM2 = Shape{Name: "vm2", Packages: 1, CoresPerL3: 2, ThreadsPerCore: 1,
		L1dSize: "32K", L1iSize: "32K", L2Size: "1024K", L3Size: "32768K",
		ClusterIDUnknown: true, NodeMemoryKiB: 6908108, KernelMax: 255}

	// Intel2S20C2T is a 2-socket Xeon (Ice Lake class): 2 × 20 cores × 2
	// threads, one NUMA node and one L3 per socket. 80 CPUs.
	Intel2S20C2T = Shape{Name: "intel-2s-20c-2t", Packages: 2, CoresPerL3: 20, ThreadsPerCore: 2,
		L2Size: "1280K", L3Size: "30720K", NodeMemoryKiB: 192 << 20}

	// EPYCNPS1 is a 2-socket AMD EPYC 7742 (Rome) in NPS1: each socket is
	// one NUMA node with 16 CCX of 4 cores × 2 threads. 256 CPUs.
	EPYCNPS1 = Shape{Name: "epyc-nps1", Packages: 2, L3PerNode: 16, CoresPerL3: 4, ThreadsPerCore: 2,
		L1dSize: "32K", L1iSize: "32K", L2Size: "512K", L3Size: "16384K",
		DistanceRemote: 32, NodeMemoryKiB: 256 << 20}

	// EPYCNPS4 is the same machine in NPS4: four NUMA nodes per socket,
	// each with 4 CCX. Distances 10 local, 12 same socket, 32 remote.
	EPYCNPS4 = Shape{Name: "epyc-nps4", Packages: 2, NodesPerDie: 4, L3PerNode: 4, CoresPerL3: 4, ThreadsPerCore: 2,
		L1dSize: "32K", L1iSize: "32K", L2Size: "512K", L3Size: "16384K",
		DistanceSameDie: 12, DistanceRemote: 32, NodeMemoryKiB: 64 << 20}

	// FourSocket is a 4-socket Xeon (Cascade Lake 8260 class): 4 × 24
	// cores × 2 threads, one node per socket, fully connected (21). 192 CPUs.
	FourSocket = Shape{Name: "four-socket", Packages: 4, CoresPerL3: 24, ThreadsPerCore: 2,
		L2Size: "1024K", L3Size: "36608K", NodeMemoryKiB: 96 << 20}

	// IntelSNC2 is a 2-socket Xeon 8280 in sub-NUMA clustering (SNC2): two
	// NUMA nodes of 14 cores per socket sharing the socket's L3. 112 CPUs.
	// Real SNC machines report one L3 per package in shared_cpu_list
	// (lstopo shows "Package + L3" with one NUMA group per cluster inside),
	// and number siblings N and N+cores-per-machine.
	IntelSNC2 = Shape{Name: "intel-snc2", Packages: 2, NodesPerDie: 2, L3PerDie: true, CoresPerL3: 14, ThreadsPerCore: 2,
		L2Size: "1024K", L3Size: "39424K", NodeMemoryKiB: 96 << 20}

	// Hybrid is an Alder Lake desktop (i9-12900K): 8 performance cores × 2
	// threads (CPUs 0-15, siblings adjacent) and 8 efficiency cores
	// (16-23) in two L2 clusters of 4, all under one L3. 24 CPUs.
	Hybrid = Shape{Name: "hybrid", Packages: 1, CoresPerL3: 8, ThreadsPerCore: 2, ECoresPerL3: 8, ECoresPerL2: 4,
		SiblingsAdjacent: true, L2Size: "1280K", L3Size: "30720K", NodeMemoryKiB: 32 << 20}

	// OfflineCPUs is a Ryzen-style desktop (2 CCX × 4 cores × 2 threads,
	// server numbering: siblings N and N+8) with the second threads of
	// cores 4-7 taken offline and core 2 isolated (isolcpus and
	// nohz_full 2,10).
	OfflineCPUs = Shape{Name: "offline-cpus", Packages: 1, L3PerNode: 2, CoresPerL3: 4, ThreadsPerCore: 2,
		L1dSize: "32K", L1iSize: "32K", L2Size: "512K", L3Size: "16384K",
		Offline: "12-15", Isolated: "2,10", NoHZFull: "2,10"}

	// ARMBigLittle is a Rockchip RK3588 board: four Cortex-A55 little
	// cores (CPUs 0-3, cpu_capacity 530 from its device tree's
	// capacity-dmips-mhz) and four Cortex-A76 big cores (4-7, 1024), each
	// with a private L2, one shared L3, no SMT, no die_id, no PMU lists.
	ARMBigLittle = Shape{Name: "arm-big-little", Packages: 1, CoresPerL3: 4, ECoresPerL3: 4, ECoresPerL2: 1,
		ECoresFirst: true, HybridByCapacity: true, ECapacity: 530, NoDieID: true, SiblingsAdjacent: true,
		L1dSize: "64K", L1iSize: "64K", L2Size: "512K", L3Size: "3072K", NodeMemoryKiB: 16 << 20}

	// Big448 is a 4-socket Xeon (Sapphire Rapids 8490H class) in SNC2:
	// 4 sockets × 2 nodes × 28 cores × 2 threads = 448 CPUs, 8 NUMA nodes.
	Big448 = Shape{Name: "big448", Packages: 4, NodesPerDie: 2, L3PerDie: true, CoresPerL3: 28, ThreadsPerCore: 2,
		L2Size: "2048K", L3Size: "115200K", DistanceSameDie: 12, NodeMemoryKiB: 256 << 20}
)

// All returns every named shape by name.
func All() map[string]Shape {
	m := map[string]Shape{}
	for _, s := range []Shape{VM2, Intel2S20C2T, EPYCNPS1, EPYCNPS4, FourSocket, IntelSNC2, Hybrid, ARMBigLittle, OfflineCPUs, Big448} {
		m[s.Name] = s
	}
	return m
}
