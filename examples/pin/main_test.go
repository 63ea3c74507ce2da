package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/strata-nri/strata/examples/internal/cgexec"
	"github.com/strata-nri/strata/internal/testutil"
)

// Planned on modelled machines: whole cores of one socket, that socket's
// memory node; --spread takes one thread per core.
func TestPlan(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpus", "4", "--machine", "intel-2s-20c-2t"}, "CPUs 0-1,40-41, memory nodes 0"},
		{[]string{"--cpus", "4", "--machine", "intel-2s-20c-2t", "--spread"}, "CPUs 0-3, memory nodes 0"},
		{[]string{"--cpus", "2", "--machine", "intel-2s-20c-2t", "--reserved", "0,40"}, "CPUs 1,41, memory nodes 0"},
	} {
		var out bytes.Buffer
		if err := run(c.args, &out); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: %q, want %q", c.args, out.String(), c.want)
		}
	}
	cgexec.CheckArgErrors(t, func(args []string) error { return run(args, &bytes.Buffer{}) }, []cgexec.ArgError{
		{Args: []string{"--cpus", "0"}, Want: "want 1..8192"},
		{Args: []string{"--cpus", "500", "--machine", "intel-2s-20c-2t"}, Want: "requested 500 CPUs"},
		{Args: []string{"--machine", "abacus"}, Want: `--machine "abacus"`},
		{Args: []string{"--reserved", "x"}, Want: `--reserved "x"`},
	})
}

// On the real host, as root: the command runs with exactly the planned
// CPUs (it prints its own affinity).
func TestKernelPinRunsCommand(t *testing.T) {
	testutil.RequireRoot(t)
	var out bytes.Buffer
	if err := run([]string{"--cpus", "1", "--", "grep", "Cpus_allowed_list", "/proc/self/status"}, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	i := strings.Index(s, "CPUs ")
	j := strings.Index(s, ", memory")
	if i < 0 || j < 0 {
		t.Fatalf("no plan in output:\n%s", s)
	}
	cpus := s[i+5 : j]
	// The command is held at a gate until it is in its cgroup, so even its
	// first read of its own status sees the pinned CPUs.
	if !strings.Contains(s, "Cpus_allowed_list:\t"+cpus+"\n") {
		t.Errorf("command did not run on its CPUs %s:\n%s", cpus, s)
	}
}
