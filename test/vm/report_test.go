package vm_test

import (
	"strings"
	"testing"

	vm "github.com/strata-nri/strata/test/vm"
)

// A console transcript as a guest prints it: kernel lines, echoed test
// output and events, one garbled by a kernel message on the same line.
const transcript = `[    0.000000] Linux version 6.1.0
@@strata-vm {"e":"boot","info":{"kernel":"6.1.0"}}
@@strata-vm {"e":"start","run":"a"}
[a] === RUN   TestKernelOne
[a] --- FAIL: TestKernelOne (0.10s)
@@strata-vm {"e":"result","run":"a","test":"TestKernelOne","result":"fail","output":"    x_test.go:1: wrong"}
[  3.1] random: crng init done @@strata-vm {"e":"result","run":"a","test":"TestKernelTwo","result":"skip","output":"absent"}
@@strata-vm {"e":"exit","run":"a","code":1}
@@strata-vm {"e":"start","run":"b"}
@@strata-vm {"e":"result","run":"b","test":"TestKernelThree","result":"pass"}
@@strata-vm {"e":"exit","run":"b"}
@@strata-vm {"e":"done"}
`

func TestReportCheck(t *testing.T) {
	rep, err := vm.ParseConsole(strings.NewReader(transcript))
	if err != nil {
		t.Fatal(err)
	}
	problems := rep.Check(map[string][]string{
		"a": {"TestKernelOne", "TestKernelTwo"},
		"b": {"TestKernelThree"},
		"c": {"TestKernelFour"},
	})
	want := []string{
		"a: TestKernelOne failed:\n\t    x_test.go:1: wrong",
		"a: the test binary exited with code 1",
		"c: never started in the guest",
	}
	if strings.Join(problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
	if got := rep.Runs["a"].Tests["TestKernelTwo"]; got == nil || got.Result != "skip" || got.Output != "absent" {
		t.Errorf("skip of TestKernelTwo = %+v", got)
	}
	if s := rep.Summary(); s != "1 passed, 1 skipped, 1 failed" {
		t.Errorf("Summary = %q", s)
	}
}

// TestReportCheckIncomplete: a guest that dies (no done event, no exit)
// or never boots is a problem even when no test failed.
func TestReportCheckIncomplete(t *testing.T) {
	rep, _ := vm.ParseConsole(strings.NewReader("@@strata-vm {\"e\":\"start\",\"run\":\"a\"}\n@@strata-vm {not json\n"))
	got := strings.Join(rep.Check(map[string][]string{"a": nil}), "\n")
	for _, want := range []string{"never reported a finished boot", "bad event line", "never exited", "no done event"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

// TestReportKernelPanic: a guest whose kernel panics (here a soft lockup
// under softlockup_panic=1) is reported with the kernel's reason and
// first call trace, not only as a run that never finished.
func TestReportKernelPanic(t *testing.T) {
	console := `@@strata-vm {"e":"boot","info":{"kernel":"6.1.0"}}
@@strata-vm {"e":"start","run":"a"}
[a] === RUN   TestKernelOne
[   62.100000] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [a.test:412]
[   62.100100] RIP: 0010:native_queued_spin_lock_slowpath+0x5c/0x2d0
[   62.100200] Call Trace:
[   62.100300]  _raw_spin_lock_irqsave+0x39/0x50
[   62.100400] Kernel panic - not syncing: softlockup: hung tasks
[   62.100500] Kernel Offset: disabled
`
	rep, err := vm.ParseConsole(strings.NewReader(console))
	if err != nil {
		t.Fatal(err)
	}
	problems := rep.Check(map[string][]string{"a": {"TestKernelOne"}})
	if len(problems) == 0 || !strings.HasPrefix(problems[0], "guest kernel panicked:") {
		t.Fatalf("first problem is not the panic: %q", problems)
	}
	for _, want := range []string{"BUG: soft lockup - CPU#1 stuck", "_raw_spin_lock_irqsave", "Kernel panic - not syncing: softlockup", "Kernel Offset"} {
		if !strings.Contains(problems[0], want) {
			t.Errorf("panic report lacks %q:\n%s", want, problems[0])
		}
	}
	if strings.Contains(problems[0], "TestKernelOne") {
		t.Errorf("panic report starts before the kernel's trouble:\n%s", problems[0])
	}
	// Kernel trouble without a panic (a warning the guest survived) is
	// not reported as one.
	rep, _ = vm.ParseConsole(strings.NewReader("[ 1.0] BUG: something recoverable\n"))
	if rep.Panic != nil {
		t.Errorf("Panic set without a panic line: %q", rep.Panic)
	}
}
