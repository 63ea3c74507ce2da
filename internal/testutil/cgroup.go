package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-nri/strata/cgroup"
)

// TestCgroupParent is the cgroup under which kernel tests create theirs, so
// that a crashed run leaves its debris in one recognisable place.
const TestCgroupParent = "/strata-test"

var cgroupSeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// NewCgroup creates a fresh cgroup for the test in every controller
// hierarchy of the host and removes it when the test ends, killing whatever
// processes are still inside, also when the test fails.
func NewCgroup(tb testing.TB) (*cgroup.Hierarchy, *cgroup.Cgroup) {
	tb.Helper()
	RequireRoot(tb)
	h, err := HostHierarchy()
	if err != nil {
		tb.Fatalf("detect cgroups: %v", err)
	}
	name := fmt.Sprintf("%s/%s-%d-%d", TestCgroupParent, unsafeName.ReplaceAllString(tb.Name(), "_"), os.Getpid(), cgroupSeq.Add(1))
	cg, err := h.Create(name)
	if err != nil {
		tb.Fatalf("create test cgroup %s: %v", name, err)
	}
	tb.Cleanup(func() { RemoveCgroupTree(tb, cg) })
	return h, cg
}

// RemoveCgroupTree kills every process in cg and its descendants and
// removes them, deepest first. Failures are reported, not fatal, so one
// stuck cgroup does not hide the test's own result.
func RemoveCgroupTree(tb testing.TB, cg *cgroup.Cgroup) {
	tb.Helper()
	dirs, _ := descendants(cg)
	for i := len(dirs) - 1; i >= 0; i-- {
		c := dirs[i]
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids, err := c.Procs()
			if err != nil || len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if time.Now().After(deadline) {
				tb.Errorf("cleanup: processes %v still in %s", pids, c.Path())
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		var err error
		for try := 0; try < 50; try++ {
			if err = c.Remove(); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond) // exiting tasks leave the cgroup asynchronously
		}
		if err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	}
	// Remove the shared parent when this was the last test using it.
	if parent, err := cg.Hierarchy().Open(TestCgroupParent); err == nil {
		_ = parent.Remove()
	}
}

// descendants lists cg and every cgroup below it (parents before children),
// read from the first hierarchy directory.
func descendants(cg *cgroup.Cgroup) ([]*cgroup.Cgroup, error) {
	out := []*cgroup.Cgroup{cg}
	for i := 0; i < len(out); i++ {
		c := out[i]
		dir, err := c.Dir(cgroup.CPU)
		if err != nil {
			if dir, err = c.Dir(cgroup.Memory); err != nil {
				return out, err
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() {
				if child, err := c.Child(e.Name()); err == nil {
					out = append(out, child)
				}
			}
		}
	}
	return out, nil
}

// StartInCgroup starts argv with the process already inside cg: the child
// is a shell that moves itself into the cgroup and then execs argv, so not
// one instruction of argv runs outside it. The process is killed when the
// test ends.
func StartInCgroup(tb testing.TB, cg *cgroup.Cgroup, argv ...string) *exec.Cmd {
	tb.Helper()
	// The shell waits on a pipe until the parent has moved it.
	cmd := exec.Command("/bin/sh", "-c", `read _ ; exec "$@"`, "sh")
	cmd.Args = append(cmd.Args, argv...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %v: %v", argv, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := cg.AddProc(cmd.Process.Pid); err != nil {
		tb.Fatalf("move pid %d into %s: %v", cmd.Process.Pid, cg.Path(), err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		tb.Fatal(err)
	}
	_ = stdin.Close()
	return cmd
}

// StartBusy starts a process in cg that spins on the CPU forever.
func StartBusy(tb testing.TB, cg *cgroup.Cgroup) *exec.Cmd {
	tb.Helper()
	return StartInCgroup(tb, cg, "/bin/sh", "-c", "while :; do :; done")
}

// ProcStatusField reads one field of /proc/PID/status, e.g.
// "Cpus_allowed_list".
func ProcStatusField(pid int, field string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// Prioritize gives cg, and the shared parent of test cgroups, the highest
// CPU weight, so a measured test is not starved by whatever else runs on
// the machine (other test packages, builds). The parent's weight is
// restored when the test ends.
func Prioritize(tb testing.TB, cg *cgroup.Cgroup) {
	tb.Helper()
	parent, err := cg.Hierarchy().Open(TestCgroupParent)
	if err != nil {
		tb.Fatal(err)
	}
	old, err := parent.CPUShares()
	if err != nil {
		tb.Fatal(err)
	}
	if err := parent.SetCPUShares(262144); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = parent.SetCPUShares(old) })
	if err := cg.SetCPUShares(262144); err != nil {
		tb.Fatal(err)
	}
}
