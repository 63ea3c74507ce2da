package cpuset_test

import (
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	kcpuset "k8s.io/utils/cpuset"
)

// busyAllocator returns an allocator on the largest fixture holding 100
// existing allocations of 1 to 4 CPUs (250 of 448 CPUs), so the benchmark
// sees a fragmented machine rather than an empty one.
func busyAllocator(b *testing.B, opts cpuset.AllocatorOptions) *cpuset.Allocator {
	b.Helper()
	topo, err := cpuset.Discover(cpusettest.Root(b, cpusettest.Big448))
	if err != nil {
		b.Fatal(err)
	}
	a, err := cpuset.NewAllocator(topo, opts)
	if err != nil {
		b.Fatal(err)
	}
	var taken []kcpuset.CPUSet
	for i := 0; i < 100; i++ {
		got, err := a.TakeExclusive(1+i%4, cpuset.TakeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		taken = append(taken, got)
	}
	// Free every third allocation so holes of mixed sizes exist, then take
	// as many back so that 100 allocations remain.
	for i := 0; i < len(taken); i += 3 {
		if err := a.Release(taken[i]); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < len(taken); i += 3 {
		if _, err := a.TakeExclusive(1+(i+1)%4, cpuset.TakeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return a
}

// BenchmarkAllocateTakeRelease8 measures one take of 8 exclusive CPUs and
// its release on Big448 with 100 allocations in place. Goal: ≤ 20 µs and
// ≤ 10 allocations per operation.
func BenchmarkAllocateTakeRelease8(b *testing.B) {
	a := busyAllocator(b, cpuset.AllocatorOptions{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := a.TakeExclusive(8, cpuset.TakeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Release(got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocateTakeRelease8Spread is the same with one thread per core.
func BenchmarkAllocateTakeRelease8Spread(b *testing.B) {
	a := busyAllocator(b, cpuset.AllocatorOptions{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := a.TakeExclusive(8, cpuset.TakeOptions{Spread: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Release(got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiscover measures topology discovery of Big448 (448 CPUs, 8
// nodes) from a tmpfs tree. Goal: ≤ 20 ms.
func BenchmarkDiscover(b *testing.B) {
	root := cpusettest.Root(b, cpusettest.Big448)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cpuset.Discover(root); err != nil {
			b.Fatal(err)
		}
	}
}
