package cpuset_test

import (
	"fmt"
	"os"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	kcpuset "k8s.io/utils/cpuset"
)

// A 2-socket machine with 4 cores of 2 threads per socket: CPUs 0-3 and
// 8-11 are socket 0 (siblings N and N+8), 4-7 and 12-15 socket 1.
func Example() {
	root, err := os.MkdirTemp("", "sysfs-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	shape := cpusettest.Shape{Name: "example", Packages: 2, CoresPerL3: 4, ThreadsPerCore: 2}
	if err := cpusettest.WriteSysfs(root, shape); err != nil {
		panic(err)
	}
	topo, err := cpuset.Discover(root)
	if err != nil {
		panic(err)
	}
	alloc, err := cpuset.NewAllocator(topo, cpuset.AllocatorOptions{Reserved: kcpuset.New(0)})
	if err != nil {
		panic(err)
	}

	// CPU 0 is reserved, so its sibling 8 is the natural single CPU. Four
	// CPUs are two whole cores on one socket: socket 0, the better fit now
	// that it is partly used, so socket 1 stays whole.
	one, _ := alloc.TakeExclusive(1, cpuset.TakeOptions{})
	four, _ := alloc.TakeExclusive(4, cpuset.TakeOptions{})
	fmt.Println("1 CPU:", one)
	fmt.Println("4 CPUs:", four, "mems", topo.MemsFor(four))

	// Too many: a typed error, nothing taken.
	_, err = alloc.TakeExclusive(20, cpuset.TakeOptions{})
	fmt.Println(err)

	// A shared pool on what is left grows next to itself.
	pool := kcpuset.New(4, 12)
	more, _ := topo.Grow(pool, alloc.Free().Difference(pool), 2)
	fmt.Println("grow pool", pool, "by", more)

	_ = alloc.Release(four)
	fmt.Println("free after release:", alloc.Free())
	// Output:
	// 1 CPU: 8
	// 4 CPUs: 1-2,9-10 mems 0
	// cpuset: requested 20 CPUs, only 10 available
	// grow pool 4,12 by 5,13
	// free after release: 1-7,9-15
}

// Shared pools: carve the machine into two compact pools, then let the
// first give back CPUs without touching an exclusive allocation inside it.
func ExampleTopology_Shrink() {
	root, err := os.MkdirTemp("", "sysfs-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	// 2 sockets × 4 cores × 2 threads: socket 0 is 0-3 and 8-11.
	shape := cpusettest.Shape{Name: "example", Packages: 2, CoresPerL3: 4, ThreadsPerCore: 2}
	if err := cpusettest.WriteSysfs(root, shape); err != nil {
		panic(err)
	}
	topo, err := cpuset.Discover(root)
	if err != nil {
		panic(err)
	}
	pools, _ := topo.Carve(topo.Online(), []int{10, 4})
	fmt.Println("pools:", pools[0], "and", pools[1])

	// Pool 0 spills one core into socket 1; shrinking by 2 gives that
	// core back first. Its exclusive CPUs 0 and 8 are protected.
	give, _ := topo.Shrink(pools[0], kcpuset.New(0, 8), 2)
	fmt.Println("give back:", give)
	fmt.Println("pool 0 now:", pools[0].Difference(give))
	// Output:
	// pools: 0-4,8-12 and 5-6,13-14
	// give back: 4,12
	// pool 0 now: 0-3,8-11
}
