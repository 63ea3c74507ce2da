// Command colocation measures what batch work co-located on a node does to a
// latency-critical (LC) service, side by side under several isolation
// schemes — Strata's full loop among them — and writes the figures as
// Markdown, JSON and SVG.
//
//	go run ./benchmarks/colocation -out /tmp/colo
//	make bench-colocation
//
// The LC service is an HTTP server on loopback whose every request does a
// fixed amount of CPU work over a few-MiB working set. An open-loop load
// generator sends requests at Poisson-distributed times and measures each
// latency from the request's intended send time, so a stalled server shows
// up in the figures instead of slowing the generator (no coordinated
// omission); latencies go into an HDR histogram. The service's capacity is
// measured alone first (closed loop) and load levels are set as fractions
// of it: steady levels (-loads, default 20, 50 and 80 %) and a time-varying
// one (-step: 20 % → 80 % → 20 %, each phase -duration long). Every
// scenario runs under the same load for a warm-up (-warmup) before its
// window is measured.
//
// Batch antagonists are a CPU burner and a memory-bandwidth/cache thrasher,
// each reporting its work per second over the measured window. The LC
// service and the antagonists are child processes of this binary (it
// re-executes itself with a role in STRATA_COLOCATION_ROLE), placed in
// cgroups the benchmark creates through package cgroup and removes at the
// end, also on failure.
//
// With -net (off by default, like -disk) batch also runs a network blaster
// and the LC traffic shares a capped link with it: the benchmark creates a
// network namespace joined to the host by a veth pair (netlink), the load
// generator's connections are made inside the namespace (each dial on an
// OS thread that entered it) and the LC service answers on the host side,
// so its responses leave by the host veth's egress, where the blaster's
// bulk TCP to a sink in the namespace goes too. That egress is capped at
// -net-link (default 200 Mbit/s, far below what the CPUs push through a
// veth): a plain htb with one class and one FIFO outside Strata, Strata's
// netqos (network.interface the veth, network.link the same rate, the
// pools' net profiles netConfig sets) in its scenarios. The blaster
// reports Mbit/s sent. The namespace, the veth and its qdiscs, the
// children and the cgroups are removed at the end, on failure and on
// SIGINT or SIGTERM.
//
// Scenarios, interleaved within each repeat so drift in the machine's load
// spreads over all of them: LC alone; batch alone; LC with batch and no
// isolation; Kubernetes-style static (batch cpu.shares 2, LC shares by its
// request); static pools (disjoint cpusets, no feedback loop); Strata's full
// loop at a 1 s and at a 100 ms period (strata-1s, strata-100ms).
//
// # Strata without a container runtime
//
// In the Strata scenarios the unmodified plugin (package nri-plugin, built
// as the strata binary's run command builds it) runs in a child process
// and connects over NRI to a stand-in runtime in the benchmark: NRI's own
// runtime side (github.com/containerd/nri/pkg/adaptation, the code
// containerd embeds) serving on a private socket. The LC service and the
// batch antagonists are announced to it as containers — created (the
// plugin's adjustment is written into their cgroups), started once their
// processes are in those cgroups — and the plugin's unsolicited updates
// are written the same way, as runc's cgroupfs manager writes them
// (cpuset, then memory, then cpu; the first refused write fails the update,
// and the report counts those). So admission, the feedback loop, drift
// repair and the plugin's direct writes are the product's own; only
// containerd and runc are stand-ins, and pods, images and namespaces do not
// exist. The configuration is Strata's default with three changes a 2-CPU
// node needs (benchConfig says which and why).
//
// # Reaction and overhead
//
// The reaction benchmark steps the LC load between 20 % and 80 % of
// capacity under Strata (with batch beside it) and times each step to the
// LC cgroup's grown cpuset (polled every 2 ms) and to the LC p99 back in
// its band (two consecutive 250 ms windows within BandFactor × the LC-alone
// p99 at 80 %), at each loop period; resize.shrinkInterval is shortened so
// the pool shrinks back between steps. The overhead benchmark admits N
// running containers (real cgroups, each holding a sleeping process)
// through the plugin and reads the plugin process's CPU time and RSS from
// /proc at each loop period.
//
// The load generator runs in the benchmark's own process, outside the
// scenarios' cgroups; on a small machine it competes for the same CPUs, and
// the report says so. This is the direct-on-cgroups mode: it runs on any
// Linux host as root, with no container runtime installed.
package main
