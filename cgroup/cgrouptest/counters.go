package cgrouptest

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/strata-nri/strata/cgroup"
)

// SetCounters writes counter values (in the canonical units of
// cgroup.Counter: ns, bytes, periods) into cgroup rel's files, in the units
// and layout of the tree's mode: cpuacct.usage in ns on v1, cpu.stat
// usage_usec on v2, memory.stat total_* keys on v1, and so on. Other lines
// keep their values, so tests that drive a sampler need not know file names.
func (t *Tree) SetCounters(rel string, values map[cgroup.Counter]uint64) error {
	h, err := t.Hierarchy()
	if err != nil {
		return err
	}
	cg, err := h.Open(rel)
	if err != nil {
		return err
	}
	for k, v := range values {
		srcs, err := cg.CounterSources(k)
		if err != nil {
			return err
		}
		src := srcs[0]
		f := src.Fields[0]
		if v%f.Scale != 0 {
			return fmt.Errorf("cgrouptest: %v value %d is not a multiple of the file's unit %d", k, v, f.Scale)
		}
		text := strconv.FormatUint(v/f.Scale, 10)
		if f.Key == "" {
			if err := os.WriteFile(src.Path, []byte(text+"\n"), 0o644); err != nil {
				return err
			}
			continue
		}
		if err := setKey(src.Path, f.Key, text); err != nil {
			return err
		}
	}
	return nil
}

// setKey replaces the value of "key value" in a flat keyed file, appending
// the line if the file lacks it.
func setKey(path, key, value string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	done := false
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, " "); ok && k == key {
			lines[i] = key + " " + value
			done = true
		}
	}
	if !done {
		lines = append(lines, key+" "+value)
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// SetPressure writes cgroup rel's PSI file for resource r with the given
// cumulative stall totals in microseconds and avg10 percentages (the avg60
// and avg300 fields are written as 0.00). It fails on a pure v1 tree, which
// has no PSI files.
func (t *Tree) SetPressure(rel string, r cgroup.PSIResource, someTotalUs, fullTotalUs uint64, someAvg10, fullAvg10 float64) error {
	h, err := t.Hierarchy()
	if err != nil {
		return err
	}
	cg, err := h.Open(rel)
	if err != nil {
		return err
	}
	path, err := cg.PressureFile(r)
	if err != nil {
		return err
	}
	content := fmt.Sprintf("some avg10=%.2f avg60=0.00 avg300=0.00 total=%d\nfull avg10=%.2f avg60=0.00 avg300=0.00 total=%d\n",
		someAvg10, someTotalUs, fullAvg10, fullTotalUs)
	return os.WriteFile(path, []byte(content), 0o644)
}
