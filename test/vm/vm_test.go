package vm_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-nri/strata/internal/testutil"
	vm "github.com/strata-nri/strata/test/vm"
)

// brokenPkg is the self-test package whose tests must be reported as
// failing or missing.
const brokenPkg = "test/vm/testdata/broken"

// TestVM boots a cgroup v2 guest and runs in it the kernel tier of every
// package that has TestKernel… tests, plus the harness's deliberately
// broken self-test package, and reports each guest test as a subtest
// (TestVM/<package>/<test>) that passes, skips or fails as it did in the
// guest. STRATA_VM_PACKAGES (go list patterns, default ./...) and
// STRATA_VM_RUN (default Kernel) narrow it down.
func TestVM(t *testing.T) {
	if testing.Short() && !testutil.KernelRequired() {
		t.Skip("vm: skipped under -short (boots a qemu guest: about 1 min warm, more cold)")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if testutil.KernelRequired() {
			t.Fatalf("%s=1 but qemu-system-x86_64 is missing (apt package qemu-system-x86; hack/install-deps.sh installs it)", testutil.RequireKernelEnv)
		}
		t.Skip("qemu-system-x86_64 not installed (apt package qemu-system-x86)")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	wd, _ := os.Getwd()
	root, err := vm.ModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()

	kernel, err := vm.FetchKernel(ctx, "", "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	initBin, err := vm.BuildGuestInit(ctx, root, work)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	if p := os.Getenv("STRATA_VM_PACKAGES"); p != "" {
		patterns = strings.Fields(p)
	}
	pkgs, err := vm.KernelTestPackages(ctx, root, patterns...)
	if err != nil {
		t.Fatal(err)
	}
	pkgs = append(pkgs, vm.TestPackage{ImportPath: "github.com/strata-nri/strata/" + brokenPkg, Dir: filepath.Join(root, brokenPkg), Rel: brokenPkg})
	runRE := os.Getenv("STRATA_VM_RUN")
	if runRE == "" {
		runRE = "Kernel"
	}

	runs, expected, err := buildRuns(ctx, root, work, pkgs, runRE)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d test binaries and /init in %s", len(runs), time.Since(start).Round(time.Second))
	for pkg, tests := range notYetInGuest {
		for name, why := range tests {
			t.Logf("not run in the guest yet: %s %s — %s", pkg, name, why)
		}
	}

	rep, err := vm.Boot(ctx, vm.Options{
		Kernel:  kernel,
		Init:    initBin,
		WorkDir: work,
		Runs:    runs,
		Env:     []string{testutil.RequireKernelEnv + "=" + os.Getenv(testutil.RequireKernelEnv)},
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	problems := rep.Check(expectedWithout(expected, brokenPkg))
	for _, pkg := range pkgs {
		if pkg.Rel == brokenPkg {
			continue
		}
		t.Run(pkg.Rel, func(t *testing.T) { reportRun(t, rep, pkg.Rel, expected[pkg.Rel]) })
	}
	t.Run("HarnessCatchesBrokenExpectation", func(t *testing.T) { checkSelfTest(t, rep, expected[brokenPkg]) })
	// Problems not tied to one test: boot, the guest's end, qemu.
	for _, p := range problems {
		if !strings.Contains(p, ": Test") && !strings.Contains(p, "test binary") && !strings.Contains(p, "never started") {
			t.Error(p)
		}
	}
	// Keep the whole console of the last run for a look after the test.
	log, _ := os.ReadFile(filepath.Join(work, "console.log"))
	keep := filepath.Join(vm.DefaultCacheDir(), "last-console.log")
	if err := os.WriteFile(keep, log, 0o644); err == nil {
		t.Logf("guest console: %s", keep)
	}
	if t.Failed() {
		t.Logf("console tail:\n%s", tail(string(log), 60))
	}
	t.Logf("guest: %v; %s; stage took %s", rep.Boot, rep.Summary(), time.Since(start).Round(time.Second))
}

// buildRuns compiles each package's tests for the guest (two at a time:
// the development machines have two CPUs) and lists, on the host, the
// tests each binary must report.
// notYetInGuest lists kernel tests that do not yet pass in the cgroup v2
// guest, with the reason; they run on the host's kernel tier as before and
// are left out here, each one named in the stage's log, until fixed. Every
// other kernel test of every package runs in the guest. (Each entry is an
// open problem, not a feature the guest lacks.)
var notYetInGuest = map[string]map[string]string{
	"examples/batch-io-net": {
		"TestKernelBatchIONet": "the guest's TempDir is tmpfs: there is no block device under it to throttle",
	},
	"examples/memory-policy": {
		"TestKernelMemoryPolicy": "the guest's TempDir is tmpfs: its pages are shmem, which page-cache reclaim rightly leaves alone; the test needs a disk-backed directory",
	},
	"iolimit": {
		"TestKernelWriteIOPSLimit": "155.6 IOPS measured against the 200 limit under TCG: the emulated CPU cannot issue them",
		"TestKernelBFQWeights":     "writing io.weight answers EOPNOTSUPP on the guest kernel's loop device; weight files to be chosen by scheduler",
		"TestKernelIOPriority":     "a listed thread read class none (exited-thread fix landed after the last guest run; unverified there)",
		"TestKernelFsyncLatencyV2": "fsync p99 102 × alone against the ≤ 3 × goal: io.max wbps does not yet protect the online writer in the guest — an open finding of issue 10",
	},
	"netqos": {
		"TestKernelTreeClassRate":               "the emulated CPU carries only 7–24 Mbit/s, varying run to run: rates cannot be measured within ±15 % there",
		"TestKernelTreeLowerCeilingLive":        "throughput-bound under TCG (as above)",
		"TestKernelPodLimits":                   "throughput-bound under TCG (as above)",
		"TestKernelTreeCgroupAndAddressSenders": "throughput-bound under TCG (as above)",
	},
	"nri-plugin": {
		"TestKernelNetControllerDynamicCeiling": "throughput-bound under TCG (as above)",
	},
	"pressure": {
		"TestKernelSchedProbeAccuracy":          "hung the guest (no output for 5 min) on the 6.1 cloud kernel; under investigation",
		"TestKernelSchedSampleAllocatesNothing": "the scheduler probe is not yet validated on the guest kernel (see TestKernelSchedProbeAccuracy)",
		"TestKernelSchedProbeLifecycle":         "the scheduler probe is not yet validated on the guest kernel",
		"TestKernelSchedProbeRefused":           "the scheduler probe is not yet validated on the guest kernel",
		"TestKernelNodeSampler":                 "reads tick-based /proc/stat, which loses ticks when the host deschedules a vCPU: fails with host load",
	},
}

func buildRuns(ctx context.Context, root, work string, pkgs []vm.TestPackage, runRE string) ([]vm.Run, map[string][]string, error) {
	runs := make([]vm.Run, len(pkgs))
	expected := map[string][]string{}
	errs := make([]error, len(pkgs))
	var mu sync.Mutex
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, pkg := range pkgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			bin := filepath.Join(work, strings.ReplaceAll(pkg.Rel, "/", "_")+".test")
			if err := vm.BuildTestBinary(ctx, root, pkg, bin); err != nil {
				errs[i] = err
				return
			}
			tests, err := vm.ListTests(ctx, bin, pkg.Dir, runRE)
			if err != nil {
				errs[i] = err
				return
			}
			args := []string{"-test.run", runRE, "-test.v", "-test.count=1", "-test.timeout", "5m"}
			var kept, skipped []string
			for _, name := range tests {
				if _, ok := notYetInGuest[pkg.Rel][name]; ok {
					skipped = append(skipped, name)
				} else {
					kept = append(kept, name)
				}
			}
			if len(skipped) > 0 {
				args = append(args, "-test.skip", "^("+strings.Join(skipped, "|")+")$")
			}
			mu.Lock()
			expected[pkg.Rel] = kept
			mu.Unlock()
			runs[i] = vm.Run{
				Name: pkg.Rel, Binary: bin, SourceDir: pkg.Dir, GuestDir: "/src/" + pkg.Rel,
				Args: args,
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	return runs, expected, nil
}

func expectedWithout(m map[string][]string, name string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		if k != name {
			out[k] = v
		}
	}
	return out
}

// reportRun turns one run's guest results into subtests.
func reportRun(t *testing.T, rep *vm.Report, name string, tests []string) {
	rr := rep.Runs[name]
	for _, test := range tests {
		t.Run(test, func(t *testing.T) {
			if rr == nil {
				t.Fatal("the guest never started this package's tests")
			}
			res := rr.Tests[test]
			switch {
			case res == nil:
				t.Fatal("no result from the guest: the binary crashed, exited or timed out during or before this test")
			case res.Result == "fail":
				t.Errorf("failed in the guest (%.2fs):\n%s", res.Elapsed, res.Output)
			case res.Result == "skip":
				t.Skipf("skipped in the guest:\n%s", res.Output)
			default:
				t.Logf("passed in the guest (%.2fs)", res.Elapsed)
			}
		})
	}
	for _, p := range rep.CheckRun(name, tests) {
		if strings.Contains(p, "test binary") || strings.Contains(p, "never started") {
			t.Error(p)
		}
	}
}

// checkSelfTest: the broken package's wrong expectation, its crash and the
// test after the crash must each make the harness report a problem, while
// its passing control test is reported as passed.
func checkSelfTest(t *testing.T, rep *vm.Report, tests []string) {
	if len(tests) != 4 {
		t.Skipf("STRATA_VM_RUN leaves out the self-test's tests (%v)", tests)
	}
	problems := rep.CheckRun(brokenPkg, tests)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{
		"TestKernelBrokenQuota failed",
		"TestKernelBrokenExit has no result",
		"TestKernelBrokenNeverRuns has no result",
		"exited with code 3",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("harness did not report %q; it reported:\n%s", want, joined)
		}
	}
	if res := rep.Runs[brokenPkg]; res == nil || res.Tests["TestKernelBrokenPasses"] == nil || res.Tests["TestKernelBrokenPasses"].Result != "pass" {
		t.Errorf("control test TestKernelBrokenPasses not reported as passed: %+v", res)
	}
	if q := rep.Runs[brokenPkg]; q != nil && q.Tests["TestKernelBrokenQuota"] != nil {
		t.Logf("the broken expectation failed as it must:\n%s", q.Tests["TestKernelBrokenQuota"].Output)
	}
	if len(problems) != 4 {
		t.Errorf("want exactly the 4 problems above, got %d:\n%s", len(problems), joined)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
