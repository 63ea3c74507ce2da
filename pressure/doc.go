// Package pressure measures load and pressure per cgroup and per node, cheaply
// enough to run every 100 ms over hundreds of containers, and carries out
// memory relief. It is a primitive: it knows nothing of pools or NRI, and it
// reads and writes cgroups only through package cgroup, which alone knows
// the files.
//
// # Sampling
//
// A Sampler watches many cgroups, each under a caller's id (a container id):
//
//	s := pressure.NewSampler(h, pressure.SamplerOptions{PSI: true})
//	s.Add(id, cg)        // opens the cgroup's counter files once
//	p := s.Sample()      // one pass: *Pass, reused by the next call
//	for _, c := range p.Samples { ... c.CPUCores, c.ThrottledFraction, c.File ... }
//	p.Vanished           // ids whose cgroup disappeared; dropped, not fatal
//	p.Errors             // ids whose files could not be parsed (file and line)
//
// Per cgroup it reads cumulative CPU time (v1 cpuacct.usage, v2 cpu.stat
// usage_usec), CFS bandwidth periods and throttling, the memory.stat values
// anon, file, active_file and inactive_file (hierarchical in both versions)
// and, with SamplerOptions.PSI, the cgroup's cpu and memory PSI. Rates come
// from the difference of monotonic counters between two passes, divided by
// the time between the two readings of that cgroup: CPUCores (CPU time per
// wall time), ThrottledFraction (share of CFS periods in which the quota ran
// out), ThrottledRate and PSI stall shares. A cgroup's first pass has no
// rates; a counter that goes backwards (the cgroup was recreated at the same
// path) gives Reset and no rates for that pass. Cgroups may be added and
// removed between passes and from other goroutines.
//
// The sampler keeps every file open and re-reads it with pread(2) from
// offset 0 into one reused buffer, which cgroupfs answers with fresh
// content, and parses the bytes without strconv; a pass over cgroups that
// were already sampled allocates nothing (BenchmarkSamplePass,
// TestSamplePassAllocatesNothing). A read of a removed cgroup's file fails
// with ENODEV; the file is reopened once, so a cgroup recreated at the same
// path is followed, and reported as vanished when the reopen finds nothing.
//
// What a pass costs is mostly the kernel's: on Linux 6.18 reading a leaf
// cgroup's memory.stat takes 7.9 µs, cpu.stat 1.4 µs, cpuacct.usage 0.9 µs
// and cpu.pressure 2.0 µs, so 1000 v1 containers cost about 10 ms of CPU per
// pass, against about 1.5 µs per cgroup of the sampler's own work.
// SamplerOptions.MemoryEvery reads memory.stat only every Nth pass.
//
// NodeSampler reads the node through github.com/prometheus/procfs: busy and
// iowait CPUs from /proc/stat, memory from /proc/meminfo, and PSI from
// /proc/pressure/{cpu,memory,io}. It allocates (procfs parses into maps),
// which is irrelevant for three to five files per pass.
//
// # Per-cgroup PSI on hybrid hosts
//
// PSI files live in the cgroup2 tree. On a V2 host every cgroup has them.
// On a Hybrid host (v1 controllers plus a cgroup2 mount without any) the
// cgroup2 directory at the same path is a separate cgroup that reports the
// stalls of the processes placed in it. runc places a container's processes
// there too (opencontainers/cgroups, fs.go, "cgroups-hybrid mode"), so for
// runtime-created containers the files describe the container; verified on
// Linux 6.18 with processes placed by cgroup.Cgroup.JoinUnified, which also
// accepts PSI triggers there. A cgroup whose processes were not placed there
// has no cgroup2 directory: HasPSI is false, which is not an error. Pure v1
// hosts have node PSI only.
//
// # Interference versus throttling
//
// A cgroup's CPU PSI "some" includes the time its tasks sat throttled by
// their own CFS quota (on Linux 6.18 a spinning task under a 20 ms/100 ms
// quota shows 80 % stall). CgroupSample carries CPU PSI together with the
// throttling counters, and CPUInterference subtracts the throttled time,
// leaving the time tasks were runnable, unthrottled and still waiting for a
// CPU. A caller can so tell a quota-bound container (throttled in most
// periods, little interference) from one starved by neighbours (not
// throttled, interference near its stall).
//
// # PSI triggers
//
// WatchPSI (and WatchNodePSI, WatchCgroupPSI) registers a kernel trigger
// "some|full <stall µs> <window µs>" on a PSI file and delivers an Event on
// each POLLPRI. The kernel accepts windows up to 10 s; with CAP_SYS_RESOURCE
// from 500 ms, without it only multiples of 2 s (Linux 6.5+). A window the
// kernel would refuse is not sent; the watch then polls the file and applies
// the same rule itself (stall growth within the window, at most one event
// per window). So does a refused write and a file that cannot signal (a
// fixture). The returned Rule says which delivery applies and which rule
// decided it; see also TestKernelPSIWindowRule.
//
// # Scheduler probe (eBPF)
//
// SchedProbe measures, per registered cgroup, CPU time, wake-ups and
// run-queue delay — the time from a task becoming runnable (woken, or
// preempted while still runnable) to it running, which is what hurts a
// latency-critical service under CPU contention — with three BTF-typed
// tracepoint programs (tp_btf sched_wakeup, sched_wakeup_new,
// sched_switch) loaded through github.com/cilium/ebpf:
//
//	p, err := pressure.NewSchedProbe(pressure.SchedProbeOptions{})
//	if errors.Is(err, pressure.ErrSchedNotSupported) { ... use the Sampler ... }
//	p.Add(id, cg)               // registers cg's cgroup id in a bounded hash map
//	ps, err := p.Sample()       // two batched map reads, whatever the number of cgroups
//	for _, s := range ps.Samples { ... s.CPUCores, s.DelayP99, s.DelayMean ... }
//	p.Remove(id); p.Close()     // deletes the entry; detaches and frees everything
//
// The programs are written in C (internal/schedbpf/sched.c), compiled by
// bpf2go with the object committed, and read the kernel's structures with
// CO-RE relocations against /sys/kernel/btf/vmlinux. A task's cgroup is
// its default-hierarchy (cgroup2) cgroup, task->cgroups->dfl_cgrp->kn->id,
// which is what bpf_get_current_cgroup_id returns for the running task and
// what cgroup.Cgroup.ID reads as the unified directory's inode. On a v2 host
// that is the container's cgroup. On a hybrid host it is the container's
// directory in the unified mount, which runc joins (verified on Linux 6.18:
// TestKernelSchedProbeAccuracy's tasks, placed there by cgroup.AddProc, are
// counted under their cgroup's id); a task that was not placed there counts
// under an ancestor and is not seen. Pure v1 hosts have no cgroup2 ids.
//
// Only registered cgroups are counted: the programs update entries that
// user space inserted and never insert any, so the maps stay bounded
// (MaxCgroups cgroups; queued tasks in an LRU map). Per CPU the probe keeps
// what runs since when, so Sample also charges the slice of a task still
// running and a CPU hog that is never switched out is still measured.
// Run-queue waits go into a log2 histogram (SchedHistSlots buckets, 1 µs to
// 0.5 s); a pass gives per-period mean (exact) and p50/p99 (interpolated in
// the bucket). Tasks in child cgroups of a registered cgroup count under the
// child, not the parent.
//
// A pass reads the counters map and the per-CPU map with one
// BPF_MAP_LOOKUP_BATCH each and allocates nothing (cilium/ebpf's
// Map.BatchLookup allocates a cursor and an error per pass, so the read
// issues the command itself, see sched_batch.go). Measured on Linux 6.18
// (docs/benchmarks.md): 0.26 ms of CPU per pass over 1000 live cgroups, 0
// allocations; about 1 µs per context switch added (pipe ping-pong, ratio
// 1.10). Against the kernel's own accounting: CPU time within 0.2 % of
// cpuacct.usage and run-queue delay within 0.1 % of /proc/PID/schedstat.
//
// Without kernel BTF or BPF tracing, or when the load or attach is refused
// (EPERM without CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN), NewSchedProbe
// returns an error wrapping ErrSchedNotSupported that says why. Nothing is
// pinned: the programs and maps live as long as the probe's file
// descriptors, so Close (or the process's exit) frees them and a restarted
// process starts a fresh probe rather than adding a second one.
//
// # Memory relief
//
// ReclaimPageCache shrinks a cgroup's page cache toward a target usage,
// never asking for memory page-cache reclaim cannot free (anon, kernel,
// shmem) plus a headroom. cgroup v2 uses memory.reclaim with swappiness=0.
// cgroup v1 has no reclaim file; there the hard limit is lowered in steps
// from the current usage toward the goal, each write making the kernel
// reclaim synchronously, and the original limit is always written back and
// verified byte for byte — also after an error and after the context is
// cancelled — unless someone else (a runtime resizing the container)
// changed it meanwhile: their value is kept and the error wraps
// ErrLimitChanged. The result reports the bytes the page cache shrank by.
//
// SetOOMScoreAdj sets /proc/PID/oom_score_adj (procfs root as a parameter)
// for every process of a cgroup, rolling back on failure so a cgroup is
// never half-adjusted; lowering it needs CAP_SYS_RESOURCE. SetOOMGroup sets
// cgroup v2 memory.oom.group (v1 has no equivalent).
//
// # Tests
//
// Kernel tests (TestKernel…) run on the host in cgroups of their own. On
// the cgroup v1 development machines, `make test-vm` (test/vm) runs the
// same tests on a real cgroup v2 kernel in a throwaway qemu VM (Debian's
// Linux 6.1), which covers memory.reclaim — including the
// fallback for kernels before 6.7 that refuse "swappiness=" —,
// memory.oom.group and privileged sub-2 s PSI triggers.
package pressure
