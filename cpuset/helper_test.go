package cpuset_test

import (
	"os"
	"sync"
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	kcpuset "k8s.io/utils/cpuset"
)

// Fixture trees are written once per test binary: the biggest has some
// 15,000 files.
var fixtures struct {
	sync.Mutex
	dir   string
	roots map[string]string
	topos map[string]*cpuset.Topology
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

// fixtureRoot returns the sysfs root of a named shape, writing it on first
// use.
func fixtureRoot(tb testing.TB, s cpusettest.Shape) string {
	tb.Helper()
	fixtures.Lock()
	defer fixtures.Unlock()
	if r, ok := fixtures.roots[s.Name]; ok {
		return r
	}
	if fixtures.dir == "" {
		dir, err := os.MkdirTemp("/dev/shm", "cpuset-test-")
		if err != nil {
			dir, err = os.MkdirTemp("", "cpuset-test-")
		}
		if err != nil {
			tb.Fatal(err)
		}
		fixtures.dir = dir
		fixtures.roots = map[string]string{}
		fixtures.topos = map[string]*cpuset.Topology{}
	}
	root, err := os.MkdirTemp(fixtures.dir, s.Name+"-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := cpusettest.WriteSysfs(root, s); err != nil {
		tb.Fatal(err)
	}
	fixtures.roots[s.Name] = root
	return root
}

// fixture returns the discovered topology of a named shape.
func fixture(tb testing.TB, s cpusettest.Shape) *cpuset.Topology {
	tb.Helper()
	root := fixtureRoot(tb, s)
	fixtures.Lock()
	defer fixtures.Unlock()
	if t, ok := fixtures.topos[s.Name]; ok {
		return t
	}
	t, err := cpuset.Discover(root)
	if err != nil {
		tb.Fatalf("discover %s: %v", s.Name, err)
	}
	fixtures.topos[s.Name] = t
	return t
}

func mustParse(tb testing.TB, s string) kcpuset.CPUSet {
	tb.Helper()
	c, err := kcpuset.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func newAllocator(tb testing.TB, t *cpuset.Topology, opts cpuset.AllocatorOptions) *cpuset.Allocator {
	tb.Helper()
	a, err := cpuset.NewAllocator(t, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}
