package testutil_test

import (
	"fmt"

	"github.com/strata-nri/strata/internal/testutil"
)

// A kernel feature a test needs, and the kernel-version reason a test
// gives when the running kernel is too old. In a test:
//
//	testutil.RequireRoot(t)
//	testutil.RequireFeature(t, testutil.CgroupV1("cpu"))
func Example() {
	f := testutil.CgroupV1("cpu")
	fmt.Println(f.Name)
	fmt.Println(testutil.KernelOlderThan(1, 0, "anything") == "")
	fmt.Println(testutil.KernelOlderThan(999, 0, "cpu.idle") != "")
	// Output:
	// cgroup v1 cpu controller
	// true
	// true
}
