package cgroup_test

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/strata-nri/strata/cgroup"
)

var allCounters = []cgroup.Counter{
	cgroup.CounterCPUUsage, cgroup.CounterCPUPeriods, cgroup.CounterCPUThrottledPeriods, cgroup.CounterCPUThrottledTime,
	cgroup.CounterMemoryAnon, cgroup.CounterMemoryFile, cgroup.CounterMemoryActiveFile, cgroup.CounterMemoryInactiveFile,
}

// maxErrLen bounds an error about one cgroup file: its path, a quoted and
// cut value, a reason. A corrupt megabyte file must not make a megabyte
// error.
const maxErrLen = 1024

// FuzzCounterParse feeds arbitrary content to every counter source of v1
// and v2 (cpuacct.usage, cpu.stat, memory.stat): no panic, a bounded
// error, and a single-value file parses to exactly strconv's value times
// its scale.
func FuzzCounterParse(f *testing.F) {
	for _, s := range []string{"123\n", "", "\n", "usage_usec 10\nnr_periods 1\nnr_throttled 0\nthrottled_usec 5\n",
		"anon 1\nfile 2\nactive_file 3\ninactive_file 4\n", "total_rss 1\ntotal_cache 2\n", "usage_usec 18446744073709551615\n",
		"18446744073709551615", "nr_periods -1\n", "key\n", " 1\n", "anon 1 2\n"} {
		f.Add([]byte(s))
	}
	var sources [][]cgroup.CounterSource
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		_, cg := statTree(f, mode, "/c")
		srcs, err := cg.CounterSources(allCounters...)
		if err != nil {
			f.Fatal(err)
		}
		sources = append(sources, srcs)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, srcs := range sources {
			for _, s := range srcs {
				var out [cgroup.NumCounters]uint64
				err := s.Parse(b, &out)
				if err != nil {
					var fe *cgroup.FileError
					if !errors.As(err, &fe) {
						t.Fatalf("%s: error %v is not a *FileError", s.Path, err)
					}
					if n := len(err.Error()); n > maxErrLen+len(s.Path) {
						t.Fatalf("%s: error of %d bytes", s.Path, n)
					}
					continue
				}
				if len(s.Fields) == 1 && s.Fields[0].Key == "" {
					v, perr := strconv.ParseUint(string(bytes.TrimRight(b, "\n")), 10, 64)
					if perr != nil || out[s.Fields[0].Counter] != v*s.Fields[0].Scale {
						t.Fatalf("%s: %q parsed to %d, strconv says %d (%v)", s.Path, b, out[s.Fields[0].Counter], v, perr)
					}
				}
			}
		}
	})
}

// FuzzStatFiles writes arbitrary content into cpu.stat and memory.stat of
// a fixture cgroup and reads them through CPUStat and MemoryStat: no
// panic, and a bounded *FileError when they do not parse.
func FuzzStatFiles(f *testing.F) {
	for _, s := range []string{"nr_periods 1\nnr_throttled 0\nthrottled_time 5\n", "usage_usec 1\n", "anon 5\nfile 7\n",
		"", "x", "anon 99999999999999999999\n", "nr_periods 1\x00\n"} {
		f.Add([]byte(s))
	}
	tree, cg := statTree(f, cgroup.V2, "/c")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{"cpu.stat", "memory.stat"} {
			if err := tree.WriteFile("", "/c", name, string(b)); err != nil {
				t.Fatal(err)
			}
		}
		for _, err := range []error{func() error { _, err := cg.CPUStat(); return err }(), func() error { _, err := cg.MemoryStat(); return err }()} {
			if err == nil {
				continue
			}
			var fe *cgroup.FileError
			if !errors.As(err, &fe) || len(err.Error()) > maxErrLen+len(fe.Path) {
				t.Fatalf("error %.200q (%d bytes)", err, len(err.Error()))
			}
		}
	})
}
