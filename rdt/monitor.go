package rdt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MonGroup is a monitoring group (mon_groups/NAME) inside a class: its own
// RMID, so the occupancy and bandwidth of a subset of the class's tasks —
// one container — can be read. Its tasks must be in the class already.
type MonGroup struct {
	class *Class
	name  string
	dir   string
}

// Name returns the monitoring group's name.
func (m *MonGroup) Name() string { return m.name }

// Dir returns the monitoring group's directory.
func (m *MonGroup) Dir() string { return m.dir }

// Class returns the class the group belongs to.
func (m *MonGroup) Class() *Class { return m.class }

func (r *Resctrl) monSupported() error {
	if r.info.Mon == nil {
		return &NotSupportedError{Feature: "monitoring", Reason: "this host's resctrl has no info/L3_MON"}
	}
	return nil
}

// CreateMonGroup makes (or finds) the monitoring group name in the class.
// It refuses, with a *BudgetError, to exceed num_rmids: every control
// group and every monitoring group holds one RMID.
func (c *Class) CreateMonGroup(name string) (*MonGroup, error) {
	r := c.r
	if err := r.monSupported(); err != nil {
		return nil, err
	}
	if err := validName(name, false); err != nil {
		return nil, &InvalidError{Class: c.name, CacheID: -1, Value: name, Reason: "monitoring group name: " + err.Error()}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := filepath.Join(c.dir, "mon_groups", name)
	m := &MonGroup{class: c, name: name, dir: dir}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return m, nil
	}
	inUse, err := r.rmidsInUse()
	if err != nil {
		return nil, err
	}
	if inUse >= r.info.Mon.NumRMIDs {
		return nil, &BudgetError{Class: c.name + "/" + name, Kind: "RMID", InUse: inUse, Limit: r.info.Mon.NumRMIDs}
	}
	// MkdirAll: on resctrl mon_groups exists in every control group; a
	// fixture's new class directory is empty.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &FileError{Op: "mkdir", Path: dir, Err: err, Status: r.lastStatus()}
	}
	return m, nil
}

// MonGroups lists the class's monitoring groups.
func (c *Class) MonGroups() ([]*MonGroup, error) {
	entries, err := os.ReadDir(filepath.Join(c.dir, "mon_groups"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &FileError{Op: "read", Path: filepath.Join(c.dir, "mon_groups"), Err: err}
	}
	var out []*MonGroup
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, &MonGroup{class: c, name: e.Name(), dir: filepath.Join(c.dir, "mon_groups", e.Name())})
		}
	}
	return out, nil
}

// AddTasks moves tasks of the class into the monitoring group; like
// Class.AddTasks it returns the tasks that exited meanwhile in gone.
func (m *MonGroup) AddTasks(pids ...int) (gone []int, err error) {
	return m.class.r.addTasks(m.dir, pids)
}

// AddProcesses moves every thread of the processes into the monitoring
// group (see Class.AddProcesses).
func (m *MonGroup) AddProcesses(pids ...int) (gone []int, err error) {
	return m.class.r.addProcesses(m.dir, pids)
}

// Tasks lists the monitoring group's tasks.
func (m *MonGroup) Tasks() ([]int, error) { return readTasks(filepath.Join(m.dir, "tasks")) }

// Delete removes the monitoring group, releasing its RMID; its tasks stay
// in the class. Deleting a group that is gone is not an error.
func (m *MonGroup) Delete() error {
	m.class.r.mu.Lock()
	defer m.class.r.mu.Unlock()
	return removeGroupDir(m.dir)
}

// rmidsInUse counts RMIDs held: every control group (the default included)
// and every monitoring group.
func (r *Resctrl) rmidsInUse() (int, error) {
	groups, err := r.groups()
	if err != nil {
		return 0, err
	}
	n := len(groups)
	for _, g := range groups {
		mons, _ := os.ReadDir(filepath.Join(r.root, g, "mon_groups"))
		for _, e := range mons {
			if e.IsDir() {
				n++
			}
		}
	}
	return n, nil
}

// Counters are one RMID's monitoring values in one L3 domain. Bytes
// counters are cumulative; Bandwidth turns two readings into a rate.
type Counters struct {
	LLCOccupancy  uint64 // bytes of L3 held now
	MBMTotalBytes uint64 // bytes to and from memory since the RMID was assigned
	MBMLocalBytes uint64 // the part of it to the local NUMA node
	// Missing lists features the kernel reported as "Unavailable" or
	// "Error" (a counter not yet read, or an RMID reused too early).
	Missing []string
}

// MonData are a group's counters per L3 cache id.
type MonData map[int]Counters

// Sum adds the counters of all cache ids.
func (d MonData) Sum() Counters {
	var s Counters
	ids := make([]int, 0, len(d))
	for id := range d {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		c := d[id]
		s.LLCOccupancy += c.LLCOccupancy
		s.MBMTotalBytes += c.MBMTotalBytes
		s.MBMLocalBytes += c.MBMLocalBytes
		s.Missing = append(s.Missing, c.Missing...)
	}
	return s
}

// Bandwidth is the memory bandwidth, in bytes per second, between prev and
// c taken dt apart (0 if the counter went backwards: the RMID was reused).
func (c Counters) Bandwidth(prev Counters, dt time.Duration) float64 {
	if dt <= 0 || c.MBMTotalBytes < prev.MBMTotalBytes {
		return 0
	}
	return float64(c.MBMTotalBytes-prev.MBMTotalBytes) / dt.Seconds()
}

// MonData reads the class's monitoring counters (mon_data/mon_L3_XX),
// which cover all of its tasks, those in its monitoring groups included.
func (c *Class) MonData() (MonData, error) {
	if err := c.r.monSupported(); err != nil {
		return nil, err
	}
	return readMonData(filepath.Join(c.dir, "mon_data"))
}

// MonData reads the monitoring group's counters.
func (m *MonGroup) MonData() (MonData, error) {
	if err := m.class.r.monSupported(); err != nil {
		return nil, err
	}
	return readMonData(filepath.Join(m.dir, "mon_data"))
}

func readMonData(dir string) (MonData, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &FileError{Op: "read", Path: dir, Err: err}
	}
	out := MonData{}
	for _, e := range entries {
		idS, ok := strings.CutPrefix(e.Name(), "mon_L3_")
		if !ok {
			continue
		}
		id, err := strconv.Atoi(idS)
		if err != nil {
			continue
		}
		var c Counters
		for _, f := range []struct {
			name string
			dst  *uint64
		}{{LLCOccupancy, &c.LLCOccupancy}, {MBMTotalBytes, &c.MBMTotalBytes}, {MBMLocalBytes, &c.MBMLocalBytes}} {
			path := filepath.Join(dir, e.Name(), f.name)
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, &FileError{Op: "read", Path: path, Err: err}
			}
			s := strings.TrimSpace(string(data))
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				if s == "Unavailable" || s == "Error" {
					c.Missing = append(c.Missing, fmt.Sprintf("%s@%d", f.name, id))
					continue
				}
				return nil, &FileError{Op: "parse", Path: path, Value: s, Err: err}
			}
			*f.dst = v
		}
		out[id] = c
	}
	return out, nil
}
