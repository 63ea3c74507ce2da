package cgroup_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
)

// TestCgroupID: the id is the unified directory's inode; a missing
// directory is ErrVanished, a host without cgroup2 ErrNotSupported.
func TestCgroupIDFixture(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.Hybrid, cgroup.V2} {
		tree, err := cgrouptest.New(t.TempDir(), mode, "0-1", "0")
		if err != nil {
			t.Fatal(err)
		}
		h, err := tree.Hierarchy()
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.AddCgroup("/pod/ctr"); err != nil {
			t.Fatal(err)
		}
		cg, _ := h.Open("/pod/ctr")
		id, err := cg.ID()
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		dir, _ := cg.UnifiedDir()
		fi, _ := os.Stat(dir)
		if want := fi.Sys().(*syscall.Stat_t).Ino; id != want {
			t.Errorf("%s: id %d, inode %d", mode, id, want)
		}
		gone, _ := h.Open("/pod/gone")
		if _, err := gone.ID(); !errors.Is(err, cgroup.ErrVanished) {
			t.Errorf("%s: missing cgroup: %v, want ErrVanished", mode, err)
		}
	}
	tree, err := cgrouptest.New(t.TempDir(), cgroup.V1, "0-1", "0")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := tree.Hierarchy()
	cg, _ := h.Open("/pod/ctr")
	if _, err := cg.ID(); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("pure v1: %v, want ErrNotSupported", err)
	}
}
