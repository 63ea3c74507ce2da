package e2e_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-nri/strata/test/e2e/cri"
	"github.com/strata-nri/strata/test/e2e/harness"
)

const staleHelperEnv = "STRATA_E2E_STALE_HELPER_BASE"

// TestE2EHarnessStaleHelper is not a test on its own: run by
// TestE2EHarnessRemoveStale in a child process, it starts an environment
// with a running pod, prints the run directory and kills itself with
// SIGKILL, so no cleanup of any kind runs.
func TestE2EHarnessStaleHelper(t *testing.T) {
	base := os.Getenv(staleHelperEnv)
	if base == "" {
		t.Skip("helper process for TestE2EHarnessRemoveStale")
	}
	ctx := context.Background()
	env, err := harness.New(ctx, harness.Options{BaseDir: base, LogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.RunContainer(ctx, cri.PodOptions{Name: "orphan"}, cri.ContainerOptions{}); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("RUNDIR=" + env.State().Dir + "\n")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// TestE2EHarnessRemoveStale checks that an environment whose test process
// was SIGKILLed (no t.Cleanup, no signal handler) is found and removed by
// RemoveStale, which every New runs first.
func TestE2EHarnessRemoveStale(t *testing.T) {
	harness.Require(t)
	base, err := os.MkdirTemp("", "se") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)

	cmd := exec.Command(os.Args[0], "-test.run=^TestE2EHarnessStaleHelper$", "-test.v")
	cmd.Env = append(os.Environ(), staleHelperEnv+"="+base)
	out, _ := cmd.CombinedOutput() // it dies by SIGKILL
	var dir string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "RUNDIR="); ok {
			dir = d
		}
	}
	if dir == "" {
		t.Fatalf("helper printed no run directory:\n%s", out)
	}
	st, err := harness.Attach(dir)
	if err != nil {
		t.Fatal(err)
	}
	state := st.State()
	if !pidRunning(state.ContainerdPID) {
		t.Fatalf("containerd %d of the killed helper is not running; nothing to test", state.ContainerdPID)
	}
	cgroupRoot, err := st.Hierarchy().Open(state.CgroupRoot)
	if err != nil {
		t.Fatal(err)
	}
	if !cgroupRoot.Exists() {
		t.Fatalf("cgroup %s of the orphaned pod missing; nothing to test", state.CgroupRoot)
	}

	if n := harness.RemoveStale(base, t.Logf); n != 1 {
		t.Errorf("RemoveStale removed %d environments, want 1", n)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run dir %s still there (stat: %v)", dir, err)
	}
	if cgroupRoot.Exists() {
		t.Errorf("cgroup %s still there", state.CgroupRoot)
	}
	if !gone(state.ContainerdPID) {
		t.Errorf("containerd %d still running", state.ContainerdPID)
	}
	if m, _ := filepath.Glob(filepath.Join(base, "strata-e2e-*")); len(m) != 0 {
		t.Errorf("left in %s: %v", base, m)
	}
}

// TestE2EHarnessDetach is the e2eenv up/down path: a detached environment
// is found again by its directory, answers CRI, and Close removes it.
func TestE2EHarnessDetach(t *testing.T) {
	harness.Require(t)
	base, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env, err := harness.New(ctx, harness.Options{BaseDir: base, Detach: true, LogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	dir := env.State().Dir
	if env.State().OwnerPID != 0 {
		t.Errorf("detached environment has owner %d, want 0", env.State().OwnerPID)
	}
	// Not stale: its owner is nobody, on purpose.
	if n := harness.RemoveStale(base, t.Logf); n != 0 {
		t.Errorf("RemoveStale removed %d detached environments", n)
	}
	again, err := harness.Attach(dir)
	if err != nil {
		_ = env.Close()
		t.Fatal(err)
	}
	if again.CRI() == nil {
		_ = env.Close()
		t.Fatal("attached environment has no CRI client")
	}
	if _, err := again.RunContainer(ctx, cri.PodOptions{Name: "attached"}, cri.ContainerOptions{}); err != nil {
		t.Error(err)
	}
	if err := again.Close(); err != nil {
		t.Errorf("Close of attached environment: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run dir %s still there after Close", dir)
	}
	_ = env.Close() // no-op for what is gone; releases this process's handles
}

func pidRunning(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}
