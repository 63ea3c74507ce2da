package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	vm "github.com/strata-nri/strata/test/vm"
)

// TestParser feeds `go test -v` output: top-level results become events
// with the test's output kept for failures and skips; subtests' lines and
// the final summary do not.
func TestParser(t *testing.T) {
	out := `=== RUN   TestKernelA
    a_test.go:10: measured 0.20 CPU
--- PASS: TestKernelA (2.50s)
=== RUN   TestKernelB
=== RUN   TestKernelB/sub
    b_test.go:3: wrong
    --- FAIL: TestKernelB/sub (0.00s)
--- FAIL: TestKernelB (0.01s)
=== RUN   TestKernelC
    c_test.go:5: feature absent
--- SKIP: TestKernelC (0.00s)
FAIL
`
	p := &parser{run: "pkg"}
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if ev, ok := p.line(l); ok {
			got = append(got, ev.Test+" "+ev.Result+" "+strings.ReplaceAll(ev.Output, "\n", "|"))
			if ev.Test == "TestKernelA" && ev.Elapsed != 2.5 {
				t.Errorf("elapsed %v, want 2.5", ev.Elapsed)
			}
		}
	}
	want := []string{
		"TestKernelA pass ",
		"TestKernelB fail === RUN   TestKernelB/sub|    b_test.go:3: wrong|    --- FAIL: TestKernelB/sub (0.00s)",
		"TestKernelC skip     c_test.go:5: feature absent",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParserKeepsEarlyMessage: a failure's message printed before a
// cleanup's long log (status, harness log tails) is still in the event,
// ahead of the tail; plain log lines that scrolled out are not.
func TestParserKeepsEarlyMessage(t *testing.T) {
	var b strings.Builder
	b.WriteString("=== RUN   TestE2EK8sX\n    k8s_test.go:791: resize to 1400m: cpusets not Strata's\n")
	for i := range 100 {
		fmt.Fprintf(&b, "        apiserver log line %d\n", i)
	}
	b.WriteString("--- FAIL: TestE2EK8sX (9.00s)\n")
	p := &parser{run: "pkg"}
	var ev vm.Event
	for _, l := range strings.Split(b.String(), "\n") {
		if e, ok := p.line(l); ok {
			ev = e
		}
	}
	if !strings.HasPrefix(ev.Output, "    k8s_test.go:791: resize to 1400m") {
		t.Errorf("output does not start with the failure's message:\n%.300s", ev.Output)
	}
	if strings.Contains(ev.Output, "log line 59\n") || !strings.Contains(ev.Output, "log line 99") {
		t.Errorf("output is not the message and the last %d lines:\n%s", tailLines, ev.Output)
	}
	if n := strings.Count(ev.Output, "\n") + 1; n != tailLines+2 {
		t.Errorf("%d lines, want the message, a marker and %d lines of tail", n, tailLines)
	}
}

// TestProcesses: the heartbeat's process table has a sleeping child of
// this test, in state S with its command line; load names the
// scheduler's counts.
func TestProcesses(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep(1): %v", err)
	}
	defer cmd.Process.Kill()
	pid := strconv.Itoa(cmd.Process.Pid)
	var line string
	for i := 0; i < 100 && !(strings.HasPrefix(line, pid+" S ") && strings.HasSuffix(line, " sleep 60")); i++ {
		time.Sleep(10 * time.Millisecond) // until the child has exec'd and sleeps
		line = ""
		for _, l := range processes() {
			if strings.HasPrefix(l, pid+" ") {
				line = l
			}
		}
	}
	if f := strings.Fields(line); len(f) != 5 || f[1] != "S" || f[3] != "sleep" {
		t.Errorf("sleep 60 (pid %s) listed as %q, want \"%s S <wait channel> sleep 60\"", pid, line, pid)
	}
	if l := load(); !strings.HasPrefix(l, "load ") || !strings.Contains(l, ", running ") || !strings.Contains(l, ", blocked ") {
		t.Errorf("load() = %q", l)
	}
}
