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
//     /tmp/strata-measure.lock, since the guest keeps the host's CPUs busy;
//   - the guest's /init mounts cgroup2 with cpu, cpuset, memory, io and
//     pids enabled in the root's subtree_control, loads the modules, puts
//     /var/tmp on an ext2 RAM disk (page cache there is reclaimable, unlike
//     tmpfs), runs each binary with -test.run Kernel -test.v in its
//     package directory, and prints one Event line (EventMarker + JSON) per
//     finished test and per exit on the serial console before powering off;
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
// # Measuring in a TCG guest
//
// Guest time follows the host clock, and cgroup CPU usage is accounted by
// the guest scheduler's clock, so shares and quotas measured as cgroup
// usage over guest wall time are exact even when the host deschedules a
// vCPU thread. Tick-based figures (/proc/stat) are not: they lose the ticks
// of a descheduled vCPU, so tests that read them want a quiet host. qemu
// runs at nice -5 when the harness is root.
package vm
