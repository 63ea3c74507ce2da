package vm

import (
	"fmt"
	"sort"
	"strings"
)

// TestResult is one top-level test's outcome in the guest.
type TestResult struct {
	Name    string
	Result  string // "pass", "fail" or "skip"
	Elapsed float64
	Output  string // tail of its output (failures and skips)
}

// RunResult is what the guest reported for one GuestRun.
type RunResult struct {
	Name    string
	Started bool
	Exited  bool
	Code    int
	Tests   map[string]*TestResult
	Order   []string // test names in the order they finished
}

// Report is everything parsed from one guest's console.
type Report struct {
	Boot     map[string]string // EventBoot's Info; nil if the guest never got there
	Runs     map[string]*RunResult
	Errors   []string // EventError messages and unparseable event lines
	Done     bool     // EventDone seen
	Problems []string // filled by Check
	// Alive is the last heartbeat's Msg (EventAlive): how the guest was
	// when last heard of.
	Alive string
	// Retried holds, when the first boot hung before its boot event and
	// Options.BootRetry booted the guest once more, why the first one was
	// killed; this report is the second boot's.
	Retried string
	// Panic holds the kernel's own account of a panic: from the first
	// line that reports kernel trouble (a soft lockup, an RCU stall, a
	// hung task, an oops) up to panicLines lines; set only once the
	// "Kernel panic - not syncing" line arrived.
	Panic []string

	trouble  []string // kernel trouble lines seen so far (a panic may follow)
	bootHang string   // why the guest was killed before its boot event
}

// panicLines bounds Report.Panic: the reason and the first call trace.
const panicLines = 40

// kernelTrouble marks console lines with which the kernel starts telling
// of a wedge or crash (WatchdogArgs make them panics).
var kernelTrouble = []string{
	"BUG: soft lockup", "rcu: INFO:", "detected stalls", "blocked for more than",
	"BUG: ", "Oops:", "general protection fault", "Kernel panic - not syncing",
}

const kernelPanic = "Kernel panic - not syncing"

// NewReport returns an empty report.
func NewReport() *Report { return &Report{Runs: map[string]*RunResult{}} }

// Run returns the result of the named run, creating an empty one.
func (r *Report) Run(name string) *RunResult {
	rr := r.Runs[name]
	if rr == nil {
		rr = &RunResult{Name: name, Tests: map[string]*TestResult{}}
		r.Runs[name] = rr
	}
	return rr
}

// AddLine feeds one console line.
func (r *Report) AddLine(line string) {
	r.kernelLine(line)
	ev, ok, err := ParseEvent(line)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return
	}
	if ok {
		r.Add(ev)
	}
}

// Add records one event.
func (r *Report) Add(ev Event) {
	switch ev.Kind {
	case EventBoot:
		r.Boot = ev.Info
	case EventStart:
		r.Run(ev.Run).Started = true
	case EventResult:
		rr := r.Run(ev.Run)
		if _, seen := rr.Tests[ev.Test]; !seen {
			rr.Order = append(rr.Order, ev.Test)
		}
		rr.Tests[ev.Test] = &TestResult{Name: ev.Test, Result: ev.Result, Elapsed: ev.Elapsed, Output: ev.Output}
	case EventExit:
		rr := r.Run(ev.Run)
		rr.Exited, rr.Code = true, ev.Code
		if ev.Msg != "" {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %s", ev.Run, ev.Msg))
		}
	case EventError:
		r.Errors = append(r.Errors, ev.Msg)
	case EventDone:
		r.Done = true
	case EventAlive:
		r.Alive = ev.Msg
	default:
		r.Errors = append(r.Errors, fmt.Sprintf("vm: unknown event %q", ev.Kind))
	}
}

// kernelLine collects the lines of kernel trouble, and the panic they
// lead to.
func (r *Report) kernelLine(line string) {
	if r.Panic != nil {
		if len(r.Panic) < panicLines {
			r.Panic = append(r.Panic, line)
		}
		return
	}
	if r.trouble == nil {
		for _, m := range kernelTrouble {
			if strings.Contains(line, m) {
				r.trouble = []string{}
				break
			}
		}
	}
	if r.trouble != nil && len(r.trouble) < panicLines {
		r.trouble = append(r.trouble, line)
	}
	if strings.Contains(line, kernelPanic) {
		r.Panic = r.trouble
		if !contains(r.Panic, line) {
			r.Panic = append(r.Panic, line)
		}
	}
}

// Check compares the report with what was expected: every run must have
// started and exited with code 0, every expected test of it must have a
// result, and no test may have failed. A skip is not a problem here: under
// STRATA_TEST_REQUIRE_KERNEL=1 the guest's tests turn the skip of a
// present feature into a failure themselves (internal/testutil), as on the
// host. It returns the problems (also kept in r.Problems), nil when there
// are none.
func (r *Report) Check(expected map[string][]string) []string {
	var p []string
	if r.Boot == nil {
		p = append(p, "the guest never reported a finished boot")
	}
	if r.Panic != nil {
		p = append(p, "guest kernel panicked:\n"+indent(strings.Join(r.Panic, "\n")))
	}
	p = append(p, r.Errors...)
	names := make([]string, 0, len(expected))
	for name := range expected {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p = append(p, r.CheckRun(name, expected[name])...)
	}
	if !r.Done {
		p = append(p, "the guest did not finish its runs (no done event): it crashed, hung or timed out")
	}
	r.Problems = p
	return p
}

// CheckRun returns the problems of one run against its expected tests.
func (r *Report) CheckRun(name string, tests []string) []string {
	var p []string
	rr := r.Runs[name]
	if rr == nil || !rr.Started {
		return []string{fmt.Sprintf("%s: never started in the guest", name)}
	}
	for _, t := range tests {
		res, ok := rr.Tests[t]
		switch {
		case !ok:
			p = append(p, fmt.Sprintf("%s: %s has no result (the binary crashed, exited or timed out during or before it)", name, t))
		case res.Result == "fail":
			p = append(p, fmt.Sprintf("%s: %s failed:\n%s", name, t, indent(res.Output)))
		case res.Result != "pass" && res.Result != "skip":
			p = append(p, fmt.Sprintf("%s: %s has result %q", name, t, res.Result))
		}
	}
	for _, t := range rr.Order {
		if res := rr.Tests[t]; res.Result == "fail" && !contains(tests, t) {
			p = append(p, fmt.Sprintf("%s: %s (not expected) failed:\n%s", name, t, indent(res.Output)))
		}
	}
	switch {
	case !rr.Exited:
		p = append(p, fmt.Sprintf("%s: the test binary never exited", name))
	case rr.Code != 0:
		p = append(p, fmt.Sprintf("%s: the test binary exited with code %d", name, rr.Code))
	}
	return p
}

// Summary counts results per outcome, e.g. "41 passed, 3 skipped, 0 failed".
func (r *Report) Summary() string {
	n := map[string]int{}
	for _, rr := range r.Runs {
		for _, t := range rr.Tests {
			n[t.Result]++
		}
	}
	return fmt.Sprintf("%d passed, %d skipped, %d failed", n["pass"], n["skip"], n["fail"])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func indent(s string) string {
	if s == "" {
		return "\t(no output)"
	}
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}
