package cgroup

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/strata-nri/strata/internal/byteconv"
)

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

// maxProcsBytes bounds the cgroup.procs that Files.Procs reads: 1 MiB,
// about 140 000 pids (a container's pids.max is far lower).
const maxProcsBytes = 1 << 20

// Procs is Cgroup.Procs through a kept file. The slice is f's: valid until
// the next call.
func (f *Files) Procs() ([]int, error) {
	ctl := CPU
	if f.c.h.mode != V2 {
		if _, ok := f.c.h.controllers[CPU]; !ok {
			keys := sortedKeys(f.c.h.controllers)
			if len(keys) == 0 {
				return nil, ErrNoController
			}
			ctl = keys[0]
		}
	}
	b, k, _, err := f.read(keptProcs, ctl, "cgroup.procs", "cgroup.procs")
	if err != nil {
		return nil, err
	}
	f.pids = f.pids[:0]
	sorted := true
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		v, ok := byteconv.ParseUint(bytes.TrimSpace(line))
		if !ok || v > math.MaxInt32 {
			return nil, &FileError{Op: "parse", Path: k.path, Value: string(line), Err: errors.New("want a process id")}
		}
		if n := len(f.pids); n > 0 && f.pids[n-1] > int(v) {
			sorted = false
		}
		f.pids = append(f.pids, int(v))
	}
	if !sorted {
		sort.Ints(f.pids)
	}
	return f.pids, nil
}
