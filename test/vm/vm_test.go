package vm_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/test/e2e/harness"
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
	requireQemu(t)
	start := time.Now()
	var rep *vm.Report
	t.Cleanup(func() { summarizeFailures(t, rep) }) // first registered: runs last
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	root, work, kernel, initBin := guestBase(ctx, t)
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
	// iproute2's tc in place of busybox's, which prints no qdisc or class
	// options (examples/batch-io-net reads "ceil 10Mbit" from it); it
	// brings its shared libraries along.
	files := map[string]string{}
	if tc := hostTool("tc"); tc != "" {
		files["/bin/tc"] = tc
	} else if testutil.KernelRequired() {
		t.Fatal("tc not found (apt package iproute2)")
	}
	if os.Getenv("STRATA_VM_E2E") != "0" {
		run, tests, f, err := e2eRun(ctx, root, work, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if run.Name == "" {
			t.Fatal("every e2e test of the guest is listed in notYetInGuest")
		}
		runs = append(runs, run)
		for g, h := range f {
			files[g] = h
		}
		expected[run.Name] = tests
		pkgs = append(pkgs, vm.TestPackage{Rel: run.Name})
	}
	t.Logf("built %d test binaries and /init in %s", len(runs), time.Since(start).Round(time.Second))
	for pkg, tests := range notYetInGuest {
		for name, why := range tests {
			t.Logf("not run in the guest yet: %s %s — %s", pkg, name, why)
		}
	}

	rep, err = vm.Boot(ctx, vm.Options{
		Kernel:  kernel,
		Init:    initBin,
		WorkDir: work,
		Runs:    runs,
		Files:   files,
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
		if strings.HasPrefix(p, "guest kernel panicked") || !strings.Contains(p, ": Test") && !strings.Contains(p, "test binary") && !strings.Contains(p, "never started") {
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
	"iolimit": {
		"TestKernelBFQWeights": "the guest cannot give the 4 ± 25 % share (the test's floor is 2): weights 400:100 measured 2.10 on the sparse loop device, 1.39–1.90 on a direct-IO loop device over a written file and 1.12–1.31 reading the virtio scratch disk itself (2026-12-02, three 8 s windows each) — under TCG the guest reads 7–14 MiB/s in all, bound by emulating the device on the CPU, not by device time, so bfq has no queue to arbitrate; the host's kernel tier runs it",
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

// e2eTests are the end-to-end tests of test/e2e/strata that run in the
// guest, against containerd e2eContainerd: the placement scenario and the
// burner scenario, on cgroup v2 with the guest's 4 vCPUs.
var e2eTests = []string{"TestE2EPlacement", "TestE2EBurnerGrowsPool0"}

const e2eContainerd = "2.4.2"

// e2eRun prepares the guest run of test/e2e/strata: containerd built
// without cgo (cached next to the host's builds), the host's runc with its
// shared libraries, the test image and the plugin, in the prebuilt layout
// the e2e harness reads from $STRATA_E2E_PREBUILT in place of building.
func e2eRun(ctx context.Context, root, work string, logf func(string, ...any)) (vm.Run, []string, map[string]string, error) {
	const rel, guestDir = "test/e2e/strata", "/strata/e2e"
	bins, err := harness.BuildContainerd(ctx, harness.BuildOptions{Version: e2eContainerd, Static: true, Logf: logf})
	if err != nil {
		return vm.Run{}, nil, nil, err
	}
	image, err := harness.BuildImage(ctx, "", logf)
	if err != nil {
		return vm.Run{}, nil, nil, err
	}
	plugin := filepath.Join(work, "strata")
	if err := vm.BuildBinary(ctx, root, "./nri-plugin/cmd/strata", plugin); err != nil {
		return vm.Run{}, nil, nil, err
	}
	runc := hostTool("runc")
	if runc == "" {
		return vm.Run{}, nil, nil, fmt.Errorf("runc not found in $PATH, /usr/sbin or /sbin (apt package runc)")
	}
	pkg := vm.TestPackage{ImportPath: "github.com/strata-nri/strata/" + rel, Dir: filepath.Join(root, rel), Rel: rel}
	bin := filepath.Join(work, "e2e-strata.test")
	if err := vm.BuildTestBinary(ctx, root, pkg, bin); err != nil {
		return vm.Run{}, nil, nil, err
	}
	files := map[string]string{"/bin/runc": runc}
	for p, host := range harness.PackPrebuilt([]harness.Binaries{bins}, image, plugin) {
		files[filepath.Join(guestDir, p)] = host
	}
	var tests []string
	for _, name := range e2eTests {
		if _, ok := notYetInGuest[rel][name]; !ok {
			tests = append(tests, name)
		}
	}
	if len(tests) == 0 {
		return vm.Run{}, nil, nil, nil
	}
	run := vm.Run{
		Name: rel, Binary: bin, SourceDir: pkg.Dir, GuestDir: "/src/" + rel,
		Args: []string{"-test.run", "^(" + strings.Join(tests, "|") + ")$/^containerd-" + regexp.QuoteMeta(e2eContainerd) + "$",
			"-test.v", "-test.count=1", "-test.timeout", "8m"},
		// The TCG guest starts a container in seconds and runs a runc
		// update in about one: the tests' loop period and waits stretch
		// 5 × (STRATA_E2E_TIME_SCALE of test/e2e/strata).
		Env:     []string{harness.PrebuiltEnv + "=" + guestDir, "STRATA_E2E_TIME_SCALE=5"},
		Timeout: 9 * time.Minute,
	}
	return run, tests, files, nil
}

// requireQemu skips the test without qemu, or fails it under
// STRATA_TEST_REQUIRE_KERNEL=1.
func requireQemu(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if testutil.KernelRequired() {
			t.Fatalf("%s=1 but qemu-system-x86_64 is missing (apt package qemu-system-x86; hack/install-deps.sh installs it)", testutil.RequireKernelEnv)
		}
		t.Skip("qemu-system-x86_64 not installed (apt package qemu-system-x86)")
	}
}

// hostTool finds a host program in $PATH or the sbin directories ("" if
// none).
func hostTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(d, name); isFile(p) {
			return p
		}
	}
	return ""
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
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

// guestBase is what every guest stage starts from: the module's root, a
// work directory, the guest's kernel and its /init.
func guestBase(ctx context.Context, t *testing.T) (root, work string, kernel *vm.Kernel, initBin string) {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := vm.ModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	work = t.TempDir()
	if kernel, err = vm.FetchKernel(ctx, "", "", t.Logf); err != nil {
		t.Fatal(err)
	}
	if initBin, err = vm.BuildGuestInit(ctx, root, work); err != nil {
		t.Fatal(err)
	}
	return root, work, kernel, initBin
}

// summarizeFailures repeats, at the end of a failed test, each guest
// test's failure output: the subtests print it where they run, above
// every log tail that follows.
func summarizeFailures(t *testing.T, rep *vm.Report) {
	if !t.Failed() || rep == nil {
		return
	}
	names := slices.Sorted(maps.Keys(rep.Runs))
	for _, name := range names {
		if name == brokenPkg {
			continue // the self-test's failures are expected
		}
		rr := rep.Runs[name]
		tests := slices.Sorted(maps.Keys(rr.Tests))
		for _, test := range tests {
			if res := rr.Tests[test]; res.Result == "fail" {
				t.Logf("summary: %s %s failed in the guest (%.2fs):\n%s", name, test, res.Elapsed, res.Output)
			}
		}
	}
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
