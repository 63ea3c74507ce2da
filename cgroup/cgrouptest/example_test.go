package cgrouptest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
)

// Test cgroup v2 code on a machine without v2 controllers: a fixture tree
// that cgroup.Detect reads as it reads a host.
func Example() {
	dir, err := os.MkdirTemp("", "cgrouptest-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	tree, err := cgrouptest.New(dir, cgroup.V2, "0-3", "0")
	if err != nil {
		panic(err)
	}
	if err := tree.AddCgroup("/pods/web"); err != nil {
		panic(err)
	}
	h, err := tree.Hierarchy()
	if err != nil {
		panic(err)
	}
	cg, err := h.Open("/pods/web")
	if err != nil {
		panic(err)
	}
	if err := cg.SetCPUShares(512); err != nil {
		panic(err)
	}
	// On v2 the shares land in cpu.weight, converted as runc converts them
	// (512 shares, half the default, are weight 59 of the default 100).
	weight, err := os.ReadFile(filepath.Join(tree.UnifiedDir("/pods/web"), "cpu.weight"))
	fmt.Println(h.Mode(), strings.TrimSpace(string(weight)), err)
	// Output:
	// v2 59 <nil>
}
