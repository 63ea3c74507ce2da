// Command colocation measures what batch work co-located on a node does to a
// latency-critical (LC) service, side by side under several isolation
// schemes, and writes the figures as Markdown and JSON.
//
//	go run ./benchmarks/colocation -out /tmp/colo
//	make bench-colocation
//
// The LC service is an HTTP server on loopback whose every request does a
// fixed amount of CPU work over a few-MiB working set. An open-loop load
// generator sends requests at Poisson-distributed times and measures each
// latency from the request's intended send time, so a stalled server shows
// up in the figures instead of slowing the generator (no coordinated
// omission); latencies go into an HDR histogram. With -out it also writes
// an SVG bar chart of the LC p99 per scenario. The service's capacity is
// measured alone first (closed loop) and load levels are set as a fraction
// of it.
//
// Batch antagonists are a CPU burner and a memory-bandwidth/cache thrasher,
// each reporting its work per second. The LC service and the antagonists
// are child processes of this binary (it re-executes itself with a role in
// STRATA_COLOCATION_ROLE), placed in cgroups the benchmark creates through
// package cgroup and removes at the end, also on failure.
//
// Scenarios, interleaved within each repeat so drift in the machine's load
// spreads over all of them: LC alone; batch alone; LC with batch and no
// isolation; Kubernetes-style static (batch cpu.shares 2, LC shares by its
// request); static pools (disjoint cpusets, no feedback loop). This is the
// direct-on-cgroups mode: no container runtime is involved, so it runs on
// any host as root.
//
// The load generator runs in the benchmark's own process, outside the
// scenarios' cgroups; on a small machine it competes for the same CPUs, and
// the report says so.
package main
