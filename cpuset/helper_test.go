package cpuset_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	removeStaleFixtures()
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

const fixturePrefix = "cpuset-test-"

// removeStaleFixtures removes fixture directories of test processes that
// are gone: fuzzing workers are stopped without running TestMain's
// cleanup. The owner's pid is part of the directory name.
func removeStaleFixtures() {
	for _, base := range []string{"/dev/shm", os.TempDir()} {
		matches, _ := filepath.Glob(filepath.Join(base, fixturePrefix+"*"))
		for _, dir := range matches {
			rest := strings.TrimPrefix(filepath.Base(dir), fixturePrefix)
			pidText, _, ok := strings.Cut(rest, "-")
			pid, err := strconv.Atoi(pidText)
			if !ok || err != nil || pid == os.Getpid() {
				continue
			}
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				os.RemoveAll(dir)
			}
		}
	}
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
		prefix := fmt.Sprintf("%s%d-", fixturePrefix, os.Getpid())
		dir, err := os.MkdirTemp("/dev/shm", prefix)
		if err != nil {
			dir, err = os.MkdirTemp("", prefix)
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
