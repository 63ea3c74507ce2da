package cpuset

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/internal/cpulist"
	"github.com/strata-nri/strata/internal/safetext"
)

// Hybrid core kinds, as the kernel names their PMUs: /sys/devices/cpu_core
// lists the performance cores and /sys/devices/cpu_atom the efficiency
// cores of an Intel hybrid part. On every other machine Kind is "".
const (
	KindPerformance = "performance"
	KindEfficiency  = "efficiency"
)

// CPUInfo describes one online logical CPU.
type CPUInfo struct {
	ID int
	// Core is topology/core_id: unique within a package and die, not across
	// packages. Siblings is the set that identifies the physical core.
	Core     int
	Package  int // topology/physical_package_id
	Die      int // topology/die_id, 0 where the kernel has none
	NUMANode int
	// L3 and L2 number the cache groups (distinct shared_cpu_list sets) in
	// order of their lowest CPU, from 0; -1 where the kernel shows no such
	// cache (some VMs).
	L3, L2 int
	// Siblings are the online hardware threads of this CPU's core,
	// including the CPU itself (topology/thread_siblings_list).
	Siblings cpuset.CPUSet
	// Kind is KindPerformance or KindEfficiency on hybrid machines, else "".
	Kind string
	// Capacity is cpuN/cpu_capacity (1024 for the fastest CPUs), 0 where
	// the kernel does not show it.
	Capacity int
	// Isolated is true for CPUs in the isolated or nohz_full lists.
	Isolated bool
}

// NUMANode describes one online NUMA node.
type NUMANode struct {
	ID          int
	CPUs        cpuset.CPUSet // online CPUs of the node; empty for memory-only nodes
	MemoryBytes uint64        // MemTotal from nodeN/meminfo
	// Distances holds this node's row of the SLIT distance matrix, indexed
	// by node id (10 = local).
	Distances []int
}

// Topology is an immutable snapshot of a machine's CPU topology. It is
// safe for concurrent use.
type Topology struct {
	root  string
	maxID int // highest CPU id seen in any list; sizes masks

	cpus []CPUInfo // online CPUs, ascending id
	idx  []int32   // CPU id -> index in cpus, -1 when not online

	online, offline, possible, present, isolated, nohzFull cpuset.CPUSet
	onlineMask, isolatedMask, perfMask                     mask
	hybrid                                                 bool

	nodes   []NUMANode
	nodeIdx map[int]int // node id -> index in nodes
	dist    [][]int     // by node index

	l2Sets, l3Sets []cpuset.CPUSet

	tree tree
}

// Root returns the sysfs root the topology was read from.
func (t *Topology) Root() string { return t.root }

// Online returns the online CPUs.
func (t *Topology) Online() cpuset.CPUSet { return t.online }

// Offline returns the CPUs the kernel lists as offline.
func (t *Topology) Offline() cpuset.CPUSet { return t.offline }

// Possible returns the CPUs the kernel could ever bring online.
func (t *Topology) Possible() cpuset.CPUSet { return t.possible }

// Present returns the CPUs physically present.
func (t *Topology) Present() cpuset.CPUSet { return t.present }

// Isolated returns the online CPUs kept from general scheduling: the union
// of the isolated list (isolcpus=) and the nohz_full list.
func (t *Topology) Isolated() cpuset.CPUSet { return t.isolated }

// NoHZFull returns the CPUs in nohz_full mode (a subset of Isolated).
func (t *Topology) NoHZFull() cpuset.CPUSet { return t.nohzFull }

// Hybrid reports whether the machine has cores of different kinds.
func (t *Topology) Hybrid() bool { return t.hybrid }

// CPU returns the description of an online CPU.
func (t *Topology) CPU(id int) (CPUInfo, bool) {
	if id < 0 || id >= len(t.idx) || t.idx[id] < 0 {
		return CPUInfo{}, false
	}
	return t.cpus[t.idx[id]], true
}

// CPUs returns all online CPUs in ascending id order.
func (t *Topology) CPUs() []CPUInfo { return append([]CPUInfo(nil), t.cpus...) }

// NUMANodes returns the online NUMA nodes in ascending id order.
func (t *Topology) NUMANodes() []NUMANode { return append([]NUMANode(nil), t.nodes...) }

// Distance returns the SLIT distance between two nodes, or -1 if either is
// unknown.
func (t *Topology) Distance(from, to int) int {
	i, ok1 := t.nodeIdx[from]
	j, ok2 := t.nodeIdx[to]
	if !ok1 || !ok2 || j >= len(t.dist[i]) {
		return -1
	}
	return t.dist[i][j]
}

// L3Groups returns the CPU sets sharing an L3 cache, indexed by
// CPUInfo.L3.
func (t *Topology) L3Groups() []cpuset.CPUSet { return append([]cpuset.CPUSet(nil), t.l3Sets...) }

// L2Groups returns the CPU sets sharing an L2 cache, indexed by
// CPUInfo.L2.
func (t *Topology) L2Groups() []cpuset.CPUSet { return append([]cpuset.CPUSet(nil), t.l2Sets...) }

// MemsFor returns the NUMA nodes of the given CPUs: the value to write to
// cpuset.mems next to cpuset.cpus so memory stays local. CPUs that are not
// online are ignored.
func (t *Topology) MemsFor(cpus cpuset.CPUSet) cpuset.CPUSet {
	var nodes []int
	for _, id := range cpus.UnsortedList() {
		if info, ok := t.CPU(id); ok {
			nodes = append(nodes, info.NUMANode)
		}
	}
	return cpuset.New(nodes...)
}

// Discover reads the CPU topology below sysfsRoot (normally "/sys").
// A missing or malformed required file yields an error naming it. Optional
// files (offline, isolated, nohz_full, die_id, cpu_capacity, caches, NUMA
// nodes on kernels without NUMA, hybrid PMU lists) default to "absent".
func Discover(sysfsRoot string) (*Topology, error) {
	d := discoverer{root: sysfsRoot, cpuDir: filepath.Join(sysfsRoot, "devices", "system", "cpu")}
	return d.run()
}

type discoverer struct {
	root, cpuDir string
	buf          []byte
	t            *Topology
}

// readList reads a kernel list file into ids; a missing optional file
// yields ok=false and no error.
func (d *discoverer) readList(path string, optional bool) (ids []int, ok bool, err error) {
	return d.readListAt(unix.AT_FDCWD, "", path, optional)
}

// readListAt is readList for the file name inside directory dirfd (whose
// path is dir, used in errors).
func (d *discoverer) readListAt(dirfd int, dir, name string, optional bool) (ids []int, ok bool, err error) {
	data, err := d.readAt(dirfd, dir, name)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	// Kernels built with CONFIG_NO_HZ_FULL but booted without nohz_full=
	// print a NULL cpumask as "(null)" (Debian's 6.1 does): no CPUs.
	if string(bytes.TrimSpace(data)) == "(null)" {
		return nil, true, nil
	}
	if err := cpulist.Ranges(data, func(lo, hi int) {
		for i := lo; i <= hi; i++ {
			ids = append(ids, i)
		}
	}); err != nil {
		return nil, false, fmt.Errorf("cpuset: malformed CPU list in %s: %s: %w", filepath.Join(dir, name), safetext.Quote(strings.TrimSpace(string(data))), err)
	}
	return ids, true, nil
}

func (d *discoverer) read(path string) ([]byte, error) {
	return d.readAt(unix.AT_FDCWD, "", path)
}

// readAt returns the content of a sysfs attribute, name relative to the
// directory dirfd, in a buffer reused across calls. It goes straight to
// openat/read/close: discovery reads a few thousand small files on large
// machines, and os.Open's extra fstat, allocations and full path walk
// were most of the time. dir is the directory's path, for errors.
func (d *discoverer) readAt(dirfd int, dir, name string) ([]byte, error) {
	if d.buf == nil {
		d.buf = make([]byte, 64<<10)
	}
	var fd int
	var err error
	for {
		fd, err = syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		path := filepath.Join(dir, name)
		return nil, fmt.Errorf("cpuset: read %s: %w", path, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer syscall.Close(fd)
	n := 0
	for n < len(d.buf) {
		m, err := syscall.Read(fd, d.buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			path := filepath.Join(dir, name)
			return nil, fmt.Errorf("cpuset: read %s: %w", path, &fs.PathError{Op: "read", Path: path, Err: err})
		}
		n += m
		// A sysfs attribute comes whole from one read (kernfs renders it
		// into a page first), so a short read is the end: this saves the
		// second, empty read that would otherwise confirm EOF on every file.
		if m == 0 || n < len(d.buf) {
			return d.buf[:n], nil
		}
	}
	return nil, fmt.Errorf("cpuset: read %s: larger than %d bytes", filepath.Join(dir, name), len(d.buf))
}

func (d *discoverer) readIntAt(dirfd int, dir, name string, optional bool, def int) (int, error) {
	data, err := d.readAt(dirfd, dir, name)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return def, nil
		}
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("cpuset: malformed integer in %s: %s", filepath.Join(dir, name), safetext.Quote(s))
	}
	return v, nil
}

// openDir opens a directory to read attributes relative to it.
func openDir(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("cpuset: open %s: %w", path, &fs.PathError{Op: "open", Path: path, Err: err})
		}
		return fd, nil
	}
}

func (d *discoverer) run() (*Topology, error) {
	t := &Topology{root: d.root}
	d.t = t
	online, _, err := d.readList(filepath.Join(d.cpuDir, "online"), false)
	if err != nil {
		return nil, err
	}
	if len(online) == 0 {
		return nil, fmt.Errorf("cpuset: %s lists no online CPU", filepath.Join(d.cpuDir, "online"))
	}
	offline, _, err := d.readList(filepath.Join(d.cpuDir, "offline"), true)
	if err != nil {
		return nil, err
	}
	possible, ok, err := d.readList(filepath.Join(d.cpuDir, "possible"), true)
	if err != nil {
		return nil, err
	}
	if !ok {
		possible = online
	}
	present, ok, err := d.readList(filepath.Join(d.cpuDir, "present"), true)
	if err != nil {
		return nil, err
	}
	if !ok {
		present = online
	}
	isolated, _, err := d.readList(filepath.Join(d.cpuDir, "isolated"), true)
	if err != nil {
		return nil, err
	}
	nohz, _, err := d.readList(filepath.Join(d.cpuDir, "nohz_full"), true)
	if err != nil {
		return nil, err
	}
	perf, _, err := d.readList(filepath.Join(d.root, "devices", "cpu_core", "cpus"), true)
	if err != nil {
		return nil, err
	}
	eff, _, err := d.readList(filepath.Join(d.root, "devices", "cpu_atom", "cpus"), true)
	if err != nil {
		return nil, err
	}

	t.online = cpuset.New(online...)
	t.offline = cpuset.New(offline...)
	t.possible = cpuset.New(possible...)
	t.present = cpuset.New(present...)
	t.nohzFull = cpuset.New(nohz...).Intersection(t.online)
	t.isolated = cpuset.New(isolated...).Union(t.nohzFull).Intersection(t.online)
	// The kernel prints lists sorted and without repeats; a corrupt file
	// may not ("10,0", "0,0"). Work from the sets, which are both.
	online = t.online.List()
	for _, l := range [][]int{online, offline, possible, present} {
		for _, id := range l {
			t.maxID = max(t.maxID, id)
		}
	}
	t.onlineMask = newMask(t.maxID)
	t.isolatedMask = newMask(t.maxID)
	t.perfMask = newMask(t.maxID)
	for _, id := range online {
		t.onlineMask.set(id)
	}
	for _, id := range t.isolated.UnsortedList() {
		t.isolatedMask.set(id)
	}

	t.idx = make([]int32, t.maxID+1)
	for i := range t.idx {
		t.idx[i] = -1
	}
	t.cpus = make([]CPUInfo, len(online))
	for i, id := range online {
		t.idx[id] = int32(i)
		t.cpus[i] = CPUInfo{ID: id, NUMANode: -1, L2: -1, L3: -1, Isolated: t.isolatedMask.has(id)}
	}
	kindOf := func(ids []int, kind string) {
		for _, id := range ids {
			if id <= t.maxID && t.idx[id] >= 0 {
				t.cpus[t.idx[id]].Kind = kind
				t.hybrid = true
				if kind == KindPerformance {
					t.perfMask.set(id)
				}
			}
		}
	}
	if len(perf) > 0 && len(eff) > 0 {
		kindOf(perf, KindPerformance)
		kindOf(eff, KindEfficiency)
	}

	if err := d.readCores(); err != nil {
		return nil, err
	}
	if !t.hybrid {
		t.kindsByCapacity()
	}
	if err := d.readCaches(); err != nil {
		return nil, err
	}
	if err := d.readNodes(); err != nil {
		return nil, err
	}
	t.tree = buildTree(t)
	return t, nil
}

// readCores fills package, die, core and siblings. Siblings share all
// three, so each physical core's files are read once, through its first
// thread; this halves discovery time on SMT machines.
func (d *discoverer) readCores() error {
	t := d.t
	done := newMask(t.maxID)
	for i := range t.cpus {
		c := &t.cpus[i]
		if done.has(c.ID) {
			continue
		}
		dir := filepath.Join(d.cpuDir, "cpu"+strconv.Itoa(c.ID), "topology")
		dfd, err := openDir(dir)
		if err != nil {
			return err
		}
		c.Package, err = d.readIntAt(dfd, dir, "physical_package_id", false, 0)
		if err == nil {
			c.Die, err = d.readIntAt(dfd, dir, "die_id", true, 0)
		}
		if err == nil {
			c.Core, err = d.readIntAt(dfd, dir, "core_id", false, 0)
		}
		var sibs []int
		if err == nil {
			sibs, _, err = d.readListAt(dfd, dir, "thread_siblings_list", false)
		}
		if err == nil {
			c.Capacity, err = d.readIntAt(dfd, dir, "../cpu_capacity", true, 0)
		}
		syscall.Close(dfd)
		if err != nil {
			return err
		}
		sibPath := filepath.Join(dir, "thread_siblings_list")
		var online []int
		self := false
		for _, s := range sibs {
			if s == c.ID {
				self = true
			}
			if s <= t.maxID && t.idx[s] >= 0 {
				online = append(online, s)
			}
		}
		if !self {
			return fmt.Errorf("cpuset: %s does not contain CPU %d itself", sibPath, c.ID)
		}
		set := cpuset.New(online...)
		for _, s := range online {
			o := &t.cpus[t.idx[s]]
			if s != c.ID && done.has(s) {
				return fmt.Errorf("cpuset: %s lists CPU %d, which belongs to another core", sibPath, s)
			}
			o.Package, o.Die, o.Core, o.Siblings, o.Capacity = c.Package, c.Die, c.Core, c.Siblings, c.Capacity
			o.Siblings = set
			done.set(s)
		}
	}
	return nil
}

// kindsByCapacity derives core kinds where the kernel shows no hybrid PMU
// lists but CPUs differ in cpu_capacity (arm64 big.LITTLE and DynamIQ
// parts): CPUs within 3/4 of the largest capacity are performance cores,
// so the middle tier of a three-tier phone SoC counts as performance, and
// the little cores as efficiency.
func (t *Topology) kindsByCapacity() {
	lo, hi := 0, 0
	for i, c := range t.cpus {
		if c.Capacity <= 0 {
			return // not shown for every CPU: no basis to tell kinds apart
		}
		if i == 0 || c.Capacity < lo {
			lo = c.Capacity
		}
		hi = max(hi, c.Capacity)
	}
	if lo == hi {
		return
	}
	t.hybrid = true
	for i := range t.cpus {
		c := &t.cpus[i]
		if c.Capacity*4 >= hi*3 {
			c.Kind = KindPerformance
			t.perfMask.set(c.ID)
		} else {
			c.Kind = KindEfficiency
		}
	}
}

// readCaches assigns L2 and L3 groups from cache/index*/shared_cpu_list.
// A CPU already covered by both groups of an earlier CPU is skipped, and
// the index directories that held L2 and L3 for the previous CPU are tried
// before listing the cache directory: every CPU of a machine has the same
// layout in practice, and the listing costs more than the guess.
func (d *discoverer) readCaches() error {
	t := d.t
	seen := map[[2]int]int{} // (level, lowest CPU of the shared list) -> group index
	var guess [4]string      // by level: index directory that held it last time
	for i := range t.cpus {
		c := &t.cpus[i]
		if c.L2 >= 0 && c.L3 >= 0 {
			continue
		}
		cacheDir := filepath.Join(d.cpuDir, "cpu"+strconv.Itoa(c.ID), "cache")
		cfd, err := openDir(cacheDir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // VMs may expose no cache information
			}
			return err
		}
		err = d.readCPUCaches(c, cfd, cacheDir, seen, &guess)
		syscall.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *discoverer) readCPUCaches(c *CPUInfo, cfd int, cacheDir string, seen map[[2]int]int, guess *[4]string) error {
	t := d.t
	tried := map[string]bool{}
	// visit reads one index directory and records the group it names.
	visit := func(name string) error {
		tried[name] = true
		level, err := d.readIntAt(cfd, cacheDir, name+"/level", false, 0)
		if err != nil {
			return err
		}
		if (level != 2 || c.L2 >= 0) && (level != 3 || c.L3 >= 0) {
			return nil
		}
		guess[level] = name
		shared, _, err := d.readListAt(cfd, cacheDir, name+"/shared_cpu_list", false)
		if err != nil {
			return err
		}
		var members []int
		self := false
		for _, s := range shared {
			self = self || s == c.ID
			if s <= t.maxID && t.idx[s] >= 0 {
				members = append(members, s)
			}
		}
		if !self {
			return fmt.Errorf("cpuset: %s does not contain CPU %d itself", filepath.Join(cacheDir, name, "shared_cpu_list"), c.ID)
		}
		key := [2]int{level, members[0]}
		g, ok := seen[key]
		if !ok {
			sets := &t.l2Sets
			if level == 3 {
				sets = &t.l3Sets
			}
			g = len(*sets)
			*sets = append(*sets, cpuset.New(members...))
			seen[key] = g
		}
		for _, s := range members {
			o := &t.cpus[t.idx[s]]
			if level == 2 {
				o.L2 = g
			} else {
				o.L3 = g
			}
		}
		return nil
	}
	for _, level := range []int{3, 2} {
		known := (level == 3 && c.L3 >= 0) || (level == 2 && c.L2 >= 0)
		if name := guess[level]; name != "" && !known && !tried[name] {
			if err := visit(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if c.L2 >= 0 && c.L3 >= 0 {
		return nil
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return fmt.Errorf("cpuset: read %s: %w", cacheDir, err)
	}
	// From the highest index: L3 and L2 come last on every x86 and arm64
	// kernel, so the L1 entries are rarely read.
	for j := len(entries) - 1; j >= 0 && (c.L2 < 0 || c.L3 < 0); j-- {
		name := entries[j].Name()
		if !strings.HasPrefix(name, "index") || tried[name] {
			continue
		}
		if err := visit(name); err != nil {
			return err
		}
	}
	return nil
}

// readNodes reads NUMA nodes. Kernels built without NUMA have no node
// directory: the machine is then one node 0 holding every online CPU.
func (d *discoverer) readNodes() error {
	t := d.t
	nodeDir := filepath.Join(d.root, "devices", "system", "node")
	ids, ok, err := d.readList(filepath.Join(nodeDir, "online"), true)
	if err != nil {
		return err
	}
	// Sorted and without repeats whatever the file says (see run).
	ids = cpuset.New(ids...).List()
	t.nodeIdx = map[int]int{}
	if !ok {
		t.nodes = []NUMANode{{ID: 0, CPUs: t.online, Distances: []int{10}}}
		t.nodeIdx[0] = 0
		t.dist = [][]int{{10}}
		for i := range t.cpus {
			t.cpus[i].NUMANode = 0
		}
		return nil
	}
	for _, id := range ids {
		dir := filepath.Join(nodeDir, "node"+strconv.Itoa(id))
		cpus, _, err := d.readList(filepath.Join(dir, "cpulist"), false)
		if err != nil {
			return err
		}
		var members []int
		for _, c := range cpus {
			if c <= t.maxID && t.idx[c] >= 0 {
				o := &t.cpus[t.idx[c]]
				if o.NUMANode >= 0 {
					return fmt.Errorf("cpuset: %s lists CPU %d, already in node %d", filepath.Join(dir, "cpulist"), c, o.NUMANode)
				}
				o.NUMANode = id
				members = append(members, c)
			}
		}
		distPath := filepath.Join(dir, "distance")
		data, err := d.read(distPath)
		if err != nil {
			return err
		}
		fields := strings.Fields(string(data))
		if len(fields) != len(ids) {
			return fmt.Errorf("cpuset: %s has %d distances, want one per online node (%d)", distPath, len(fields), len(ids))
		}
		// The row is indexed by node id in the kernel's output order, which
		// is the online list order; store it by id.
		row := make([]int, ids[len(ids)-1]+1)
		for j, f := range fields {
			v, err := strconv.Atoi(f)
			if err != nil || v <= 0 {
				return fmt.Errorf("cpuset: malformed distance %s in %s", safetext.Quote(f), distPath)
			}
			row[ids[j]] = v
		}
		memPath := filepath.Join(dir, "meminfo")
		mem, err := d.read(memPath)
		if err != nil {
			return err
		}
		total, err := memTotal(mem)
		if err != nil {
			return fmt.Errorf("cpuset: %s: %w", memPath, err)
		}
		t.nodeIdx[id] = len(t.nodes)
		t.nodes = append(t.nodes, NUMANode{ID: id, CPUs: cpuset.New(members...), MemoryBytes: total, Distances: row})
		t.dist = append(t.dist, row)
	}
	// Re-index rows by node index for internal use.
	for i, row := range t.dist {
		byIdx := make([]int, len(t.nodes))
		for j, n := range t.nodes {
			byIdx[j] = row[n.ID]
		}
		t.dist[i] = byIdx
	}
	for _, c := range t.cpus {
		if c.NUMANode < 0 {
			return fmt.Errorf("cpuset: online CPU %d is in no node's cpulist under %s", c.ID, nodeDir)
		}
	}
	return nil
}

// memTotal extracts "Node N MemTotal: X kB" from a node meminfo file.
func memTotal(data []byte) (uint64, error) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "MemTotal:" {
			v, err := strconv.ParseUint(f[3], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("malformed MemTotal %q", f[3])
			}
			if len(f) >= 5 && f[4] != "kB" {
				return 0, fmt.Errorf("MemTotal unit %q, want kB", f[4])
			}
			return v * 1024, nil
		}
	}
	return 0, errors.New("no MemTotal line")
}
