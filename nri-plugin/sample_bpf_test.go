package nriplugin

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/pressure"
)

// Capabilities that let a process load and attach tracing programs.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// withoutBPFCaps runs f on a thread whose effective capabilities lack
// CAP_SYS_ADMIN, CAP_PERFMON and CAP_BPF, as on a host that forbids BPF;
// the permitted set keeps them, so they are restored afterwards.
func withoutBPFCaps(t *testing.T, f func()) {
	t.Helper()
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var old [2]unix.CapUserData
	if err := unix.Capget(&hdr, &old[0]); err != nil {
		t.Fatal(err)
	}
	dropped := old
	for _, c := range []uint{capSysAdmin, capPerfmon, capBPF} {
		dropped[c/32].Effective &^= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &dropped[0]); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Capset(&hdr, &old[0]); err != nil {
			t.Fatalf("restore capabilities: %v", err)
		}
	}()
	f()
}

func testPlugin(t *testing.T, log *slog.Logger) *Plugin {
	t.Helper()
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	p, err := New(Options{Config: trusting(), SysfsRoot: node.sysfs, ProcRoot: filepath.Join(node.tree.Dir, "proc"),
		Cgroups: node.h, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKernelSchedProbeRefused: where the kernel refuses the BPF load (here
// the loading thread lacks the capabilities; unprivileged BPF is off on
// this machine), the plugin samples cgroup files alone and says why, once,
// in its log and in Status. With the capabilities, the probe runs.
func TestKernelSchedProbeRefused(t *testing.T) {
	testutil.RequireRoot(t)
	if b, _ := os.ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled"); strings.TrimSpace(string(b)) == "0" {
		t.Skip("unprivileged BPF is allowed here: dropping capabilities does not refuse the load")
	}
	old := loadSchedProbe
	t.Cleanup(func() { loadSchedProbe = old })
	var refusal error
	loadSchedProbe = func() (probe *pressure.SchedProbe, err error) {
		withoutBPFCaps(t, func() { probe, err = old() })
		refusal = err
		return probe, err
	}
	var logs bytes.Buffer
	p := testPlugin(t, slog.New(slog.NewTextHandler(&logs, nil)))
	p.startSched()
	defer p.stopSched()
	if refusal == nil || !errors.Is(refusal, pressure.ErrSchedNotSupported) || !errors.Is(refusal, unix.EPERM) {
		t.Fatalf("load without capabilities: %v, want ErrSchedNotSupported wrapping EPERM", refusal)
	}
	if n := strings.Count(logs.String(), "scheduler probe unavailable"); n != 1 || !strings.Contains(logs.String(), "operation not permitted") {
		t.Errorf("want one log line saying why, got %d:\n%s", n, logs.String())
	}
	if s := p.Status().Sampler; !strings.HasPrefix(s, "files (") || !strings.Contains(s, "operation not permitted") {
		t.Errorf("Status sampler %q, want files with the reason", s)
	}
	obs := p.observe() // the file sampler still serves the loop
	if obs == nil {
		t.Fatal("no observations")
	}

	loadSchedProbe = old
	logs.Reset()
	q := testPlugin(t, slog.New(slog.NewTextHandler(&logs, nil)))
	q.startSched()
	defer q.stopSched()
	if s := q.Status().Sampler; s != "ebpf" {
		if testutil.KernelRequired() {
			t.Fatalf("with capabilities the probe does not run: %s", s)
		}
		t.Skipf("scheduler probe unavailable on this kernel: %s", s)
	}
	if !strings.Contains(logs.String(), "scheduler probe running") {
		t.Errorf("no log line for the running probe:\n%s", logs.String())
	}
}
