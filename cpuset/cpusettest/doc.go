// Package cpusettest writes sysfs trees that mirror real machines' CPU
// topologies, so code built on package cpuset can be tested on a 4-socket
// server's layout while running on a laptop.
//
// A Shape describes a machine the way its vendor does: packages, dies, NUMA
// nodes per die, L3 groups per node, cores per L3, threads per core.
// WriteSysfs lays out the files Linux shows for it under
// devices/system/cpu, devices/system/node and, on hybrid parts,
// devices/cpu_core and devices/cpu_atom (or, on arm64, through
// cpuN/cpu_capacity). CPU numbering follows the kernel's
// x86 enumeration: on servers every core's first thread is numbered before
// any second thread (siblings are N and N+cores), on desktops siblings are
// adjacent. Offline CPUs keep their cpuN directory with online=0 and lose
// topology/ and cache/, as the kernel's hotplug callbacks remove them.
package cpusettest
