// Package cgrouptest builds fixture cgroup trees that mirror what real
// kernels mount and show, for tests of code that reads or writes cgroups on
// machines that lack a layout (this project's development machines have
// cgroup v1 with an empty cgroup2 mount, so cgroup v2 controllers exist only
// as fixtures here).
//
// A Tree is a temporary directory holding proc/self/mountinfo and the cgroup
// mounts below sys/fs/cgroup; cgroup.Detect with Tree.Options reads it as
// it reads a host. Files carry the defaults a fresh kernel cgroup has
// (cpu.shares 1024, cpu.max "max 100000", memory.limit_in_bytes
// 9223372036854771712, ...).
package cgrouptest
