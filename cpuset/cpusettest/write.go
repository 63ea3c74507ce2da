package cpusettest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/utils/cpuset"
)

type core struct {
	pkg, die, node, l3, l2, id, seq int
	eff                             bool
	threads                         []int
}

// layout enumerates the shape's cores in kernel order and numbers threads.
func (s Shape) layout() []core {
	var cores []core
	l2 := 0
	for p := 0; p < s.Packages; p++ {
		coreID := 0
		for d := 0; d < s.DiesPerPackage; d++ {
			die := p*s.DiesPerPackage + d
			for n := 0; n < s.NodesPerDie; n++ {
				node := die*s.NodesPerDie + n
				for l := 0; l < s.l3PerNode(); l++ {
					l3 := node*s.l3PerNode() + l
					if s.L3PerDie {
						l3 = die
					}
					addP := func() {
						for c := 0; c < s.CoresPerL3; c++ {
							cores = append(cores, core{pkg: p, die: d, node: node, l3: l3, l2: l2, id: coreID})
							l2++
							coreID++
						}
					}
					addE := func() {
						for e := 0; e < s.ECoresPerL3; e++ {
							if e > 0 && e%s.ECoresPerL2 == 0 {
								l2++
							}
							cores = append(cores, core{pkg: p, die: d, node: node, l3: l3, l2: l2, id: coreID, eff: true})
							coreID++
						}
						if s.ECoresPerL3 > 0 {
							l2++
						}
					}
					if s.ECoresFirst {
						addE()
						addP()
					} else {
						addP()
						addE()
					}
				}
			}
		}
	}
	id := 0
	for i := range cores {
		cores[i].seq = i
		n := s.ThreadsPerCore
		if cores[i].eff {
			n = 1
		}
		if s.SiblingsAdjacent {
			for t := 0; t < n; t++ {
				cores[i].threads = append(cores[i].threads, id)
				id++
			}
		} else {
			cores[i].threads = append(cores[i].threads, id)
			id++
		}
	}
	if !s.SiblingsAdjacent {
		for t := 1; t < s.ThreadsPerCore; t++ {
			for i := range cores {
				if !cores[i].eff {
					cores[i].threads = append(cores[i].threads, id)
					id++
				}
			}
		}
	}
	return cores
}

// WriteSysfs writes the sysfs tree of shape s below dir, so that dir can
// be passed to cpuset.Discover as the sysfs root.
func WriteSysfs(dir string, s Shape) error {
	if err := s.validate(); err != nil {
		return err
	}
	s = s.withDefaults()
	offline, err := cpuset.Parse(s.Offline)
	if err != nil {
		return fmt.Errorf("cpusettest: shape %q: Offline: %w", s.Name, err)
	}
	isolated, err := cpuset.Parse(s.Isolated)
	if err != nil {
		return fmt.Errorf("cpusettest: shape %q: Isolated: %w", s.Name, err)
	}
	nohz, err := cpuset.Parse(s.NoHZFull)
	if err != nil {
		return fmt.Errorf("cpusettest: shape %q: NoHZFull: %w", s.Name, err)
	}
	cores := s.layout()
	total := s.CPUs()
	all := make([]int, total)
	for i := range all {
		all[i] = i
	}
	possible := cpuset.New(all...)
	if !offline.IsSubsetOf(possible) {
		return fmt.Errorf("cpusettest: shape %q: Offline %s outside 0-%d", s.Name, offline, total-1)
	}
	online := possible.Difference(offline)

	w := &writer{}
	// lists keeps what the kernel keeps in its masks after hotplug: only
	// online CPUs appear in sibling, cache and node lists. Lists are built
	// once per group so that writing a 448-CPU tree stays linear.
	lists := map[[2]int]string{}
	listOf := func(kind, key int) string {
		if v, ok := lists[[2]int{kind, key}]; ok {
			return v
		}
		var ids []int
		for i := range cores {
			if groupKey(&cores[i], kind) == key {
				ids = append(ids, cores[i].threads...)
			}
		}
		v := cpuset.New(ids...).Intersection(online).String()
		lists[[2]int{kind, key}] = v
		return v
	}
	cpuDir := filepath.Join(dir, "devices", "system", "cpu")
	w.file(cpuDir, "online", online.String())
	w.file(cpuDir, "offline", offline.String())
	w.file(cpuDir, "possible", possible.String())
	w.file(cpuDir, "present", possible.String())
	w.file(cpuDir, "isolated", isolated.String())
	if s.NoHZFull != "" {
		w.file(cpuDir, "nohz_full", nohz.String())
	}
	w.file(cpuDir, "kernel_max", strconv.Itoa(s.KernelMax))

	var perf, eff []int
	for ci := range cores {
		c := &cores[ci]
		if c.eff {
			eff = append(eff, c.threads...)
		} else {
			perf = append(perf, c.threads...)
		}
		for _, id := range c.threads {
			cd := filepath.Join(cpuDir, "cpu"+strconv.Itoa(id))
			if id != 0 { // cpu0 is not hot-pluggable on x86: no online file
				state := "1"
				if offline.Contains(id) {
					state = "0"
				}
				w.file(cd, "online", state)
			} else if offline.Contains(0) {
				return fmt.Errorf("cpusettest: shape %q: CPU 0 cannot be offline", s.Name)
			}
			if offline.Contains(id) {
				w.mkdir(cd) // topology/ and cache/ vanish with the CPU
				continue
			}
			td := filepath.Join(cd, "topology")
			coreList := listOf(keyCore, c.seq)
			pkgList := listOf(keyPackage, c.pkg)
			w.file(td, "physical_package_id", strconv.Itoa(c.pkg))
			if !s.NoDieID {
				w.file(td, "die_id", strconv.Itoa(c.die))
			}
			capacity := 1024
			if c.eff && s.ECapacity > 0 {
				capacity = s.ECapacity
			}
			w.file(cd, "cpu_capacity", strconv.Itoa(capacity))
			w.file(td, "core_id", strconv.Itoa(c.id))
			w.file(td, "core_cpus_list", coreList)
			w.file(td, "thread_siblings_list", coreList)
			w.file(td, "core_siblings_list", pkgList)
			w.file(td, "package_cpus_list", pkgList)
			w.file(td, "die_cpus_list", listOf(keyDie, c.pkg*1000+c.die))
			l2List := listOf(keyL2, c.l2)
			if s.ClusterIDUnknown {
				w.file(td, "cluster_id", "65535")
				w.file(td, "cluster_cpus_list", coreList)
			} else {
				w.file(td, "cluster_id", strconv.Itoa(c.l2))
				w.file(td, "cluster_cpus_list", l2List)
			}
			caches := []struct {
				level       int
				typ, shared string
				id          int
				size        string
			}{
				{1, "Data", coreList, c.seq, s.L1dSize},
				{1, "Instruction", coreList, c.seq, s.L1iSize},
				{2, "Unified", l2List, c.l2, s.L2Size},
				{3, "Unified", listOf(keyL3, c.pkg*1000+c.l3), c.l3, s.L3Size},
			}
			for i, cache := range caches {
				xd := filepath.Join(cd, "cache", "index"+strconv.Itoa(i))
				w.file(xd, "level", strconv.Itoa(cache.level))
				w.file(xd, "type", cache.typ)
				w.file(xd, "shared_cpu_list", cache.shared)
				w.file(xd, "id", strconv.Itoa(cache.id))
				w.file(xd, "size", cache.size)
			}
		}
	}
	if len(eff) > 0 && !s.HybridByCapacity {
		w.file(filepath.Join(dir, "devices", "cpu_core"), "cpus", cpuset.New(perf...).Intersection(online).String())
		w.file(filepath.Join(dir, "devices", "cpu_atom"), "cpus", cpuset.New(eff...).Intersection(online).String())
	}

	nodes := s.Packages * s.DiesPerPackage * s.NodesPerDie
	nodeDir := filepath.Join(dir, "devices", "system", "node")
	nodeIDs := make([]int, nodes)
	for n := range nodeIDs {
		nodeIDs[n] = n
	}
	nodeList := cpuset.New(nodeIDs...).String()
	for _, f := range []string{"online", "possible", "has_cpu", "has_memory"} {
		w.file(nodeDir, f, nodeList)
	}
	for n := 0; n < nodes; n++ {
		nd := filepath.Join(nodeDir, "node"+strconv.Itoa(n))
		w.file(nd, "cpulist", listOf(keyNode, n))
		dist := make([]string, nodes)
		for m := 0; m < nodes; m++ {
			dist[m] = strconv.Itoa(s.distance(n, m))
		}
		w.file(nd, "distance", strings.Join(dist, " "))
		free := s.NodeMemoryKiB * 9 / 10
		w.file(nd, "meminfo", fmt.Sprintf("Node %d MemTotal:       %8d kB\nNode %d MemFree:        %8d kB\nNode %d MemUsed:        %8d kB\n",
			n, s.NodeMemoryKiB, n, free, n, s.NodeMemoryKiB-free))
	}
	return w.err
}

// distance returns the SLIT distance between nodes a and b.
func (s Shape) distance(a, b int) int {
	perDie, perPkg := s.NodesPerDie, s.NodesPerDie*s.DiesPerPackage
	switch {
	case a == b:
		return 10
	case a/perDie == b/perDie:
		return s.DistanceSameDie
	case a/perPkg == b/perPkg:
		return s.DistanceSamePackage
	}
	return s.DistanceRemote
}

// Root writes shape s into a fresh temporary directory and returns it,
// failing tb on error; the directory is removed when tb ends. It prefers
// the memory-backed /dev/shm when present: a 448-CPU tree is some 15,000
// files, which takes seconds on a VM's disk and milliseconds in tmpfs.
func Root(tb testing.TB, s Shape) string {
	tb.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "cpusettest-"+s.Name+"-")
	if err != nil {
		dir = tb.TempDir()
	} else {
		tb.Cleanup(func() { os.RemoveAll(dir) })
	}
	if err := WriteSysfs(dir, s); err != nil {
		tb.Fatal(err)
	}
	return dir
}

type writer struct {
	err  error
	dirs map[string]bool
}

func (w *writer) mkdir(dir string) {
	if w.err != nil || w.dirs[dir] {
		return
	}
	if w.dirs == nil {
		w.dirs = map[string]bool{}
	}
	w.err = os.MkdirAll(dir, 0o755)
	w.dirs[dir] = true
}

// file writes value plus the newline every sysfs attribute ends with.
func (w *writer) file(dir, name, value string) {
	w.mkdir(dir)
	if w.err != nil {
		return
	}
	w.err = os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o644)
}

const (
	keyCore = iota
	keyPackage
	keyDie
	keyL2
	keyL3
	keyNode
)

func groupKey(c *core, kind int) int {
	switch kind {
	case keyCore:
		return c.seq
	case keyPackage:
		return c.pkg
	case keyDie:
		return c.pkg*1000 + c.die
	case keyL2:
		return c.l2
	case keyL3:
		return c.pkg*1000 + c.l3
	}
	return c.node
}
