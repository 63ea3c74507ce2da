package cgroup

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	occgroups "github.com/opencontainers/cgroups"
	"k8s.io/utils/cpuset"
)

// Cgroup is one cgroup, identified by its path relative to the hierarchy
// root. On cgroup v1 it spans one directory per controller hierarchy. Values
// are read and written by meaning; the layer picks the file and unit.
type Cgroup struct {
	h    *Hierarchy
	path string
}

// Path is the cgroup's path relative to the hierarchy root, beginning with
// "/".
func (c *Cgroup) Path() string { return c.path }

// Hierarchy is the hierarchy this cgroup belongs to.
func (c *Cgroup) Hierarchy() *Hierarchy { return c.h }

// Child returns the cgroup name below c (name must be one path element).
func (c *Cgroup) Child(name string) (*Cgroup, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%w: child name %q", ErrInvalidPath, name)
	}
	return &Cgroup{h: c.h, path: filepath.Join(c.path, name)}, nil
}

// Dir is the directory of this cgroup for a controller (v1 spelling). On v2
// every controller maps to the one unified directory.
func (c *Cgroup) Dir(controller string) (string, error) {
	if c.h.mode == V2 {
		if controller != "" && !c.h.available[v2Name(controller)] {
			return "", fmt.Errorf("%w: %s (cgroup v2 root offers %v)", ErrNoController, controller, c.h.Controllers())
		}
		return filepath.Join(c.h.unified, c.path), nil
	}
	root, ok := c.h.controllers[controller]
	if !ok {
		return "", fmt.Errorf("%w: %s is not mounted (mounted: %v)", ErrNoController, controller, c.h.Controllers())
	}
	return filepath.Join(root, c.path), nil
}

// UnifiedDir is the cgroup's directory in the cgroup2 mount (v2 or hybrid),
// where PSI files and BPF attach points live.
func (c *Cgroup) UnifiedDir() (string, error) {
	if c.h.unified == "" {
		return "", fmt.Errorf("%w: no cgroup2 mount", ErrNotSupported)
	}
	return filepath.Join(c.h.unified, c.path), nil
}

// Exists reports whether the cgroup's directory exists (for v1, in the cpu
// hierarchy, or the first mounted controller).
func (c *Cgroup) Exists() bool {
	dir, err := c.anyDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(dir)
	return err == nil
}

func (c *Cgroup) anyDir() (string, error) {
	if c.h.mode == V2 {
		return c.Dir("")
	}
	if _, ok := c.h.controllers[CPU]; ok {
		return c.Dir(CPU)
	}
	keys := sortedKeys(c.h.controllers)
	if len(keys) == 0 {
		return "", ErrNoController
	}
	return c.Dir(keys[0])
}

// Remove deletes the cgroup directory in every hierarchy. A cgroup that is
// already gone is not an error. The cgroup must have no processes and no
// children.
func (c *Cgroup) Remove() error {
	dirs := map[string]bool{}
	if c.h.mode == V2 {
		dirs[filepath.Join(c.h.unified, c.path)] = true
	} else {
		for _, root := range c.h.controllers {
			dirs[filepath.Join(root, c.path)] = true
		}
		if c.h.unified != "" {
			dirs[filepath.Join(c.h.unified, c.path)] = true
		}
	}
	var errs []error
	for dir := range dirs {
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup: remove %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Cgroup) read(controller, v1file, v2file string) (string, string, error) {
	dir, err := c.Dir(controller)
	if err != nil {
		return "", "", err
	}
	if c.h.mode == V2 {
		if v2file == "" {
			return "", "", fmt.Errorf("%w: %s on cgroup v2", ErrNotSupported, v1file)
		}
		return dir, v2file, nil
	}
	if v1file == "" {
		return "", "", fmt.Errorf("%w: %s on cgroup v1", ErrNotSupported, v2file)
	}
	return dir, v1file, nil
}

// SetCPUShares sets the CPU weight in cgroup v1 shares (2..262144, 1024 is
// the default). On v2 it writes cpu.weight converted as runc converts.
func (c *Cgroup) SetCPUShares(shares uint64) error {
	if shares < 2 || shares > 262144 {
		return fmt.Errorf("cgroup %s: cpu shares %d out of range [2, 262144]", c.path, shares)
	}
	dir, file, err := c.read(CPU, "cpu.shares", "cpu.weight")
	if err != nil {
		return err
	}
	v := shares
	if c.h.mode == V2 {
		v = SharesToWeight(shares)
	}
	return writeString(dir, file, strconv.FormatUint(v, 10))
}

// CPUShares reads the CPU weight as v1 shares (v2's cpu.weight converted
// back).
func (c *Cgroup) CPUShares() (uint64, error) {
	dir, file, err := c.read(CPU, "cpu.shares", "cpu.weight")
	if err != nil {
		return 0, err
	}
	v, err := readUint(dir, file)
	if err != nil || c.h.mode != V2 {
		return v, err
	}
	return WeightToShares(v), nil
}

// SharesToWeight converts cgroup v1 cpu.shares to a v2 cpu.weight, exactly
// as runc and crun do (opencontainers/cgroups), so that a value written by
// Strata reads the same as one written by the runtime.
func SharesToWeight(shares uint64) uint64 {
	return occgroups.ConvertCPUSharesToCgroupV2Value(shares)
}

// WeightToShares inverts SharesToWeight. Several shares values convert to
// one weight; it returns the largest of them, so the default weight 100 reads
// back as the default 1024 shares. The conversion is monotonic, so a binary
// search over [2, 262144] is exact.
func WeightToShares(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	lo, hi := uint64(2), uint64(262144)
	for lo < hi { // smallest shares whose weight exceeds the given one
		mid := (lo + hi + 1) / 2
		if SharesToWeight(mid) > weight {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo
}

// SetCPUQuota sets the CFS bandwidth limit: quotaUs of CPU time per periodUs.
// A negative quota means unlimited. A zero period keeps the current period.
func (c *Cgroup) SetCPUQuota(quotaUs int64, periodUs uint64) error {
	if quotaUs >= 0 && quotaUs < 1000 {
		return fmt.Errorf("cgroup %s: cpu quota %dus below the kernel minimum of 1000us", c.path, quotaUs)
	}
	if periodUs != 0 && (periodUs < 1000 || periodUs > 1000000) {
		return fmt.Errorf("cgroup %s: cpu period %dus outside [1000, 1000000]", c.path, periodUs)
	}
	dir, err := c.Dir(CPU)
	if err != nil {
		return err
	}
	if c.h.mode == V2 {
		if periodUs == 0 {
			_, cur, err := c.CPUQuota()
			if err != nil {
				return err
			}
			periodUs = cur
		}
		return writeString(dir, "cpu.max", formatMax(quotaUs)+" "+strconv.FormatUint(periodUs, 10))
	}
	q := strconv.FormatInt(quotaUs, 10)
	if quotaUs < 0 {
		q = "-1"
	}
	if periodUs == 0 {
		return writeString(dir, "cpu.cfs_quota_us", q)
	}
	// The kernel checks quota against period on each write, so one order
	// can fail where the other works (as runc does): try period first, and
	// if that is refused, quota first.
	p := strconv.FormatUint(periodUs, 10)
	if err := writeString(dir, "cpu.cfs_period_us", p); err != nil {
		if werr := writeString(dir, "cpu.cfs_quota_us", q); werr != nil {
			return werr
		}
		return writeString(dir, "cpu.cfs_period_us", p)
	}
	return writeString(dir, "cpu.cfs_quota_us", q)
}

// CPUQuota reads the CFS bandwidth limit; quota -1 means unlimited.
func (c *Cgroup) CPUQuota() (quotaUs int64, periodUs uint64, err error) {
	dir, err := c.Dir(CPU)
	if err != nil {
		return 0, 0, err
	}
	if c.h.mode == V2 {
		s, err := readString(dir, "cpu.max")
		if err != nil {
			return 0, 0, err
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return 0, 0, &FileError{Op: "parse", Path: filepath.Join(dir, "cpu.max"), Value: s, Err: errors.New(`want "<quota|max> <period>"`)}
		}
		q := int64(-1)
		if f[0] != "max" {
			if q, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				return 0, 0, &FileError{Op: "parse", Path: filepath.Join(dir, "cpu.max"), Value: s, Err: err}
			}
		}
		p, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, 0, &FileError{Op: "parse", Path: filepath.Join(dir, "cpu.max"), Value: s, Err: err}
		}
		return q, p, nil
	}
	q, err := readInt(dir, "cpu.cfs_quota_us")
	if err != nil {
		return 0, 0, err
	}
	p, err := readUint(dir, "cpu.cfs_period_us")
	if err != nil {
		return 0, 0, err
	}
	return q, p, nil
}

// SetCPUIdle turns SCHED_IDLE-like group scheduling on or off (cpu.idle,
// Linux 5.15+, in both v1 and v2): an idle group runs only when nothing else
// wants the CPU.
func (c *Cgroup) SetCPUIdle(idle bool) error {
	dir, err := c.Dir(CPU)
	if err != nil {
		return err
	}
	v := "0"
	if idle {
		v = "1"
	}
	return writeString(dir, "cpu.idle", v)
}

// CPUIdle reads cpu.idle.
func (c *Cgroup) CPUIdle() (bool, error) {
	dir, err := c.Dir(CPU)
	if err != nil {
		return false, err
	}
	v, err := readUint(dir, "cpu.idle")
	return v == 1, err
}

// SetCPUSetCPUs writes cpuset.cpus. On v1 the set must be a subset of the
// parent's; callers that grow and shrink nested cpusets order their writes
// (parent first when growing, child first when shrinking).
func (c *Cgroup) SetCPUSetCPUs(cpus cpuset.CPUSet) error {
	dir, err := c.Dir(CPUSet)
	if err != nil {
		return err
	}
	return writeString(dir, "cpuset.cpus", cpus.String())
}

// CPUSetCPUs reads cpuset.cpus (the configured set, not the effective one).
func (c *Cgroup) CPUSetCPUs() (cpuset.CPUSet, error) { return c.readCPUSet("cpuset.cpus") }

// EffectiveCPUs reads cpuset.effective_cpus, the CPUs the tasks may really
// use after the parent's restrictions.
func (c *Cgroup) EffectiveCPUs() (cpuset.CPUSet, error) {
	if c.h.mode == V2 {
		return c.readCPUSet("cpuset.cpus.effective")
	}
	return c.readCPUSet("cpuset.effective_cpus")
}

// SetCPUSetMems writes cpuset.mems (NUMA node ids).
func (c *Cgroup) SetCPUSetMems(mems cpuset.CPUSet) error {
	dir, err := c.Dir(CPUSet)
	if err != nil {
		return err
	}
	return writeString(dir, "cpuset.mems", mems.String())
}

// CPUSetMems reads cpuset.mems.
func (c *Cgroup) CPUSetMems() (cpuset.CPUSet, error) { return c.readCPUSet("cpuset.mems") }

func (c *Cgroup) readCPUSet(file string) (cpuset.CPUSet, error) {
	dir, err := c.Dir(CPUSet)
	if err != nil {
		return cpuset.New(), err
	}
	s, err := readString(dir, file)
	if err != nil {
		return cpuset.New(), err
	}
	set, err := cpuset.Parse(s)
	if err != nil {
		return cpuset.New(), &FileError{Op: "parse", Path: filepath.Join(dir, file), Value: s, Err: err}
	}
	return set, nil
}

// v1Unlimited is the smallest value the v1 memory controller reports for
// "no limit" (PAGE_COUNTER_MAX rounded to pages; 9223372036854771712 on
// 4 KiB pages). Anything at or above it reads back as -1.
const v1Unlimited = math.MaxInt64 - 1<<20

func (c *Cgroup) setMemory(v1file, v2file string, bytes int64) error {
	dir, file, err := c.read(Memory, v1file, v2file)
	if err != nil {
		return err
	}
	v := strconv.FormatInt(bytes, 10)
	if bytes < 0 {
		v = "-1"
		if c.h.mode == V2 {
			v = "max"
		}
	}
	return writeString(dir, file, v)
}

func (c *Cgroup) memory(v1file, v2file string) (int64, error) {
	dir, file, err := c.read(Memory, v1file, v2file)
	if err != nil {
		return 0, err
	}
	if c.h.mode == V2 {
		return readMaxInt(dir, file)
	}
	v, err := readInt(dir, file)
	if err == nil && v >= v1Unlimited {
		v = -1
	}
	return v, err
}

// SetMemoryLimit sets the hard memory limit in bytes (v1
// memory.limit_in_bytes, v2 memory.max); -1 removes it.
func (c *Cgroup) SetMemoryLimit(bytes int64) error {
	return c.setMemory("memory.limit_in_bytes", "memory.max", bytes)
}

// MemoryLimit reads the hard memory limit; -1 means unlimited.
func (c *Cgroup) MemoryLimit() (int64, error) {
	return c.memory("memory.limit_in_bytes", "memory.max")
}

// SetMemoryHigh sets the v2 throttling threshold memory.high; v1 has none
// (ErrNotSupported).
func (c *Cgroup) SetMemoryHigh(bytes int64) error { return c.setMemory("", "memory.high", bytes) }

// MemoryHigh reads memory.high (v2).
func (c *Cgroup) MemoryHigh() (int64, error) { return c.memory("", "memory.high") }

// SetMemoryLow sets best-effort protection memory.low (v2 only).
func (c *Cgroup) SetMemoryLow(bytes int64) error { return c.setMemory("", "memory.low", bytes) }

// MemoryLow reads memory.low (v2).
func (c *Cgroup) MemoryLow() (int64, error) { return c.memory("", "memory.low") }

// SetMemoryMin sets hard protection memory.min (v2 only).
func (c *Cgroup) SetMemoryMin(bytes int64) error { return c.setMemory("", "memory.min", bytes) }

// MemoryMin reads memory.min (v2).
func (c *Cgroup) MemoryMin() (int64, error) { return c.memory("", "memory.min") }

// SetMemorySoftLimit sets the reclaim-protection target: v1
// memory.soft_limit_in_bytes, and on v2 memory.low, as runc maps an OCI
// memory reservation.
func (c *Cgroup) SetMemorySoftLimit(bytes int64) error {
	return c.setMemory("memory.soft_limit_in_bytes", "memory.low", bytes)
}

// MemorySoftLimit reads the soft limit (v2: memory.low).
func (c *Cgroup) MemorySoftLimit() (int64, error) {
	return c.memory("memory.soft_limit_in_bytes", "memory.low")
}

// AddProc moves a process into the cgroup, in every v1 hierarchy (so that
// each controller governs it) or in the unified tree. On hybrid hosts it
// also joins the cgroup's directory in the unified mount when that exists,
// as runc does, so the cgroup's PSI files describe it.
func (c *Cgroup) AddProc(pid int) error {
	dirs, err := c.procDirs()
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		if err := writeString(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	if c.h.mode == Hybrid {
		dir := filepath.Join(c.h.unified, c.path)
		if _, err := os.Stat(dir); err == nil {
			return writeString(dir, "cgroup.procs", strconv.Itoa(pid))
		}
	}
	return nil
}

func (c *Cgroup) procDirs() ([]string, error) {
	if c.h.mode == V2 {
		d, err := c.Dir("")
		return []string{d}, err
	}
	seen := map[string]bool{}
	var dirs []string
	for _, ctl := range sortedKeys(c.h.controllers) {
		d := filepath.Join(c.h.controllers[ctl], c.path)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// Procs lists the process ids in the cgroup (v1: read from the cpu
// hierarchy, or the first mounted one), sorted.
func (c *Cgroup) Procs() ([]int, error) {
	dir, err := c.anyDir()
	if err != nil {
		return nil, err
	}
	s, err := readString(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, &FileError{Op: "parse", Path: filepath.Join(dir, "cgroup.procs"), Value: f, Err: err}
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, nil
}
