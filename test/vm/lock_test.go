package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLockedByAncestor: a lock this process holds is no ancestor's; the
// same lock seen from a child (the test binary re-run under it) is.
func TestLockedByAncestor(t *testing.T) {
	if os.Getenv("STRATA_VM_LOCK_CHILD") != "" {
		pid, ok := lockedByAncestor(os.Getenv("STRATA_VM_LOCK_CHILD"))
		if !ok || pid != os.Getppid() {
			t.Fatalf("child: lockedByAncestor = %d, %v; want the parent %d", pid, ok, os.Getppid())
		}
		return
	}
	path := filepath.Join(t.TempDir(), "lock")
	if _, ok := lockedByAncestor(path); ok {
		t.Fatal("a missing lock file is held")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := lockedByAncestor(path); ok {
		t.Fatal("an unlocked file is held")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if pid, ok := lockedByAncestor(path); ok {
		t.Fatalf("our own lock reported as an ancestor's (%d)", pid)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLockedByAncestor$")
	cmd.Env = append(os.Environ(), "STRATA_VM_LOCK_CHILD="+path)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
