package pressure

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
)

// fixtureSampler builds a fixture tree of mode with n container cgroups
// below kubepods pods and a Sampler over all of them.
func fixtureSampler(tb testing.TB, mode cgroup.Mode, n int, opts SamplerOptions) (*Sampler, *cgrouptest.Tree) {
	tb.Helper()
	tree := newTree(tb, mode)
	h := mustHierarchy(tb, tree)
	s := NewSampler(h, opts)
	tb.Cleanup(func() { s.Close() })
	for i := 0; i < n; i++ {
		rel := fmt.Sprintf("/kubepods/burstable/pod%04d/ctr%04d", i/10, i)
		cg := addCgroup(tb, tree, h, rel)
		if err := tree.SetCounters(rel, map[cgroup.Counter]uint64{
			cgroup.CounterCPUUsage: uint64(i) * uint64(time.Millisecond), cgroup.CounterMemoryFile: uint64(i) << 20,
		}); err != nil {
			tb.Fatal(err)
		}
		if err := s.Add(fmt.Sprintf("ctr%04d", i), cg); err != nil {
			tb.Fatal(err)
		}
	}
	return s, tree
}

// BenchmarkSamplePass measures one pass over 1000 cgroups (CPU usage,
// throttling and memory.stat; the PSI variant adds two PSI files per cgroup;
// memory-every-5 reads memory.stat on every fifth pass) of fixture trees.
// Goal: at most 5 ms and 0 allocations per pass after warm-up. The fixture
// files are on a disk filesystem, where a pread costs this VM about 1.2 µs;
// real cgroupfs files cost the kernel more to produce (see
// SamplerOptions.MemoryEvery), which no sampler design can avoid.
func BenchmarkSamplePass(b *testing.B) {
	for _, bc := range []struct {
		name string
		mode cgroup.Mode
		opts SamplerOptions
	}{
		{"v1", cgroup.V1, SamplerOptions{}},
		{"v2", cgroup.V2, SamplerOptions{}},
		{"v2+psi", cgroup.V2, SamplerOptions{PSI: true}},
		{"v1+memory-every-5", cgroup.V1, SamplerOptions{MemoryEvery: 5}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := fixtureSampler(b, bc.mode, 1000, bc.opts)
			if p := s.Sample(); len(p.Samples) != 1000 || len(p.Errors) != 0 {
				b.Fatalf("warm-up pass: %d samples, errors %v", len(p.Samples), p.Errors)
			}
			b.ReportAllocs()
			cpu0 := processCPUTime()
			for b.Loop() {
				s.Sample()
			}
			// The development machines are shared; CPU time per pass shows
			// the sampler's own cost apart from waiting for a CPU.
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/pass")
			b.ReportMetric(float64((processCPUTime()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/pass")
		})
	}
}

// processCPUTime is the user plus system CPU time of the test process.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSamplePassAllocatesNothing pins the zero-allocation property that
// BenchmarkSamplePass measures, for each mode, so a regression fails the
// unit tier and not only a benchmark someone must read.
func TestSamplePassAllocatesNothing(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.Hybrid, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			s, _ := fixtureSampler(t, mode, 20, SamplerOptions{PSI: true})
			s.Sample()
			if n := testing.AllocsPerRun(20, func() { s.Sample() }); n != 0 {
				t.Errorf("a pass allocates %v times, want 0", n)
			}
		})
	}
}
