package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// CPUUsage reads the cgroup's cumulative CPU time: v1 cpuacct.usage
// (nanoseconds), v2 cpu.stat usage_usec.
func (c *Cgroup) CPUUsage() (time.Duration, error) {
	if c.h.mode == V2 {
		st, err := c.CPUStat()
		return st.Usage, err
	}
	dir, err := c.Dir(CPUAcct)
	if err != nil {
		return 0, err
	}
	ns, err := readUint(dir, "cpuacct.usage")
	return time.Duration(ns), err
}

// CPUStat is the CFS bandwidth statistics of a cgroup.
type CPUStat struct {
	Usage         time.Duration // v2 only (v1: see CPUUsage)
	Periods       uint64        // enforcement periods that elapsed with runnable tasks
	Throttled     uint64        // periods in which the group was throttled
	ThrottledTime time.Duration // total time throttled
}

// CPUStat reads cpu.stat (v1: nr_periods, nr_throttled, throttled_time in
// ns; v2: usage_usec, nr_periods, nr_throttled, throttled_usec).
func (c *Cgroup) CPUStat() (CPUStat, error) {
	var st CPUStat
	dir, err := c.Dir(CPU)
	if err != nil {
		return st, err
	}
	path := filepath.Join(dir, "cpu.stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return st, &FileError{Op: "read", Path: path, Err: classify(dir, path, err)}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(" "))
		if !ok {
			return st, &FileError{Op: "parse", Path: path, Value: sc.Text(), Err: fmt.Errorf("line %d: want \"key value\"", line)}
		}
		v, err := strconv.ParseUint(string(val), 10, 64)
		if err != nil {
			return st, &FileError{Op: "parse", Path: path, Value: sc.Text(), Err: fmt.Errorf("line %d: %w", line, err)}
		}
		switch string(key) {
		case "usage_usec":
			st.Usage = time.Duration(v) * time.Microsecond
		case "nr_periods":
			st.Periods = v
		case "nr_throttled":
			st.Throttled = v
		case "throttled_time": // v1, nanoseconds
			st.ThrottledTime = time.Duration(v)
		case "throttled_usec": // v2
			st.ThrottledTime = time.Duration(v) * time.Microsecond
		}
	}
	return st, nil
}
