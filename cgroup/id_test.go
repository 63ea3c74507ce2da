package cgroup_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-nri/strata/internal/testutil"
)

// A cgroup's id is the inode of its unified directory, distinct per cgroup,
// and it is what the kernel reports for a task inside it.
func TestKernelCgroupID(t *testing.T) {
	h, cg := testutil.NewCgroup(t)
	if h.UnifiedRoot() == "" {
		t.Skip("no cgroup2 mount on this host: cgroups have no id")
	}
	child, err := h.Create(cg.Path() + "/child")
	if err != nil {
		t.Fatal(err)
	}
	id, err := cg.ID()
	if err != nil {
		t.Fatal(err)
	}
	cid, err := child.ID()
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := cg.UnifiedDir()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ino := fi.Sys().(*syscall.Stat_t).Ino; id != ino || id == cid || id <= 1 {
		t.Errorf("ids: %d (inode %d), child %d", id, ino, cid)
	}
	// The kernel's view: /proc/PID/cgroup's 0:: line names the directory.
	cmd := testutil.StartInCgroup(t, child, "/bin/sleep", "10")
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "0::"+child.Path()+"\n") {
		t.Errorf("/proc/PID/cgroup of a task in %s:\n%s", child.Path(), b)
	}
}
