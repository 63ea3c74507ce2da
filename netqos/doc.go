// Package netqos shapes network bandwidth per group of containers and per
// pod, on cgroup v1, hybrid and v2 hosts alike: tc qdiscs and classes
// through github.com/vishvananda/netlink, and classification by an eBPF
// program through github.com/cilium/ebpf.
//
// # Model
//
// A Tree is an htb qdisc at the root of one interface (the node's uplink):
// a root class at the link's rate and one leaf class per group of traffic
// (a pool) with a guaranteed rate, a ceiling it may borrow up to, and a
// priority for borrowing; one of the leaves is the default class for
// unclassified traffic. SetClass changes a class in place (htb's class
// change), so lowering batch's ceiling never disturbs the other classes or
// drops what is queued.
//
// A Classifier puts each packet into its class. net_cls, which colocation
// agents classify with, does not exist on cgroup v2; the portable key is
// the cgroup id. The program, written with cilium/ebpf's asm package so
// builds need no clang, runs at tc egress and sets skb->priority to a
// class handle found in BPF hash maps; htb takes a packet whose priority
// names one of its leaf classes straight into it, so the qdisc needs no
// filters of its own. It looks up, in order:
//
//  1. the sending socket's cgroup id (bpf_skb_cgroup_id), then its
//     ancestors deepest first (bpf_skb_ancestor_cgroup_id, down to level
//     1, MaxAncestorLevel at most), so one entry for a pod's cgroup covers
//     all its containers and a container's own entry overrides it. This
//     serves host-network containers and host processes, whose sockets
//     are still attached to the packet at the uplink;
//  2. the IPv4 or IPv6 source address, for pods in their own network
//     namespace: their packets lose the socket when they leave the pod's
//     veth, so the pod's IPs (which NRI passes with the pod sandbox) are
//     the key.
//
// A packet that matches nothing keeps its priority and falls to the
// default class. Frames are assumed to be Ethernet (veth, physical NICs).
//
// Cgroup ids come from the cgroup layer (cgroup.Cgroup.ID); they need a
// cgroup2 mount, which hybrid hosts have as "unified" (runc joins it), and
// which the kernel gives every socket.
//
// # Attachment, restart and cleanup
//
// The classifier attaches with TCX (Linux 6.6+) where the kernel has it,
// or a clsact qdisc and a direct-action cls_bpf filter otherwise
// (AttachAuto; AttachTCX and AttachNetlink force one). TCX links are bound
// to the creating process: a crashed agent's classifier goes with it. A
// clsact filter stays. Either way a new Tree finds its predecessor by the
// program name ProgramName and replaces it; an htb of the same handle and
// default class is kept and its classes updated (traffic stays shaped
// across a restart), classes the new configuration lacks are removed. So
// running setup twice leaves exactly one set. Close removes the
// classifier, its maps and the qdisc.
//
// Interfaces in other network namespaces are reached by path
// (TreeConfig.Netns); TCX attach and BPF queries resolve interface indexes
// in the calling thread's namespace, so netqos runs them on a locked
// thread inside the target namespace.
//
// # Per-pod limits
//
// SetPodLimits shapes one pod on its host-side veth, as the CNI bandwidth
// plugin does: its ingress with TBF at the veth's root, its egress with TBF
// on an ifb device the veth's ingress redirects to (u32 match-all with a
// mirred action). PodLimitsFromAnnotations reads the Kubernetes
// annotations kubernetes.io/egress-bandwidth and
// kubernetes.io/ingress-bandwidth (resource.Quantity syntax, bounded to
// 1k..1P bit/s as Kubernetes bounds them). Unlike the CNI plugin, calling
// SetPodLimits again changes the limits of a running pod.
//
// # Statistics
//
// Tree.Stats reads every class's bytes, packets, drops, overlimits and
// backlog. It keeps its own netlink socket and buffer and parses the class
// dump in place, so a controller polling it each period allocates nothing
// (vishvananda/netlink's ClassList builds objects per class).
//
// # Kernel features
//
// A missing feature is an error wrapping ErrNotSupported: ErrNoBPF,
// ErrNoClsact, ErrNoHTB, ErrNoTBF, ErrNoIFB; a missing cgroup2 mount is
// cgroup.ErrNotSupported from Cgroup.ID. Bad input (zero or negative
// rates, a ceiling below the rate, malformed annotations) wraps ErrInvalid
// and names the value; NewTree validates everything before it touches the
// interface and removes what it installed if a later step fails.
//
// # Earliest departure time pacing
//
// A Pacer limits single sources (by source address) on an interface the
// way Cilium's bandwidth manager limits pods: its eBPF program
// (PacerProgramName, attached like the classifier, next to it) stamps
// skb->tstamp with the time the source's rate lets each packet leave, and
// an fq qdisc at the interface's root holds the packet until then; past a
// horizon (DefaultHorizon) it drops, so TCP backs off. It needs sch_fq:
// without it NewPacer returns ErrNoFQ (wrapping ErrNotSupported) and
// installs nothing. The development hosts have no sch_fq, the cgroup v2 VM
// guest (Debian's 6.1 kernel) has, and the Pacer's kernel test runs there.
// fq must be the root qdisc, so a Pacer and a Tree do not share an
// interface: the NRI plugin's net dimension keeps the htb tree on the
// uplink and paces a pod's egress on the pod's own end of its veth
// (InterfaceWithAddr finds it inside the pod's namespace), falling back to
// SetPodLimits' tbf where there is no sch_fq.
//
// Layering: netqos is a primitive. It knows nothing of pools or NRI.
package netqos
