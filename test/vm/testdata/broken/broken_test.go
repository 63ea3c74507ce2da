// Package broken holds deliberately broken kernel tests. The VM harness's
// own test (TestVM, HarnessCatchesBrokenExpectation) runs them in the guest
// next to the real ones and checks that the harness reports each way a
// stage can go wrong: a wrong measured expectation, a binary that dies
// mid-test, and the tests that then never run. It sits under testdata so
// that `go test ./...` on the host never runs it.
package broken

import (
	"os"
	"testing"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// TestKernelBrokenPasses is the control: it must be reported as passed.
func TestKernelBrokenPasses(t *testing.T) {}

// TestKernelBrokenQuota measures a busy process under a 20 ms / 100 ms
// cpu.max, as cgroup's real test does, but expects 0.50 CPU: it must fail.
func TestKernelBrokenQuota(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, testutil.CgroupV2Controllers(cgroup.CPU))
	_, cg := testutil.NewCgroup(t)
	if err := cg.SetCPUQuota(20000, 100000); err != nil {
		t.Fatal(err)
	}
	testutil.StartBusy(t, cg)
	time.Sleep(200 * time.Millisecond)
	u0, _ := cg.CPUUsage()
	t0 := time.Now()
	time.Sleep(time.Second)
	u1, _ := cg.CPUUsage()
	cpus := float64(u1-u0) / float64(time.Since(t0))
	if cpus < 0.47 || cpus > 0.53 {
		t.Errorf("busy child used %.3f CPU, want 0.50 ± 0.03 (deliberately wrong: cpu.max allows 0.20)", cpus)
	}
}

// TestKernelBrokenExit kills the test binary mid-test: neither it nor the
// test after it has a result.
func TestKernelBrokenExit(t *testing.T) { os.Exit(3) }

// TestKernelBrokenNeverRuns follows the exit.
func TestKernelBrokenNeverRuns(t *testing.T) {}
