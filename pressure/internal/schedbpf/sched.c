//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Scheduler probe: per cgroup CPU time, wake-ups and run-queue delay, for
// the cgroups user space registered in the stats map. See
// pressure/sched.go for the model; this file is compiled by bpf2go (see
// gen.go) and its output is committed, so builds need no clang.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char __license[] SEC("license") = "Dual BSD/GPL";

// The few kernel types the probe reads, relocated by CO-RE against the
// running kernel's BTF, so no vmlinux.h is needed and field offsets are
// the kernel's own.
struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

// HIST_SLOTS log2 buckets of run-queue delay in microseconds: slot 0 is
// [0, 1) µs, slot i is [2^(i-1), 2^i) µs, the last slot takes the rest
// (from 2^(HIST_SLOTS-2) µs, about 0.5 s on).
#define HIST_SLOTS 21

// One registered cgroup's cumulative counters. Updated with atomic adds
// from every CPU; user space reads the whole map with one batched lookup.
struct cg_stats {
	__u64 cpu_ns;    // time its tasks ran
	__u64 wakeups;   // sched_wakeup and sched_wakeup_new of its tasks
	__u64 delay_ns;  // run-queue delay, summed
	__u64 delays;    // run-queue waits measured (wake-up or preemption to running)
	__u64 hist[HIST_SLOTS];
};

// What runs on a CPU: since when, and its cgroup when registered (0 when
// not), so the time it runs is charged at the next switch and user space
// can add the time of a task still running.
struct on_cpu {
	__u64 since_ns;
	__u64 cgroup_id;
};

// stats: the registered cgroups; user space inserts zeroed entries and
// deletes them, the programs only update what they find. Its size is set
// by user space at load.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cg_stats);
} stats SEC(".maps");

// queued: since when a task of a registered cgroup waits on a run queue,
// by pid (tid). LRU so that tasks that exit while queued cannot fill it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} queued SEC(".maps");

// oncpu: one entry per CPU, indexed by CPU number (an array rather than a
// per-CPU map so user space reads it with the same batched lookup). Each
// CPU writes only its own entry. Sized to the possible CPUs by user space.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct on_cpu);
} oncpu SEC(".maps");

// The v2 (default hierarchy) cgroup id of a task: on a hybrid host this is
// its cgroup in the unified mount, which runc joins; on pure v1 hosts it is
// the root's.
static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static __always_inline void enqueued(struct task_struct *t, __u64 now, int wakeup)
{
	__u64 id = task_cgroup_id(t);
	struct cg_stats *s = bpf_map_lookup_elem(&stats, &id);
	if (!s)
		return;
	if (wakeup)
		__sync_fetch_and_add(&s->wakeups, 1);
	__u32 pid = BPF_CORE_READ(t, pid);
	bpf_map_update_elem(&queued, &pid, &now, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(strata_wakeup, struct task_struct *p)
{
	enqueued(p, bpf_ktime_get_ns(), 1);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(strata_wakeup_new, struct task_struct *p)
{
	enqueued(p, bpf_ktime_get_ns(), 1);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(strata_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 cpu = bpf_get_smp_processor_id();
	struct on_cpu *c = bpf_map_lookup_elem(&oncpu, &cpu);
	if (!c)
		return 0;
	if (c->cgroup_id && c->since_ns && now > c->since_ns) {
		struct cg_stats *s = bpf_map_lookup_elem(&stats, &c->cgroup_id);
		if (s)
			__sync_fetch_and_add(&s->cpu_ns, now - c->since_ns);
	}
	// A task switched out while still runnable (TASK_RUNNING, 0) was
	// preempted: it waits on the run queue from now on.
	if (prev_state == 0)
		enqueued(prev, now, 0);

	__u64 id = task_cgroup_id(next);
	struct cg_stats *s = bpf_map_lookup_elem(&stats, &id);
	c->since_ns = now;
	c->cgroup_id = s ? id : 0;
	if (!s)
		return 0;
	__u32 pid = BPF_CORE_READ(next, pid);
	__u64 *tsp = bpf_map_lookup_elem(&queued, &pid);
	if (!tsp)
		return 0;
	__u64 ts = *tsp;
	bpf_map_delete_elem(&queued, &pid);
	if (now < ts)
		return 0;
	__u64 d = now - ts;
	__sync_fetch_and_add(&s->delay_ns, d);
	__sync_fetch_and_add(&s->delays, 1);
	__u64 us = d / 1000;
	__u32 slot = us ? log2_u64(us) + 1 : 0;
	if (slot >= HIST_SLOTS)
		slot = HIST_SLOTS - 1;
	__sync_fetch_and_add(&s->hist[slot], 1);
	return 0;
}
