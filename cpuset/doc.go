// Package cpuset discovers a machine's CPU topology from sysfs and chooses
// CPUs with it: exclusive CPUs for latency-critical containers, compact
// shared pools, and pools that grow and shrink as load moves. It then
// applies the chosen sets to cgroups. It is a primitive: it knows nothing of
// pools or NRI.
//
// # Topology
//
// Discover reads a sysfs root ("/sys" in production, a fixture tree in
// tests): online, offline, isolated and nohz_full CPUs; each online CPU's
// package, die, core and SMT siblings; its L2 and L3 cache groups
// (cache/index*/shared_cpu_list); NUMA nodes with their distance rows and
// memory; and hybrid core kinds (Intel's devices/cpu_core and
// devices/cpu_atom lists, or differing cpuN/cpu_capacity on arm64).
// A missing or malformed required file is an error that names the file.
//
// The CPUs form a locality tree:
//
//	machine → package → die → NUMA node → core kind → L3 → L2 → core → thread
//
// Each level groups the CPUs that share it and everything above it, so the
// tree stays a tree where caches and nodes do not nest the same way: with
// Intel sub-NUMA clustering one L3 spans two nodes (its groups are the node
// halves); on AMD EPYC a node holds several L3 groups (CCX). Levels a
// machine does not have collapse away.
//
// # Allocation
//
// For n CPUs the planner finds the tightest group that can hold them, in
// this order of preference:
//
//  1. whole cores inside one core, L2, L3, core kind or NUMA node
//     (tightest first);
//  2. single threads inside the same;
//  3. one die, then one package, then the machine, whole cores before
//     threads at each.
//
// Within a NUMA node whole cores beat L3 compactness (an SMT sibling shared
// with another container hurts more than a second L3), but a request never
// leaves a node just to get whole cores. Among equally tight groups the
// planner takes the one nearest (SLIT distance) to what it already chose,
// then the best fit (fewest free CPUs, keeping big holes for big
// requests), then the lowest. A request larger than every child of the
// chosen group spans the fewest children: whole largest children first,
// then the best-fitting child for the remainder. Above the NUMA level the
// children counted are NUMA nodes: a request larger than any node stays in
// the tightest die or package that holds it and spans the fewest nodes
// there; one larger than any package spans the fewest nodes of the machine,
// nearest first. Single threads come from
// half-used cores before a whole free core is broken. On hybrid machines
// exclusive CPUs come from performance cores while they last.
//
// Allocator keeps the free set for exclusive CPUs: TakeExclusive, Release
// (exactly what was taken, or nothing), Free, Allocated. Reserved and
// isolated CPUs are never handed out unless allowed. A request larger than
// what is free fails with an *InsufficientCPUsError (errors.Is
// ErrInsufficientCPUs) and allocates nothing. TakeOptions.Spread takes one
// thread per physical core instead.
//
// # Shared pools
//
// Topology.Carve splits what remains after exclusive and reserved CPUs into
// compact pools. Topology.Grow picks CPUs to add to a pool close to where
// the pool already is (its cores' free siblings, then its L3 groups, its
// nodes, nearest nodes); Topology.Shrink picks the pool's loosest CPUs to
// give back and never touches protected ones (an exclusive allocation
// inside the pool). Neither moves a CPU the pool keeps. MemsFor gives the
// cpuset.mems that matches a CPU set.
//
// # Applying
//
// Apply writes cpuset.cpus and cpuset.mems through package cgroup, for
// cgroup v1 and v2, restoring the old CPUs if the mems write fails. On v1 a
// child's CPUs must stay inside its parent's, so ApplyTree (and
// ApplyNested) change a parent and its children in an order v1 accepts:
// widen top-down to old ∪ new, then narrow bottom-up to new.
//
// Package cpusettest writes sysfs trees of real machines' shapes (a 2-CPU
// VM up to a 448-CPU 4-socket server) for tests and benchmarks.
package cpuset
