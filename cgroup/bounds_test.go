package cgroup_test

import (
	"strings"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// A hostile cpuset.cpus (a corrupt fixture, a cgroupfs that lies) is
// refused within the budget, with the value quoted and cut.
func TestHostileCPUSetFileWithinBudget(t *testing.T) {
	tree, cg := statTree(t, cgroup.V1, "/c")
	for name, content := range map[string]string{
		"range of billions": "0-4000000000",
		"repeated list":     strings.Repeat("0-8191,", 9000) + "0",
		"newlines and NULs": "0\nforged log line\x00",
	} {
		if err := tree.WriteFile("cpuset", "/c", "cpuset.cpus", content); err != nil {
			t.Fatal(err)
		}
		var err error
		testutil.WithinBudget(t, name, func() { _, err = cg.CPUSetCPUs() })
		if err == nil || len(err.Error()) > 1024 || strings.ContainsAny(err.Error(), "\n\x00") {
			t.Errorf("%s: CPUSetCPUs = %.300q", name, err)
		}
	}
}
