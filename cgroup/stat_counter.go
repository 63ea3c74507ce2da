package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/strata-nri/strata/internal/byteconv"
)

// Counter is a numeric cgroup value that a sampler re-reads many times a
// second. CounterSources says where each lives, so the sampler can keep the
// files open and re-read them into one buffer without allocating; the
// values come out in one canonical unit per kind (nanoseconds, bytes,
// periods) whatever the version.
type Counter int

// Counters a sampler can ask for.
const (
	// CounterCPUUsage is cumulative CPU time in ns (v1 cpuacct.usage, v2
	// cpu.stat usage_usec).
	CounterCPUUsage Counter = iota
	// CounterCPUPeriods is the number of CFS bandwidth periods with
	// runnable tasks (cpu.stat nr_periods).
	CounterCPUPeriods
	// CounterCPUThrottledPeriods is the number of periods in which the
	// group was throttled (cpu.stat nr_throttled).
	CounterCPUThrottledPeriods
	// CounterCPUThrottledTime is the cumulative time throttled in ns
	// (v1 cpu.stat throttled_time, v2 throttled_usec).
	CounterCPUThrottledTime
	// CounterMemoryAnon .. CounterMemoryInactiveFile are the memory.stat
	// values of MemoryStat, in bytes (gauges, not cumulative).
	CounterMemoryAnon
	CounterMemoryFile
	CounterMemoryActiveFile
	CounterMemoryInactiveFile

	// NumCounters is the number of Counter values, for arrays indexed by
	// Counter.
	NumCounters
)

var counterNames = [NumCounters]string{
	"cpu usage", "cpu periods", "cpu throttled periods", "cpu throttled time",
	"memory anon", "memory file", "memory active file", "memory inactive file",
}

func (k Counter) String() string {
	if k < 0 || k >= NumCounters {
		return fmt.Sprintf("Counter(%d)", int(k))
	}
	return counterNames[k]
}

// CounterSource is one file holding counters, and how to find each in it.
type CounterSource struct {
	// Path is the absolute path of the file.
	Path string
	// Fields say which counters the file carries.
	Fields []CounterField
}

// CounterField locates one counter in a file: the whole content when Key is
// empty (v1 cpuacct.usage), else the value on the line "Key value" (flat
// keyed files such as cpu.stat and memory.stat). The file's value times
// Scale is the counter in its canonical unit. An Optional key may be absent
// and then reads as 0: cgroup v2 shows the CFS bandwidth lines of cpu.stat
// only where the cpu controller is enabled for the cgroup, and a cgroup
// without it has no quota, hence no throttling.
type CounterField struct {
	Counter  Counter
	Key      string
	Scale    uint64
	Optional bool
}

type counterLoc struct {
	ctl      string
	file     string
	key      string
	scale    uint64
	optional bool
}

func counterLocation(m Mode, k Counter) (counterLoc, bool) {
	const usec = 1000
	if m == V2 {
		switch k {
		case CounterCPUUsage:
			return counterLoc{CPU, "cpu.stat", "usage_usec", usec, false}, true
		case CounterCPUPeriods:
			return counterLoc{CPU, "cpu.stat", "nr_periods", 1, true}, true
		case CounterCPUThrottledPeriods:
			return counterLoc{CPU, "cpu.stat", "nr_throttled", 1, true}, true
		case CounterCPUThrottledTime:
			return counterLoc{CPU, "cpu.stat", "throttled_usec", usec, true}, true
		case CounterMemoryAnon:
			return counterLoc{Memory, "memory.stat", "anon", 1, false}, true
		case CounterMemoryFile:
			return counterLoc{Memory, "memory.stat", "file", 1, false}, true
		case CounterMemoryActiveFile:
			return counterLoc{Memory, "memory.stat", "active_file", 1, false}, true
		case CounterMemoryInactiveFile:
			return counterLoc{Memory, "memory.stat", "inactive_file", 1, false}, true
		}
		return counterLoc{}, false
	}
	switch k {
	case CounterCPUUsage:
		return counterLoc{CPUAcct, "cpuacct.usage", "", 1, false}, true
	case CounterCPUPeriods:
		return counterLoc{CPU, "cpu.stat", "nr_periods", 1, false}, true
	case CounterCPUThrottledPeriods:
		return counterLoc{CPU, "cpu.stat", "nr_throttled", 1, false}, true
	case CounterCPUThrottledTime:
		return counterLoc{CPU, "cpu.stat", "throttled_time", 1, false}, true
	case CounterMemoryAnon:
		return counterLoc{Memory, "memory.stat", "total_rss", 1, false}, true
	case CounterMemoryFile:
		return counterLoc{Memory, "memory.stat", "total_cache", 1, false}, true
	case CounterMemoryActiveFile:
		return counterLoc{Memory, "memory.stat", "total_active_file", 1, false}, true
	case CounterMemoryInactiveFile:
		return counterLoc{Memory, "memory.stat", "total_inactive_file", 1, false}, true
	}
	return counterLoc{}, false
}

// CounterSources groups the requested counters by the file that holds them,
// in the order first requested. A counter whose controller is not mounted
// gives ErrNoController; nothing is opened here.
func (c *Cgroup) CounterSources(counters ...Counter) ([]CounterSource, error) {
	var out []CounterSource
	index := map[string]int{}
	for _, k := range counters {
		loc, ok := counterLocation(c.h.mode, k)
		if !ok {
			return nil, fmt.Errorf("cgroup %s: unknown counter %v", c.path, k)
		}
		dir, err := c.Dir(loc.ctl)
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %v: %w", c.path, k, err)
		}
		path := filepath.Join(dir, loc.file)
		i, seen := index[path]
		if !seen {
			i = len(out)
			index[path] = i
			out = append(out, CounterSource{Path: path})
		}
		out[i].Fields = append(out[i].Fields, CounterField{Counter: k, Key: loc.key, Scale: loc.scale, Optional: loc.optional})
	}
	return out, nil
}

// ErrMissingKey reports a counter file that lacks a line the layer expects.
var ErrMissingKey = errors.New("key missing")

// Parse extracts the source's counters from the file content b into out,
// indexed by Counter. It allocates nothing unless it fails; then the error is
// a *FileError naming the file and the line. Only lines that may hold a
// wanted key are checked (a pass reads memory.stat hundreds of times a
// second and wants 4 of its 40-60 lines); it stops once every key is found.
func (s *CounterSource) Parse(b []byte, out *[NumCounters]uint64) error {
	if len(s.Fields) == 1 && s.Fields[0].Key == "" {
		f := s.Fields[0]
		line := bytes.TrimRight(b, "\n")
		v, ok := byteconv.ParseUint(line)
		if !ok {
			return &FileError{Op: "parse", Path: s.Path, Value: string(line), Err: errors.New("line 1: want one unsigned integer")}
		}
		if !scaled(v, f.Scale, &out[f.Counter]) {
			return &FileError{Op: "parse", Path: s.Path, Value: string(line), Err: errors.New("line 1: value overflows in canonical units")}
		}
		return nil
	}
	var seen uint64 // bit i: Fields[i] found
	all := uint64(1)<<len(s.Fields) - 1
	var required uint64
	for i, f := range s.Fields {
		if f.Optional {
			out[f.Counter] = 0
		} else {
			required |= 1 << i
		}
	}
	// First bytes of the wanted keys: most lines of memory.stat are not
	// wanted and are skipped on their first byte.
	var firsts [4]uint64
	for _, f := range s.Fields {
		if f.Key != "" {
			firsts[f.Key[0]>>6] |= 1 << (f.Key[0] & 63)
		}
	}
	lineNo := 0
	for len(b) > 0 && seen != all {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(line) > 0 && firsts[line[0]>>6]&(1<<(line[0]&63)) == 0 && line[0] != ' ' {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			return &FileError{Op: "parse", Path: s.Path, Value: string(line), Err: fmt.Errorf("line %d: want \"key value\"", lineNo)}
		}
		key := line[:sp]
		for i, f := range s.Fields {
			if string(key) != f.Key {
				continue
			}
			v, ok := byteconv.ParseUint(line[sp+1:])
			if !ok {
				return &FileError{Op: "parse", Path: s.Path, Value: string(line), Err: fmt.Errorf("line %d: %s: want an unsigned integer", lineNo, f.Key)}
			}
			if !scaled(v, f.Scale, &out[f.Counter]) {
				return &FileError{Op: "parse", Path: s.Path, Value: string(line), Err: fmt.Errorf("line %d: %s: value overflows in canonical units", lineNo, f.Key)}
			}
			seen |= 1 << i
			break
		}
	}
	if seen&required != required {
		var missing []string
		for i, f := range s.Fields {
			if seen&(1<<i) == 0 && !f.Optional {
				missing = append(missing, f.Key)
			}
		}
		return &FileError{Op: "parse", Path: s.Path, Err: fmt.Errorf("%w: %v", ErrMissingKey, missing)}
	}
	return nil
}

// scaled stores v × scale in dst, reporting false when it overflows (a
// corrupt file; no kernel counter gets there).
func scaled(v, scale uint64, dst *uint64) bool {
	if scale > 1 && v > math.MaxUint64/scale {
		return false
	}
	*dst = v * scale
	return true
}
