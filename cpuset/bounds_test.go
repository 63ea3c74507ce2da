package cpuset_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/internal/testutil"
)

// A corrupt sysfs list is refused within the budget, the error naming the
// file and quoting a cut value.
func TestHostileSysfsWithinBudget(t *testing.T) {
	root := cpusettest.Root(t, cpusettest.VM2)
	online := filepath.Join(root, "devices/system/cpu/online")
	for name, content := range map[string]string{
		"range of billions": "0-4000000000\n",
		"repeated list":     strings.Repeat("0-8191,", 9000) + "0\n",
		"id beyond any":     "0-1,9000\n",
		"control bytes":     "0-1\x00\n\x1b[31m",
	} {
		if err := os.WriteFile(online, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		testutil.WithinBudget(t, name, func() { _, err = cpuset.Discover(root) })
		if err == nil || !strings.Contains(err.Error(), online) || len(err.Error()) > 1024 || strings.ContainsAny(err.Error(), "\n\x00\x1b") {
			t.Errorf("%s: Discover = %.300q", name, err)
		}
	}
}
