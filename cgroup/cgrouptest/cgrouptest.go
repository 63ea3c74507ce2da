package cgrouptest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-nri/strata/cgroup"
)

// Tree is a fixture cgroup hierarchy in a directory.
type Tree struct {
	Dir  string
	Mode cgroup.Mode
	// CPUs and Mems are what the root cpuset offers, e.g. "0-3" and "0".
	CPUs, Mems string
}

// v1Mounts mirrors a Debian/Ubuntu systemd host booted with
// systemd.unified_cgroup_hierarchy=0: cpu and cpuacct co-mounted.
var v1Mounts = []struct{ dir, opts string }{
	{"systemd", "rw,xattr,name=systemd"},
	{"cpu,cpuacct", "rw,cpu,cpuacct"},
	{"cpuset", "rw,cpuset"},
	{"memory", "rw,memory"},
	{"blkio", "rw,blkio"},
	{"pids", "rw,pids"},
	{"freezer", "rw,freezer"},
	{"devices", "rw,devices"},
}

// New writes a fixture tree of the given mode into dir, with root cpuset
// cpus and mems.
func New(dir string, mode cgroup.Mode, cpus, mems string) (*Tree, error) {
	t := &Tree{Dir: dir, Mode: mode, CPUs: cpus, Mems: mems}
	var mi strings.Builder
	mi.WriteString("22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n")
	mi.WriteString("25 1 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n")
	id := 30
	switch mode {
	case cgroup.V2:
		fmt.Fprintf(&mi, "%d 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n", id)
	case cgroup.V1, cgroup.Hybrid:
		fmt.Fprintf(&mi, "%d 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n", id)
		for i, m := range v1Mounts {
			fmt.Fprintf(&mi, "%d %d 0:%d / /sys/fs/cgroup/%s rw,nosuid,nodev,noexec,relatime shared:%d - cgroup cgroup %s\n",
				id+1+i, id, 27+i, m.dir, 13+i, m.opts)
		}
		if mode == cgroup.Hybrid {
			fmt.Fprintf(&mi, "%d %d 0:40 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:30 - cgroup2 cgroup2 rw,nsdelegate\n", id+20, id)
		}
	default:
		return nil, fmt.Errorf("cgrouptest: unknown mode %v", mode)
	}
	if err := writeFile(filepath.Join(dir, "proc", "self", "mountinfo"), mi.String()); err != nil {
		return nil, err
	}
	if err := t.AddCgroup("/"); err != nil {
		return nil, err
	}
	return t, nil
}

// Options returns the cgroup.Detect options that read this tree.
func (t *Tree) Options() cgroup.Options {
	return cgroup.Options{ProcRoot: filepath.Join(t.Dir, "proc"), RootPrefix: t.Dir}
}

// Hierarchy detects the tree.
func (t *Tree) Hierarchy() (*cgroup.Hierarchy, error) { return cgroup.Detect(t.Options()) }

// ControllerDir is the directory of cgroup rel for controller (v1 mount
// name such as "cpu,cpuacct"; ignored on v2).
func (t *Tree) ControllerDir(mount, rel string) string {
	if t.Mode == cgroup.V2 {
		return filepath.Join(t.Dir, "sys/fs/cgroup", rel)
	}
	return filepath.Join(t.Dir, "sys/fs/cgroup", mount, rel)
}

// UnifiedDir is the directory of cgroup rel in the cgroup2 mount.
func (t *Tree) UnifiedDir(rel string) string {
	if t.Mode == cgroup.V2 {
		return filepath.Join(t.Dir, "sys/fs/cgroup", rel)
	}
	return filepath.Join(t.Dir, "sys/fs/cgroup/unified", rel)
}

// AddCgroup creates cgroup rel (and its parents) with the files and default
// values a kernel gives a new cgroup.
func (t *Tree) AddCgroup(rel string) error {
	rel = filepath.Clean("/" + rel)
	var chain []string
	for p := rel; ; p = filepath.Dir(p) {
		chain = append([]string{p}, chain...)
		if p == "/" {
			break
		}
	}
	for _, p := range chain {
		if err := t.addOne(p); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tree) addOne(rel string) error {
	root := rel == "/"
	files := map[string]map[string]string{} // dir -> file -> content
	add := func(dir string, kv map[string]string) {
		if files[dir] == nil {
			files[dir] = map[string]string{}
		}
		for k, v := range kv {
			if root && strings.HasPrefix(k, "!") {
				continue // not present in the root cgroup
			}
			files[dir][strings.TrimPrefix(k, "!")] = v
		}
	}
	if t.Mode == cgroup.V2 {
		d := t.UnifiedDir(rel)
		add(d, map[string]string{
			"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n", "cgroup.subtree_control": "\n",
			"cgroup.procs": "", "!cgroup.type": "domain\n", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
			"cpu.pressure": psi(true), "memory.pressure": psi(true), "io.pressure": psi(true),
			"!cpu.max": "max 100000\n", "!cpu.weight": "100\n", "!cpu.idle": "0\n",
			"!cpuset.cpus": "\n", "cpuset.cpus.effective": t.CPUs + "\n", "!cpuset.mems": "\n", "cpuset.mems.effective": t.Mems + "\n",
			"!memory.max": "max\n", "!memory.high": "max\n", "!memory.low": "0\n", "!memory.min": "0\n",
			"memory.current": "0\n", "memory.stat": memStatV2, "!memory.oom.group": "0\n", "memory.reclaim": "",
		})
	} else {
		add(t.ControllerDir("cpu,cpuacct", rel), map[string]string{
			"cgroup.procs": "", "tasks": "", "cpu.shares": "1024\n", "cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n",
			"cpu.idle": "0\n", "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
			"cpuacct.usage": "0\n", "cpuacct.stat": "user 0\nsystem 0\n",
		})
		cpus, mems := "\n", "\n"
		if root {
			cpus, mems = t.CPUs+"\n", t.Mems+"\n"
		}
		add(t.ControllerDir("cpuset", rel), map[string]string{
			"cgroup.procs": "", "tasks": "", "cpuset.cpus": cpus, "cpuset.mems": mems,
			"cpuset.effective_cpus": cpus, "cpuset.effective_mems": mems,
		})
		add(t.ControllerDir("memory", rel), map[string]string{
			"cgroup.procs": "", "tasks": "", "memory.limit_in_bytes": "9223372036854771712\n",
			"memory.soft_limit_in_bytes": "9223372036854771712\n", "memory.usage_in_bytes": "0\n",
			"memory.stat": memStatV1, "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
		})
		for _, m := range []string{"blkio", "pids", "freezer", "devices", "systemd"} {
			add(t.ControllerDir(m, rel), map[string]string{"cgroup.procs": "", "tasks": ""})
		}
		if t.Mode == cgroup.Hybrid {
			// The unified mount of a hybrid host has no controllers but
			// still shows PSI and cgroup.procs.
			add(t.UnifiedDir(rel), map[string]string{
				"cgroup.controllers": "\n", "cgroup.subtree_control": "\n", "cgroup.procs": "",
				"cpu.pressure": psi(true), "memory.pressure": psi(true), "io.pressure": psi(true), "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
			})
		}
	}
	for dir, kv := range files {
		for name, content := range kv {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				continue // keep values a test already set
			}
			if err := writeFile(p, content); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteFile overwrites one file of cgroup rel. mount is the v1 mount
// directory name ("cpu,cpuacct", "memory", ...) and is ignored on v2.
func (t *Tree) WriteFile(mount, rel, name, content string) error {
	return writeFile(filepath.Join(t.ControllerDir(mount, rel), name), content)
}

// ReadFile reads one file of cgroup rel, trimmed.
func (t *Tree) ReadFile(mount, rel, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(t.ControllerDir(mount, rel), name))
	return strings.TrimSpace(string(b)), err
}

func psi(full bool) string {
	s := "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	if full {
		s += "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	}
	return s
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// memStatV1 and memStatV2 are the key sets of Linux 6.x memory.stat files,
// zeroed.
const memStatV1 = `cache 0
rss 0
rss_huge 0
shmem 0
mapped_file 0
dirty 0
writeback 0
swap 0
pgpgin 0
pgpgout 0
pgfault 0
pgmajfault 0
inactive_anon 0
active_anon 0
inactive_file 0
active_file 0
unevictable 0
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache 0
total_rss 0
total_rss_huge 0
total_shmem 0
total_mapped_file 0
total_dirty 0
total_writeback 0
total_swap 0
total_pgpgin 0
total_pgpgout 0
total_pgfault 0
total_pgmajfault 0
total_inactive_anon 0
total_active_anon 0
total_inactive_file 0
total_active_file 0
total_unevictable 0
`

const memStatV2 = `anon 0
file 0
kernel 0
kernel_stack 0
pagetables 0
sec_pagetables 0
percpu 0
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 0
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 0
active_anon 0
inactive_file 0
active_file 0
unevictable 0
slab_reclaimable 0
slab_unreclaimable 0
slab 0
workingset_refault_anon 0
workingset_refault_file 0
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal 0
pgscan_kswapd 0
pgscan_direct 0
pgscan_khugepaged 0
pgsteal_kswapd 0
pgsteal_direct 0
pgsteal_khugepaged 0
pgfault 0
pgmajfault 0
pgrefill 0
pgactivate 0
pgdeactivate 0
pglazyfree 0
pglazyfreed 0
zswpin 0
zswpout 0
zswpwb 0
thp_fault_alloc 0
thp_collapse_alloc 0
thp_swpout 0
thp_swpout_fallback 0
`
