package cgroup_test

import (
	"errors"
	"reflect"
	"testing"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// filesReadings reads every setting Files offers, through Files and
// through the Cgroup's own methods, as comparable strings.
func filesReadings(t *testing.T, f *cgroup.Files) (kept, byPath []any) {
	t.Helper()
	c := f.Cgroup()
	type reader struct {
		kept, byPath func() (any, error)
	}
	wrap := func(fn func() (any, any, error)) func() (any, error) {
		return func() (any, error) { a, b, err := fn(); return [2]any{a, b}, err }
	}
	set := func(fn func() (cpuset.CPUSet, error)) func() (any, error) {
		return func() (any, error) { s, err := fn(); return s.String(), err }
	}
	i64 := func(fn func() (int64, error)) func() (any, error) {
		return func() (any, error) { return fn() }
	}
	readers := []reader{
		{set(f.CPUSetCPUs), set(c.CPUSetCPUs)},
		{set(f.CPUSetMems), set(c.CPUSetMems)},
		{func() (any, error) { return f.CPUShares() }, func() (any, error) { return c.CPUShares() }},
		{wrap(func() (any, any, error) { return f.CPUQuota() }), wrap(func() (any, any, error) { return c.CPUQuota() })},
		{func() (any, error) { return f.CPUIdle() }, func() (any, error) { return c.CPUIdle() }},
		{i64(f.MemorySoftLimit), i64(c.MemorySoftLimit)},
		{i64(f.MemoryMin), i64(c.MemoryMin)},
		{i64(f.MemoryLow), i64(c.MemoryLow)},
		{i64(f.MemoryHigh), i64(c.MemoryHigh)},
		{func() (any, error) { p, err := f.Procs(); return append([]int(nil), p...), err }, func() (any, error) { return c.Procs() }},
	}
	for _, r := range readers {
		a, errA := r.kept()
		b, errB := r.byPath()
		if (errA == nil) != (errB == nil) || errA != nil && errors.Is(errA, cgroup.ErrNotSupported) != errors.Is(errB, cgroup.ErrNotSupported) {
			t.Errorf("errors differ: Files %v, Cgroup %v", errA, errB)
		}
		if errA != nil {
			a, b = "error", "error"
		}
		kept, byPath = append(kept, a), append(byPath, b)
	}
	return kept, byPath
}

// readLikeCgroup reads every setting through f and through its Cgroup and
// fails the test, saying when, unless they agree; it returns the readings.
func readLikeCgroup(t *testing.T, f *cgroup.Files, when string) []any {
	t.Helper()
	kept, byPath := filesReadings(t, f)
	if !reflect.DeepEqual(kept, byPath) {
		t.Fatalf("%s: Files read %v, Cgroup %v", when, kept, byPath)
	}
	return kept
}

// TestFilesReadLikeCgroup checks that every Files accessor reads what the
// Cgroup method of the same name reads, on each layout, before and after
// the values change (a cached parse must not hide a change).
func TestFilesReadLikeCgroup(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			tree, h := newTree(t, mode)
			if err := tree.AddCgroup("/pod/ctr"); err != nil {
				t.Fatal(err)
			}
			cg, err := h.Open("/pod/ctr")
			if err != nil {
				t.Fatal(err)
			}
			f := cg.Files()
			defer f.Close()
			kept := readLikeCgroup(t, f, "settled")
			if err := cg.SetCPUSetCPUs(cpuset.New(2, 3)); err != nil {
				t.Fatal(err)
			}
			if err := cg.SetCPUShares(512); err != nil {
				t.Fatal(err)
			}
			if err := cg.SetCPUQuota(50000, 100000); err != nil {
				t.Fatal(err)
			}
			if err := cg.SetCPUIdle(true); err != nil {
				t.Fatal(err)
			}
			if err := cg.SetMemorySoftLimit(64 << 20); err != nil {
				t.Fatal(err)
			}
			if err := cg.AddProc(4242); err != nil {
				t.Fatal(err)
			}
			kept2 := readLikeCgroup(t, f, "changed")
			if reflect.DeepEqual(kept, kept2) {
				t.Fatalf("Files read %v both before and after the change", kept)
			}
			if got, _ := f.CPUSetCPUs(); !got.Equals(cpuset.New(2, 3)) {
				t.Errorf("CPUSetCPUs after the change = %s, want 2-3", got)
			}
		})
	}
}

// TestKernelFilesKeptAndVanished reads a real cgroup through Files: the
// values match the Cgroup's, a change is seen through the kept
// descriptors, the cgroup's removal reads as ErrVanished, and a cgroup
// recreated at the same path is followed.
func TestKernelFilesKeptAndVanished(t *testing.T) {
	testutil.RequireRoot(t)
	for _, ctl := range []string{cgroup.CPU, cgroup.CPUSet, cgroup.Memory} {
		testutil.RequireFeature(t, testutil.CgroupV1(ctl))
	}
	h, parent := testutil.NewCgroup(t)
	cg, err := h.Create(parent.Path() + "/kept")
	if err != nil {
		t.Fatal(err)
	}
	f := cg.Files()
	defer f.Close()
	readLikeCgroup(t, f, "created")
	// writeRead writes shares through the Cgroup and reads them back
	// through the kept Files.
	writeRead := func(shares uint64, when string) {
		t.Helper()
		if err := cg.SetCPUShares(shares); err != nil {
			t.Fatal(err)
		}
		if got, err := f.CPUShares(); err != nil || got != shares {
			t.Fatalf("CPUShares through the kept file %s, after writing %d = %d, %v", when, shares, got, err)
		}
	}
	remove := func() {
		t.Helper()
		if err := cg.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	recreate := func() {
		t.Helper()
		if _, err := h.Create(cg.Path()); err != nil {
			t.Fatal(err)
		}
	}
	writeRead(300, "of the cgroup")
	remove()
	if _, err := f.CPUShares(); !errors.Is(err, cgroup.ErrVanished) {
		t.Fatalf("CPUShares of a removed cgroup: %v, want ErrVanished", err)
	}
	if _, err := f.CPUSetCPUs(); !errors.Is(err, cgroup.ErrVanished) {
		t.Fatalf("CPUSetCPUs of a removed cgroup: %v, want ErrVanished", err)
	}
	recreate()
	writeRead(700, "of the cgroup recreated at the same path")
	// Removed and recreated between two reads: the kept descriptor
	// answers ENODEV and the file is opened again.
	remove()
	recreate()
	writeRead(800, "after a removal and re-creation between reads")
}
