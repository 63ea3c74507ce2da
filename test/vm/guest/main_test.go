package main

import (
	"strings"
	"testing"
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
