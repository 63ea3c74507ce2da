// Package nriplugin turns Strata into a containerd NRI plugin: it places
// containers into tiered pools when the runtime creates them and keeps
// adjusting them on a fast feedback loop.
//
// # Events
//
//   - Synchronize (at every connection): rebuild the pool state from the
//     runtime's containers. Containers that carry Strata's annotations
//     (strata.io/assigned-pool, strata.io/exclusive-cpus) get the pool and
//     exclusive CPUs they had, so neither a plugin nor a containerd restart
//     moves anything; containers created while the plugin was away are
//     admitted now and updated in the reply.
//   - CreateContainer: admission through package isolation (annotation,
//     allow-lists, namespace and QoS rules). The adjustment carries the
//     pool annotations and every setting the routing table (below) sends
//     at creation: cpuset cpus/mems, CPU shares/quota/period, memory limit
//     and reservation, on cgroup v2 cpu.idle and memory protection through
//     the unified map, oom_score_adj on containerd ≥ 2.0, the IO priority
//     on containerd ≥ 2.2, and the pool's blockio and RDT classes where
//     the runtime can resolve them (never otherwise: containerd fails the
//     creation on a class it does not know). Containers whose
//     CPUs changed because of the admission are updated right after,
//     unsolicited, so the handler stays short on large nodes.
//     A refusal fails the creation with an error naming the pod, the
//     annotation and the allowed pools.
//   - StartContainer: what the runtime cannot carry at creation is written
//     directly: cpu.idle on cgroup v1, oom_score_adj on containerd 1.7, the
//     IO priority before containerd 2.2 — and after, when the OCI runtime
//     dropped it (runc < 1.2).
//   - UpdateContainer: when the kubelet updates resources, the reply
//     re-asserts Strata's cpuset and CPU settings.
//   - StopContainer / RemoveContainer: exclusive CPUs go back to the lowest
//     pool, whose members are then updated.
//
// # Feedback loop
//
// Every period (configuration "period", default 1 s, down to 100 ms) the
// loop samples every member's cgroup and the node through package pressure,
// asks isolation.Decide for a plan, commits it, and carries it out:
// cpuset/CPU/memory changes through unsolicited UpdateContainers, cpu.idle,
// v1 soft limits and oom_score_adj directly, page-cache reclaim through
// pressure, evictions through an Evictor (dry run by default; CRI
// StopContainer or the Kubernetes eviction API when configured). What did
// not apply (a write refused, an update the runtime failed) is reported
// with State.Unapplied and planned again the next period. It also reads
// back every setting Strata owns and re-applies what changed behind its
// back (containerd drops updates for containers that are still being
// created, and other agents rewrite cgroup files): the CPU placement
// (cpuset.cpus, cpu.shares, cpu.idle) every period, so it is back within 2
// periods; the memory nodes, quota, memory protection, oom_score_adj and
// IO priority of each member every ceil(2 s / period) periods, staggered
// over the members, so back within that and one period. An idle member's
// cpu.shares are the kernel's (it reads 3 and refuses writes), so it is
// created and updated with 0 shares, which runc leaves alone.
//
// # The routing table
//
// apply.go holds one row per isolation setting field. For each runtime
// capability — containerd 1.7, 2.0–2.1, 2.2, 2.3+ (from the NRI version the
// runtime reports, else its version), on cgroup v1 or v2 — a row says how
// the field travels at creation (adjustment, direct write at start, or not
// at all) and on a running container (NRI update, direct write, or not at
// all), with the reason when it cannot be applied (logged at Configure).
// A pool's class in a dimension (blockio, RDT) has a row too, whose
// capability includes whether the dimension runs and whether the runtime
// knows the class; where it cannot travel at creation, the dimension's
// controller writes it after start ("direct write by its dimension").
// Every path builds from it: the adjustment, StartContainer, Synchronize,
// UpdateContainer, the updater, drift repair and the loop's direct writes.
//
// # Pool-level dimensions
//
// A resource set per pool rather than per container (block IO, RDT,
// network) is a dimension. A new dimension is a profile field + a plan
// field + one decide step (package isolation, see its doc) + one
// Controller here, registered through Options.Controllers. The registry
// starts each controller at Run; one whose Start wraps ErrNotSupported is
// disabled with its reason (logged once, shown in /status) and the rest
// runs. Each period the loop calls Observe (per-pool measurements into
// Observations.Pools) before Decide and ApplyPools with the committed plan
// after it; a container is announced with ContainerAdmitted once it
// started (or at Synchronize when it runs) and ContainerRemoved when it
// stops. Handlers only queue those announcements; controllers are called
// one at a time, outside the plugin's lock, and a failing or panicking
// controller is logged and stops neither the others nor the loop. A
// per-container setting of a dimension (a blockio or RDT class) is a
// routing row in the applier instead.
//
// # Concurrency
//
// One mutex guards the controller state. Handlers hold it briefly and
// never call the runtime; the loop decides under it, releases it, and
// hands updates to a goroutine that calls UpdateContainers holding no lock.
// The runtime serialises NRI traffic, so calling UpdateContainers from a
// handler, or while holding a lock a handler waits for, deadlocks several
// containerd releases (containerd#13733).
//
// # Resilience
//
// A lost connection (containerd restart) ends the stub; Run reconnects
// with a fresh stub and re-synchronises. A plugin restart rebuilds the
// state from the containers' annotations at Synchronize.
//
// # Observability and security
//
// Handler serves /metrics (Prometheus), /healthz and /status; the strata
// binary binds it to 127.0.0.1:9797 or a unix socket (mode 0600) by
// default. A pod cannot promote itself: pools admit by allow-list
// (namespaces, labels) whatever the annotation says.
//
// Layering: nri-plugin sits on top. It wires configuration, the pool
// controller (package isolation) and the primitives to containerd through
// github.com/containerd/nri. Nothing imports it.
package nriplugin
