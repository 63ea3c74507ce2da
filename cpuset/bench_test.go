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
	topo := fixture(b, cpusettest.Big448)
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
	root := fixtureRoot(b, cpusettest.Big448)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cpuset.Discover(root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResizeGrowShrink8 measures one pool resize step on Big448: grow
// a 100-CPU pool by 8 CPUs from the rest of the machine, then choose 8 to
// give back.
func BenchmarkResizeGrowShrink8(b *testing.B) {
	topo := fixture(b, cpusettest.Big448)
	pool := mustParse(b, "0-49,224-273")
	rest := topo.Online().Difference(pool)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		more, err := topo.Grow(pool, rest, 8)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := topo.Shrink(pool.Union(more), kcpuset.New(), 8); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCarve measures splitting Big448 into three shared pools.
func BenchmarkCarve(b *testing.B) {
	topo := fixture(b, cpusettest.Big448)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := topo.Carve(topo.Online(), []int{200, 100, 48}); err != nil {
			b.Fatal(err)
		}
	}
}
