package cgroup

import (
	"path/filepath"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/internal/cpulist"
)

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
	set, err := cpulist.Parse(s)
	if err != nil {
		return cpuset.New(), &FileError{Op: "parse", Path: filepath.Join(dir, file), Value: s, Err: err}
	}
	return set, nil
}

// CPUSetCPUs is Cgroup.CPUSetCPUs through a kept file. An unchanged list
// is not parsed again: the set is the one read before (CPUSets are
// immutable), so a steady read allocates nothing.
func (f *Files) CPUSetCPUs() (cpuset.CPUSet, error) {
	return f.readCPUSet(keptCPUSetCPUs, "cpuset.cpus")
}

// CPUSetMems is Cgroup.CPUSetMems through a kept file.
func (f *Files) CPUSetMems() (cpuset.CPUSet, error) {
	return f.readCPUSet(keptCPUSetMems, "cpuset.mems")
}

func (f *Files) readCPUSet(id keptFileID, file string) (cpuset.CPUSet, error) {
	b, k, unchanged, err := f.read(id, CPUSet, file, file)
	if err != nil {
		return cpuset.New(), err
	}
	if unchanged {
		return k.parsed.(cpuset.CPUSet), nil
	}
	set, err := cpulist.Parse(string(b))
	if err != nil {
		return cpuset.New(), &FileError{Op: "parse", Path: k.path, Value: string(b), Err: err}
	}
	k.parsed = set
	return set, nil
}
