// Package sim drives the isolation decision core with a simulated node:
// a CPU topology (a cpusettest fixture or any cpuset.Topology), containers
// whose CPU demand follows traces (diurnal curves, step spikes, constants)
// and batch containers that use whatever they are given. Time is simulated:
// a day of one-second periods runs in seconds, and the same Scenario always
// gives the same Result.
//
// The node model is deliberately simple and stated here so results can be
// judged:
//
//   - Shared members of a pool together get at most the pool's shared CPUs:
//     when their demand exceeds it, each gets demand × CPUs / total demand.
//     A member with exclusive CPUs gets min(demand, its CPUs).
//   - Batch members (CPU trace nil) use min(batch pool CPUs, batch capacity
//     view of the last plan), split equally; nothing while suspended.
//   - Memory is the sum of members' anon and file traces plus a system
//     base. A page-cache reclaim empties the container's file pages, which
//     then regrow by its trace; an eviction removes the container.
//   - Plans are applied at once and committed: the next period runs on them.
//
// Scenarios of docs/simulation.md are built by DiurnalScenario,
// SpikeScenario, SteadyScenario and MemoryPressureScenario; the acceptance
// tests run them, and benchmarks/cmd/simplot draws them.
package sim
