package rdt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ClassConfig is what a class should hold.
type ClassConfig struct {
	// Schemata is written as given (see Schemata); resources and cache
	// ids it leaves out keep the group's values.
	Schemata Schemata
	// Exclusive keeps every other group — the default group included —
	// off this class's cache ways: Apply refuses overlaps (narrow the
	// default group, class "", in the same Apply) and sets the group's
	// mode to "exclusive" so the kernel holds it so. Exclusive ways may not
	// include the hardware's shareable_bits.
	Exclusive bool
}

// Class is one control group under the prefix, or the default (root)
// group when its name is "".
type Class struct {
	r    *Resctrl
	name string
	dir  string
}

// Name returns the class name without the prefix ("" for the default group).
func (c *Class) Name() string { return c.name }

// Dir returns the group's directory.
func (c *Class) Dir() string { return c.dir }

// Group returns the resctrl group name (the directory name, prefix
// included; "" for the default group).
func (c *Class) Group() string {
	if c.name == "" {
		return ""
	}
	return c.r.prefix + c.name
}

// Schemata reads the group's schemata file. On a real kernel it lists every
// resource and cache id; a fixture tree shows what was written.
func (c *Class) Schemata() (Schemata, error) {
	return readSchemataFile(filepath.Join(c.dir, "schemata"))
}

// Exclusive reports whether the group's mode is "exclusive".
func (c *Class) Exclusive() bool { return readMode(c.dir) == "exclusive" }

// Default returns the default group, which holds every task not in a
// class. It cannot be deleted; Apply with class "" changes its schemata.
func (r *Resctrl) Default() *Class { return &Class{r: r, dir: r.root} }

// Class returns the class of that name, or an error matching ErrNoClass.
func (r *Resctrl) Class(name string) (*Class, error) {
	if name == "" {
		return r.Default(), nil
	}
	if err := validName(name, false); err != nil {
		return nil, &InvalidError{Class: name, CacheID: -1, Value: name, Reason: err.Error()}
	}
	dir := filepath.Join(r.root, r.prefix+name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %q (no %s)", ErrNoClass, name, dir)
	}
	return &Class{r: r, name: name, dir: dir}, nil
}

// Classes lists the classes under the prefix, by name.
func (r *Resctrl) Classes() ([]*Class, error) {
	groups, err := r.groups()
	if err != nil {
		return nil, err
	}
	var out []*Class
	for _, g := range groups {
		if name, ok := strings.CutPrefix(g, r.prefix); ok && g != "" {
			out = append(out, &Class{r: r, name: name, dir: filepath.Join(r.root, g)})
		}
	}
	return out, nil
}

// groups lists every control group in resctrl, the default group ("")
// first, then the directories at the root, including other agents'.
func (r *Resctrl) groups() ([]string, error) {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return nil, &FileError{Op: "read", Path: r.root, Err: err}
	}
	out := []string{""}
	for _, e := range entries {
		if e.IsDir() && !reserved[e.Name()] {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out[1:])
	return out, nil
}

var reserved = map[string]bool{"info": true, "mon_groups": true, "mon_data": true}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validName checks a class (or prefix, or monitoring group) name: a
// single directory name of letters, digits, '_', '.', '-', at most 64 bytes.
func validName(name string, prefix bool) error {
	switch {
	case name == "" && prefix:
		return errors.New("empty prefix")
	case name == "":
		return errors.New("empty name")
	case len(name) > 64:
		return fmt.Errorf("longer than 64 bytes")
	case !nameRE.MatchString(name) || name == "." || name == "..":
		return fmt.Errorf("use letters, digits, '_', '.' and '-' only")
	case reserved[name]:
		return fmt.Errorf("reserved by resctrl")
	}
	return nil
}

// Apply makes the classes hold cfgs, creating those that do not exist;
// class "" is the default group. It validates everything first — each
// schemata against the hardware, exclusive ways against every other
// group's (other agents' too) in the resulting state, and the CLOSID and
// RMID budgets — and then writes in an order the kernel accepts: groups
// that give ways up before groups that take them, new groups last. If the
// kernel still refuses a write, everything written is rolled back (new
// groups removed) and the error says which file, value and kernel status.
func (r *Resctrl) Apply(cfgs map[string]ClassConfig) error {
	if !r.info.Allocation() {
		return &NotSupportedError{Feature: "allocation", Reason: "this host's resctrl offers monitoring only (no info/L3, info/L2 or info/MB)"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	names := make([]string, 0, len(cfgs))
	for name, cfg := range cfgs {
		if name != "" {
			if err := validName(name, false); err != nil {
				return &InvalidError{Class: name, CacheID: -1, Value: name, Reason: err.Error()}
			}
		} else if cfg.Exclusive {
			return &InvalidError{Class: name, CacheID: -1, Reason: "the default group cannot be exclusive"}
		}
		if err := r.Validate(name, cfg.Schemata); err != nil {
			return err
		}
		names = append(names, name)
	}
	sort.Strings(names)

	// Current state of every group, and the state after Apply.
	groups, err := r.groups()
	if err != nil {
		return err
	}
	type state struct {
		class     string // our class name, or the foreign group's directory name
		dir       string
		schemata  Schemata
		exclusive bool
		exists    bool
	}
	now := map[string]*state{}
	for _, g := range groups {
		dir := filepath.Join(r.root, g)
		s, err := readSchemataFile(filepath.Join(dir, "schemata"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if s == nil {
			s = Schemata{}
		}
		class := g
		if n, ok := strings.CutPrefix(g, r.prefix); ok {
			class = n
		}
		now[g] = &state{class: class, dir: dir, schemata: s, exclusive: readMode(dir) == "exclusive", exists: true}
	}
	after := map[string]*state{}
	for g, st := range now {
		cp := *st
		cp.schemata = st.schemata.Clone()
		after[g] = &cp
	}
	var created int
	for _, name := range names {
		g := r.prefix + name
		if name == "" {
			g = ""
		}
		st := after[g]
		if st == nil {
			st = &state{class: name, dir: filepath.Join(r.root, g), schemata: Schemata{}}
			after[g] = st
			created++
		}
		for res, doms := range cfgs[name].Schemata {
			if st.schemata[res] == nil {
				st.schemata[res] = map[int]uint64{}
			}
			for id, v := range doms {
				st.schemata[res][id] = v
			}
		}
		st.exclusive = cfgs[name].Exclusive
	}

	// Exclusive ways overlap nobody, and not the hardware's shareable bits.
	keys := make([]string, 0, len(after))
	for g := range after {
		keys = append(keys, g)
	}
	sort.Strings(keys)
	for _, g := range keys {
		a := after[g]
		if !a.exclusive {
			continue
		}
		for res, doms := range a.schemata {
			c := r.info.Caches[res]
			if c == nil {
				continue
			}
			for id, mask := range doms {
				if mask&c.ShareableBits != 0 {
					return &InvalidError{Class: a.class, Resource: res, CacheID: id, Value: fmt.Sprintf("%#x", mask),
						Reason: fmt.Sprintf("exclusive ways overlap the hardware's shareable_bits %#x", c.ShareableBits)}
				}
				for _, o := range keys {
					if o == g {
						continue
					}
					for ores, odoms := range after[o].schemata {
						if !sameCache(res, ores) {
							continue
						}
						if om, ok := odoms[id]; ok && om&mask != 0 {
							other := after[o].class
							if o == "" {
								other = "default group"
							}
							return &InvalidError{Class: a.class, Resource: res, CacheID: id, Value: fmt.Sprintf("%#x", mask),
								Reason: fmt.Sprintf("exclusive ways overlap %s %q's %s mask %#x", kindOf(o, r.prefix), other, ores, om)}
						}
					}
				}
			}
		}
	}

	// Budgets: the default group holds CLOSID 0 (and RMID 0).
	if created > 0 {
		for _, name := range names {
			if now[r.prefix+name] != nil || name == "" {
				continue
			}
			if limit := r.info.NumCLOSIDs(); len(groups)+created > limit {
				return &BudgetError{Class: name, Kind: "CLOSID", InUse: len(groups), Limit: limit}
			}
			if r.info.Mon != nil {
				inUse, err := r.rmidsInUse()
				if err != nil {
					return err
				}
				if inUse+created > r.info.Mon.NumRMIDs {
					return &BudgetError{Class: name, Kind: "RMID", InUse: inUse, Limit: r.info.Mon.NumRMIDs}
				}
			}
			break
		}
	}

	// Write: narrowing groups first, then the others, then new groups.
	var undo []func()
	rollback := func(err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return err
	}
	type step struct {
		g    string
		cfg  ClassConfig
		prio int
	}
	var steps []step
	for _, name := range names {
		g := r.prefix + name
		if name == "" {
			g = ""
		}
		prio := 2
		if old := now[g]; old != nil {
			prio = 1
			if narrows(old.schemata, cfgs[name].Schemata) {
				prio = 0
			}
		}
		steps = append(steps, step{g, cfgs[name], prio})
	}
	slices.SortStableFunc(steps, func(a, b step) int { return a.prio - b.prio })
	// Groups that stop being exclusive say so before anything moves.
	for _, s := range steps {
		if old := now[s.g]; old != nil && old.exclusive && !s.cfg.Exclusive {
			dir := old.dir
			if err := r.writeFile(filepath.Join(dir, "mode"), "shareable"); err != nil {
				return rollback(err)
			}
			undo = append(undo, func() { _ = r.writeFile(filepath.Join(dir, "mode"), "exclusive") })
		}
	}
	for _, s := range steps {
		dir := after[s.g].dir
		if now[s.g] == nil {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return rollback(&FileError{Op: "mkdir", Path: dir, Err: err, Status: r.lastStatus()})
			}
			undo = append(undo, func() { _ = removeGroupDir(dir) })
		} else {
			old := now[s.g].schemata
			restore := Schemata{}
			for res, doms := range s.cfg.Schemata {
				for id := range doms {
					if v, ok := old[res][id]; ok {
						if restore[res] == nil {
							restore[res] = map[int]uint64{}
						}
						restore[res][id] = v
					}
				}
			}
			if len(restore) > 0 {
				undo = append(undo, func() { _ = r.writeFile(filepath.Join(dir, "schemata"), restore.String()) })
			}
		}
		if len(s.cfg.Schemata) > 0 {
			if err := r.writeFile(filepath.Join(dir, "schemata"), s.cfg.Schemata.String()); err != nil {
				return rollback(fmt.Errorf("class %q: %w", after[s.g].class, err))
			}
		}
	}
	for _, s := range steps {
		if old := now[s.g]; s.cfg.Exclusive && (old == nil || !old.exclusive) {
			dir := after[s.g].dir
			if err := r.writeFile(filepath.Join(dir, "mode"), "exclusive"); err != nil {
				return rollback(fmt.Errorf("class %q: %w", after[s.g].class, err))
			}
			undo = append(undo, func() { _ = r.writeFile(filepath.Join(dir, "mode"), "shareable") })
		}
	}
	return nil
}

func kindOf(group, prefix string) string {
	switch {
	case group == "":
		return "the"
	case strings.HasPrefix(group, prefix):
		return "class"
	}
	return "foreign group"
}

// sameCache reports whether two cache resources share ways: the same cache
// level, CDP halves included (the kernel compares a class's code mask with
// others' data masks too).
func sameCache(a, b Resource) bool {
	level := func(r Resource) string {
		return strings.TrimSuffix(strings.TrimSuffix(string(r), "CODE"), "DATA")
	}
	return isCache(a) && isCache(b) && level(a) == level(b)
}

// narrows reports whether next gives up ways (or bandwidth) relative to
// old and takes none: such writes go first.
func narrows(old, next Schemata) bool {
	for res, doms := range next {
		for id, v := range doms {
			o, ok := old[res][id]
			if !ok {
				return false
			}
			if isCache(res) && v&^o != 0 || !isCache(res) && v > o {
				return false
			}
		}
	}
	return true
}

// Delete removes the class's control group; the kernel moves its tasks to
// the default group and frees its CLOSID and RMIDs. Deleting a class that
// is gone is not an error.
func (c *Class) Delete() error {
	if c.name == "" {
		return &InvalidError{Class: "", CacheID: -1, Reason: "the default group cannot be deleted"}
	}
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return removeGroupDir(c.dir)
}

// removeGroupDir removes a resctrl group: rmdir, which on resctrl takes the
// group's files and monitoring groups with it. A plain directory (a fixture
// tree) is emptied first, as rmdir does not.
func removeGroupDir(dir string) error {
	err := os.Remove(dir)
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		err = os.RemoveAll(dir)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return &FileError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// AddTasks moves the tasks (PIDs or TIDs) into the class, one write per
// task as the kernel wants. A task that exited meanwhile (ESRCH) is not an
// error: it is returned in gone. Other failures are joined into err; the
// remaining tasks are still moved. To move a container, pass every PID of
// its cgroup (package cgroup reads them).
func (c *Class) AddTasks(pids ...int) (gone []int, err error) {
	return c.r.addTasks(c.dir, pids)
}

// AddProcesses moves every thread of each process into the class:
// resctrl moves one task (thread) per write, so each PID is expanded to
// /proc/PID/task/*. A process that exited is returned in gone. Threads
// the process starts later inherit the class.
func (c *Class) AddProcesses(pids ...int) (gone []int, err error) {
	return c.r.addProcesses(c.dir, pids)
}

func (r *Resctrl) addProcesses(dir string, pids []int) (gone []int, err error) {
	var tids []int
	for _, pid := range pids {
		t, terr := r.Threads(pid)
		if terr != nil {
			gone = append(gone, pid)
			continue
		}
		tids = append(tids, t...)
	}
	g, err := r.addTasks(dir, tids)
	return append(gone, g...), err
}

// Threads lists the threads (TIDs) of a process from /proc/PID/task; an
// error wrapping os.ErrNotExist means the process is gone.
func (r *Resctrl) Threads(pid int) ([]int, error) {
	dir := filepath.Join(r.proc, strconv.Itoa(pid), "task")
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) == 0 {
		err = os.ErrNotExist
	}
	if err != nil {
		return nil, &FileError{Op: "read", Path: dir, Err: err}
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, perr := strconv.Atoi(e.Name()); perr == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

func (r *Resctrl) addTasks(dir string, pids []int) (gone []int, err error) {
	path := filepath.Join(dir, "tasks")
	var errs []error
	for _, pid := range pids {
		if pid <= 0 {
			errs = append(errs, &FileError{Op: "write", Path: path, Value: strconv.Itoa(pid), Err: errors.New("not a PID")})
			continue
		}
		if werr := r.writeTask(path, pid); werr != nil {
			if errors.Is(werr, syscall.ESRCH) {
				gone = append(gone, pid)
				continue
			}
			errs = append(errs, &FileError{Op: "write", Path: path, Value: strconv.Itoa(pid), Err: werr, Status: r.lastStatus()})
		}
	}
	return gone, errors.Join(errs...)
}

// Tasks lists the tasks in the class (for the default group, on a real
// kernel, every task not in another group).
func (c *Class) Tasks() ([]int, error) { return readTasks(filepath.Join(c.dir, "tasks")) }

func readTasks(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &FileError{Op: "read", Path: path, Err: err}
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, &FileError{Op: "parse", Path: path, Value: f, Err: err}
		}
		out = append(out, pid)
	}
	return out, nil
}

// TaskGroup returns the resctrl control group of a task ("" for the default
// group) and its monitoring group ("" for none). It reads
// /proc/PID/cpu_resctrl_groups where the kernel has it
// (CONFIG_PROC_CPU_RESCTRL), else searches the groups' tasks files.
func (r *Resctrl) TaskGroup(pid int) (ctrl, mon string, err error) {
	if data, err := os.ReadFile(filepath.Join(r.proc, strconv.Itoa(pid), "cpu_resctrl_groups")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "res:"); ok {
				ctrl = strings.Trim(strings.TrimSpace(v), "/")
			}
			if v, ok := strings.CutPrefix(line, "mon:"); ok {
				v = strings.Trim(strings.TrimSpace(v), "/")
				mon = v[strings.LastIndexByte(v, '/')+1:]
			}
		}
		return ctrl, mon, nil
	}
	groups, err := r.groups()
	if err != nil {
		return "", "", err
	}
	for _, g := range groups {
		dir := filepath.Join(r.root, g)
		if g != "" {
			tasks, err := readTasks(filepath.Join(dir, "tasks"))
			if err != nil {
				return "", "", err
			}
			if !slices.Contains(tasks, pid) {
				continue
			}
			ctrl = g
		}
		mons, _ := os.ReadDir(filepath.Join(dir, "mon_groups"))
		for _, m := range mons {
			tasks, _ := readTasks(filepath.Join(dir, "mon_groups", m.Name(), "tasks"))
			if slices.Contains(tasks, pid) {
				return ctrl, m.Name(), nil
			}
		}
		if g != "" {
			return ctrl, "", nil
		}
	}
	return "", "", nil
}

// ClassOf returns the class of a task under this prefix: its name, "" for
// the default group, and false when the task sits in a foreign group.
func (r *Resctrl) ClassOf(pid int) (string, bool, error) {
	ctrl, _, err := r.TaskGroup(pid)
	if err != nil || ctrl == "" {
		return "", err == nil, err
	}
	name, ok := strings.CutPrefix(ctrl, r.prefix)
	return name, ok, nil
}

// writeFile writes value in one write (the kernel applies a schemata write
// whole or not at all) and adds the kernel's last_cmd_status to a failure.
func (r *Resctrl) writeFile(path, value string) error {
	if err := r.write(path, value); err != nil {
		return &FileError{Op: "write", Path: path, Value: strings.TrimSpace(value), Err: err, Status: r.lastStatus()}
	}
	return nil
}

// writeValue writes a control file in one write.
func writeValue(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writePID writes one PID to a tasks file.
func writePID(path string, pid int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(strconv.Itoa(pid) + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r *Resctrl) lastStatus() string {
	data, err := os.ReadFile(filepath.Join(r.root, "info", "last_cmd_status"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func readMode(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "mode"))
	if err != nil {
		return "shareable"
	}
	return strings.TrimSpace(string(data))
}
