// Package netqos will shape network bandwidth per group of containers: tc
// qdiscs and classes through github.com/vishvananda/netlink, and eBPF
// classification by cgroup id through github.com/cilium/ebpf (net_cls does
// not exist on cgroup v2, so classification by cgroup id is the portable
// path).
//
// Layering: netqos is a primitive. It knows nothing of pools or NRI.
//
// Status: not implemented yet. This package holds only its documentation
// until the netqos issue reaches it.
package netqos
