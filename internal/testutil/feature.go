package testutil

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
)

// RequireKernelEnv is the environment variable that makes missing kernel
// features fail tests instead of skipping them.
const RequireKernelEnv = "STRATA_TEST_REQUIRE_KERNEL"

// KernelRequired reports whether STRATA_TEST_REQUIRE_KERNEL=1.
func KernelRequired() bool { return os.Getenv(RequireKernelEnv) == "1" }

// RequireRoot skips the test unless it runs as root; under
// STRATA_TEST_REQUIRE_KERNEL=1 it fails instead, since CI runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if KernelRequired() {
		tb.Fatalf("%s=1 but the test runs as uid %d: kernel tests need root", RequireKernelEnv, os.Geteuid())
	}
	tb.Skip("kernel test needs root")
}

// Feature is a kernel interface a test needs.
type Feature struct {
	// Name says what the feature is, e.g. "cgroup v1 cpu controller".
	Name string
	// Probe returns nil when the feature works on this machine.
	Probe func() error
	// Absent returns a non-empty reason when independent evidence shows
	// the machine truly lacks the feature. An empty reason means the
	// machine should have it.
	Absent func() string
}

var probeCache sync.Map // Name -> error (nil stored as errNone)

type probeResult struct{ err error }

// RequireFeature skips the test, with the reason, when f is truly absent;
// fails it when f's probe fails without such a reason and
// STRATA_TEST_REQUIRE_KERNEL=1; otherwise skips with the probe's error.
func RequireFeature(tb testing.TB, f Feature) {
	tb.Helper()
	v, ok := probeCache.Load(f.Name)
	if !ok {
		v, _ = probeCache.LoadOrStore(f.Name, probeResult{f.Probe()})
	}
	err := v.(probeResult).err
	if err == nil {
		return
	}
	reason := ""
	if f.Absent != nil {
		reason = f.Absent()
	}
	if reason != "" {
		tb.Skipf("%s is absent on this machine: %s (probe: %v)", f.Name, reason, err)
	}
	if KernelRequired() {
		tb.Fatalf("%s should be available on this machine but is not: %v", f.Name, err)
	}
	tb.Skipf("%s unavailable: %v", f.Name, err)
}

// KernelRelease returns the running kernel's major and minor version.
func KernelRelease() (major, minor int) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0
	}
	fmt.Sscanf(string(bytes.TrimRight(u.Release[:], "\x00")), "%d.%d", &major, &minor)
	return major, minor
}

// KernelOlderThan returns a reason when the running kernel predates
// major.minor, "" otherwise.
func KernelOlderThan(major, minor int, what string) string {
	ma, mi := KernelRelease()
	if ma < major || ma == major && mi < minor {
		return fmt.Sprintf("%s needs Linux %d.%d, running %d.%d", what, major, minor, ma, mi)
	}
	return ""
}

// HostHierarchy detects the host's cgroup mounts from /proc.
func HostHierarchy() (*cgroup.Hierarchy, error) {
	return cgroup.Detect(cgroup.Options{})
}

// CgroupV1 is the feature "cgroup v1 controller ctl is mounted". It is truly
// absent only on a pure cgroup v2 host.
func CgroupV1(ctl string) Feature {
	return Feature{
		Name: "cgroup v1 " + ctl + " controller",
		Probe: func() error {
			h, err := HostHierarchy()
			if err != nil {
				return err
			}
			if h.Mode() == cgroup.V2 || !h.HasController(ctl) {
				return fmt.Errorf("%w: %s (mode %s)", cgroup.ErrNoController, ctl, h.Mode())
			}
			return nil
		},
		Absent: func() string {
			if h, err := HostHierarchy(); err == nil && h.Mode() == cgroup.V2 {
				return "the host mounts only the unified cgroup v2 hierarchy"
			}
			return ""
		},
	}
}

// CgroupV2Controllers is the feature "the unified hierarchy carries
// controllers". It is truly absent when a hybrid host binds every
// controller to v1 (a controller lives in one hierarchy only).
func CgroupV2Controllers(ctl string) Feature {
	return Feature{
		Name: "cgroup v2 " + ctl + " controller",
		Probe: func() error {
			h, err := HostHierarchy()
			if err != nil {
				return err
			}
			if h.Mode() != cgroup.V2 || !h.HasController(ctl) {
				return fmt.Errorf("%w: %s in cgroup v2 (mode %s)", cgroup.ErrNoController, ctl, h.Mode())
			}
			return nil
		},
		Absent: func() string {
			h, err := HostHierarchy()
			if err != nil {
				return ""
			}
			if h.Mode() != cgroup.V2 && h.HasController(ctl) {
				return fmt.Sprintf("%s is bound to a cgroup v1 hierarchy (mode %s), so cgroup v2 cannot have it", ctl, h.Mode())
			}
			return ""
		},
	}
}

// CPUIdle is the feature "cpu.idle exists in cpu cgroups" (Linux 5.15+ with
// fair group scheduling).
var CPUIdle = Feature{
	Name: "cgroup CPU idle scheduling",
	Probe: func() error {
		h, err := HostHierarchy()
		if err != nil {
			return err
		}
		cg, err := h.Create(fmt.Sprintf("/strata-probe-%d", os.Getpid()))
		if err != nil {
			return err
		}
		defer cg.Remove()
		_, err = cg.CPUIdle()
		return err
	},
	Absent: func() string { return KernelOlderThan(5, 15, "cgroup idle scheduling") },
}

// PSI is the feature "pressure stall information in /proc/pressure".
var PSI = Feature{
	Name: "PSI (/proc/pressure)",
	Probe: func() error {
		_, err := os.ReadFile("/proc/pressure/cpu")
		return err
	},
	Absent: func() string {
		if r := KernelOlderThan(4, 20, "PSI"); r != "" {
			return r
		}
		cmdline, _ := os.ReadFile("/proc/cmdline")
		if strings.Contains(" "+string(cmdline)+" ", " psi=0 ") {
			return "the kernel was booted with psi=0"
		}
		return ""
	},
}

// Resctrl is the feature "RDT through resctrl". It is truly absent when the
// CPU advertises no RDT allocation (rdt_a / cat_l3 / mba flags).
var Resctrl = Feature{
	Name: "resctrl (RDT)",
	Probe: func() error {
		_, err := os.Stat("/sys/fs/resctrl/schemata")
		return err
	},
	Absent: func() string {
		info, _ := os.ReadFile("/proc/cpuinfo")
		for _, flag := range []string{" rdt_a", " cat_l3", " mba"} {
			if bytes.Contains(info, []byte(flag)) {
				return ""
			}
		}
		return "the CPU advertises no RDT allocation flags (rdt_a, cat_l3, mba) in /proc/cpuinfo"
	},
}
