// Package vm runs Strata's kernel tests on a real cgroup v2 kernel in a
// throwaway qemu guest, for hosts (like the development machines) whose
// controllers are bound to cgroup v1.
//
// # Model
//
// One harness serves every package; nobody writes a script per package:
//
//   - FetchKernel downloads a Debian linux-image package with `apt-get
//     download` and unpacks it with `dpkg-deb -x` (never installs it) into
//     /var/cache/strata-vm/kernel/<package> ($STRATA_VM_CACHE), once;
//   - KernelTestPackages finds every package with a TestKernel… test (go
//     list plus a look at its test files); BuildTestBinary compiles each one
//     statically (`go test -c`, CGO_ENABLED=0); ListTests asks each binary,
//     on the host, which tests it must report;
//   - Boot packs an initramfs in Go (newc cpio, uncompressed: unpacking
//     gzip under TCG is slow) holding the guest's /init (package
//     test/vm/guest), busybox-static with its applets, the kernel modules
//     the tests need (GuestModules and their dependencies), the test
//     binaries with their packages' testdata, and a Manifest; it then boots
//     qemu (TCG: no KVM needed; 4 vCPUs, 3 GiB) holding
//     /tmp/strata-measure.lock, since the guest keeps the host's CPUs busy,
//     with a scratch disk: a sparse ext4 image (mkfs.ext4 on the host) on
//     virtio-blk. Options.Files adds host files; a dynamically linked one
//     (Debian's runc) brings its shared libraries along (SharedLibraries);
//   - the guest's /init makes / a bind mount of the initial rootfs (so
//     that runc's pivot_root works), mounts cgroup2 with cpu, cpuset,
//     memory, io and pids enabled in the root's subtree_control, loads the
//     modules, mounts the scratch disk on /var/tmp and makes it the runs'
//     TMPDIR (page cache there is reclaimable, unlike tmpfs, and a test's
//     TempDir has a block device under it to throttle), runs each binary
//     with -test.run Kernel -test.v in its package directory, and prints
//     one Event line (EventMarker + JSON) per finished test and per exit
//     on the serial console before powering off;
//   - Report collects the events; Check fails the run on a failed test, a
//     listed test without a result, a binary that did not exit 0, a guest
//     that never booted or never finished. A skip is reported, not judged:
//     the guest's tests get the host's STRATA_TEST_REQUIRE_KERNEL, so
//     internal/testutil fails a skip of a feature the guest kernel has, as
//     on the host.
//
// TestVM (make test-vm) is the stage: each guest test appears as a
// subtest TestVM/<package>/<test> that passes, skips or fails as it did in
// the guest. It also runs testdata/broken, whose wrong measured
// expectation and mid-test exit the harness must report, so the stage is
// shown to be able to fail.
//
// The plugin end to end on cgroup v2: TestVM also runs the e2e tests of
// test/e2e/strata named in e2eTests (placement, burner; less those
// notYetInGuest lists) in the guest,
// against containerd 2.4.2 built without cgo (harness.BuildOptions.Static,
// cached in /var/cache/strata-e2e/2.4.2-static), the host's runc, the
// e2e test image and the plugin, all packed in the layout the e2e harness
// reads from $STRATA_E2E_PREBUILT instead of building. The tests are the
// host's own, branching on the cgroup mode where v1 and v2 differ.
// STRATA_VM_E2E=0 leaves them out.
//
// Kubernetes on cgroup v2: TestVMKubernetes (make test-vm-k8s, which
// make test runs after test-vm; STRATA_VM_K8S=0 leaves it out) runs the
// Kubernetes tier's tests
// named in k8sTests on a kubelet in a 2-vCPU guest, the node the tests
// assume. The control plane runs on the host (test/k8s/harness
// StartControlPlane, its certificate naming HostIP); the guest gets a NIC
// on qemu's user network (Options.Network: GuestIP, the host's loopback at
// HostIP) and the node's binaries — kubelet, containerd, the plugin, the
// image, the control plane's description — on a second, read-only virtio
// disk (Options.DiskFiles: an ext4 image made with mkfs.ext4 -d, mounted
// on FilesMount), not in the initramfs, which lives in guest RAM. The
// tests are the host's own: harness.Start joins the control plane named
// by $STRATA_K8S_REMOTE, and they branch on the cgroup mode where v1 and
// v2 differ.
//
// # A guest that wedges
//
// A guest that stops must say where, within minutes, not leave the stage
// silent until its timeout. Every guest boots with WatchdogArgs: a soft
// lockup or an RCU stall panics it, the panic prints every CPU's
// backtrace, and Check reports "guest kernel panicked" with the kernel's
// reason and first call trace (Report.Panic; the whole console is kept in
// last-console.log). The TCG guest has no PMU, hence no NMI watchdog:
// CPUs that all spin with interrupts off, or all wait for an interrupt
// that never comes, trip none of these. So the guest's /init prints a
// heartbeat (EventAlive: uptime, load, running and blocked tasks, its
// set-up step or the run under way and how long ago it last printed)
// every HeartbeatInterval from its first instruction, and adds the
// process table (state, wait channel, command) once a run has printed
// nothing for 2 min; and the host's watchdog kills a guest with no boot
// event Options.BootTimeout (3 min) after qemu started, or, once up, one
// whose console has been quiet for Options.Silence (2 min, 8 heartbeats).
// The Report's error then says why, with qemu's run state (QemuStatus),
// where each vCPU is (DumpCPUs, from qemu's monitor) and the console's
// last lines. TestVMHangs shows both kills on guests that really hang
// (an /init that sleeps): each within its limit plus 15 s.
// Options.BootRetry boots once more, logged, a guest that hung before
// its boot event; no VM test sets it (no boot of the k8s guest hung in
// 19 tries: no hang is known to be transient).
// STRATA_VM_DEBUG=1 adds DebugArgs: the kernel's whole log on the console
// and a panic on a task hung for 60 s.
//
// The scheduler tracepoints are enabled at boot (SchedTraceArgs): live
// patching of their call sites when a BPF program attaches or detaches
// has wedged the multi-threaded TCG guest, see there.
//
// # Measuring in a TCG guest
//
// Guest time follows the host clock, and cgroup CPU usage is accounted by
// the guest scheduler's clock, so shares and quotas measured as cgroup
// usage over guest wall time are exact even when the host deschedules a
// vCPU thread. Tick-based figures (/proc/stat) are not: they lose the ticks
// of a descheduled vCPU, so tests that read them want a quiet host. qemu
// runs at nice -5 when the harness is root.
package vm
