// Package cgroup is Strata's one cgroup layer: the only code in the project
// that knows cgroup file names, layouts and units. Every other package reads
// and writes cgroup values by meaning through it.
//
// # Model
//
// A Hierarchy describes how a host mounts cgroups, detected from
// mountinfo (Detect; the procfs root and a prefix for every mount point are
// parameters, so fixture trees stand in for hosts):
//
//   - V1: one hierarchy per controller or group of co-mounted controllers
//     (cpu and cpuacct may share a mount or not);
//   - Hybrid: V1 plus a cgroup2 mount without controllers, which still
//     provides cgroup ids, PSI files and BPF attach points;
//   - V2: the unified hierarchy.
//
// A Cgroup is a path relative to the hierarchy root. Hierarchy.Open turns the
// cgroups path a runtime reports into one, in the cgroupfs style
// ("/kubepods/burstable/pod<uid>/<id>") and the systemd style
// ("kubepods-burstable-pod<uid>.slice:cri-containerd:<id>"), and rejects a
// path that would escape the root with "..".
//
// Values are named by meaning and mapped to each version's file and unit:
//
//	meaning          v1 file                      v2 file
//	CPU weight       cpu.shares                   cpu.weight (runc's shares→weight conversion)
//	CPU quota        cpu.cfs_quota_us/period_us   cpu.max ("max" = -1)
//	CPU idle         cpu.idle (5.15+)             cpu.idle
//	CPU usage        cpuacct.usage (ns)           cpu.stat usage_usec
//	throttling       cpu.stat throttled_time (ns) cpu.stat throttled_usec
//	cpuset           cpuset.cpus / cpuset.mems    cpuset.cpus / cpuset.mems
//	memory limit     memory.limit_in_bytes        memory.max
//	memory soft/low  memory.soft_limit_in_bytes   memory.low
//	memory high/min  (none: ErrNotSupported)      memory.high / memory.min
//	memory usage     memory.usage_in_bytes        memory.current
//	anon, file, …    memory.stat total_rss, …     memory.stat anon, file, …
//	reclaim          (none: lower the limit)      memory.reclaim
//	OOM group kill   (none: ErrNotSupported)      memory.oom.group
//	PSI              unified mount (hybrid)       cpu/memory/io.pressure
//	processes        cgroup.procs in every mount  cgroup.procs
//
// Counters a sampler re-reads many times a second (CPU usage, throttling,
// memory.stat fields) are also exposed as CounterSources: file paths plus
// how to find each value, so a sampler keeps the files open and re-reads
// them without allocating.
//
// # Errors
//
// A failed file operation is a *FileError naming the operation, the file and
// the value. A cgroup whose directory is gone yields ErrVanished, which a
// caller sweeping many containers ignores deliberately with errors.Is; a
// missing file in a live cgroup yields ErrNotSupported.
//
// # Why not only a library
//
// github.com/opencontainers/cgroups and github.com/containerd/cgroups/v3 are
// built to create and manage a container's cgroup from an OCI spec. Strata
// instead adjusts cgroups that a runtime created, on hosts whose layout it
// must detect, and tests against fixture trees. What they cannot do for us:
//
//   - their file helpers (opencontainers/cgroups ReadFile/WriteFile) only open
//     files on a real cgroupfs below /sys/fs/cgroup, so they cannot be rooted
//     at a fixture tree; containerd/cgroups/v3 hard-codes /sys/fs/cgroup for
//     v2 and /proc for mountinfo;
//   - neither reads the kernel's "unlimited" v1 memory value back as -1, nor
//     maps v2 cpu.weight back to shares;
//   - both assume blkio.weight where the kernel only has blkio.bfq.weight
//     unless the bfq IO scheduler is selected (on 6.x kernels blkio.weight is
//     absent under mq-deadline/none), and cpu.idle, memory.reclaim and
//     per-cgroup PSI are not modelled at all.
//
// We use opencontainers/cgroups for the exact shares→weight conversion runc
// applies, so a value Strata writes reads back the same as one the runtime
// wrote, and github.com/prometheus/procfs to parse mountinfo.
//
// # Layering
//
// cgroup sits below the primitives (cpuset, pressure, iolimit, ...) and knows
// nothing of pools, containers' meaning or NRI.
package cgroup
