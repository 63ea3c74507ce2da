// Package rdt assigns cache ways (L3 and L2 CAT, with CDP) and memory
// bandwidth (MBA) to groups of tasks through the kernel's resctrl
// filesystem, and reads their cache occupancy and memory bandwidth (CMT,
// MBM). It is a primitive: it knows nothing of pools, of the controller in
// package isolation, or of NRI, and imports nothing above it.
//
// # Detection
//
// Open reads a resctrl root (a parameter: "/sys/fs/resctrl" in
// production, a fixture tree in tests) and the procfs root next to it.
// When the host has no resctrl it returns a *NotSupportedError
// (errors.Is ErrNotSupported) that says why: resctrl mounted elsewhere;
// not mounted though /proc/filesystems has it (with the mount command); no
// resctrl in the kernel, with the RDT flags the CPU does or does not
// advertise in /proc/cpuinfo (on an AMD VM like the development machine:
// none). Info then describes what the host offers: per cache resource
// (info/L3, info/L3CODE and info/L3DATA under CDP, info/L2) its ways
// (cbm_mask), min_cbm_bits, shareable_bits, sparse_masks, num_closids and
// cache ids; memory bandwidth (info/MB: bandwidth_gran, min_bandwidth,
// delay_linear) in one of three units — Intel percent, MB/s under the
// mba_MBps mount option, AMD absolute units of 1/8 GB/s where the root
// group's value (2048) means unthrottled; and monitoring (info/L3_MON:
// mon_features, num_rmids). Cache ids come from the root group's schemata,
// so AMD's non-contiguous ids (0-7 and 16-23 on a two-socket EPYC) are
// kept as they are.
//
// # Classes
//
// A class is a control group named Prefix+name ("strata-batch"); groups
// without the prefix (other agents', an operator's) are never changed but
// are counted and checked against. Class "" is the default group. Apply
// sets several classes at once and is the only writer: it validates every
// schemata against the hardware (known resource and cache id, mask within
// cbm_mask, at least min_cbm_bits ways, contiguous unless sparse_masks is
// 1, bandwidth in [min_bandwidth, max] on the bandwidth_gran step),
// checks exclusive classes against every other group's ways in the state
// it is about to make (the default group's and foreign groups' included,
// and never the hardware's shareable_bits), and checks the budgets: the
// kernel has num_closids control groups including the default one (the
// smallest num_closids of the allocation resources) and num_rmids
// monitoring IDs, one per control and per monitoring group. Exceeding a
// budget is a *BudgetError before any mkdir, not the kernel's ENOSPC.
// Errors about values are *InvalidError naming class, resource, cache id
// and value.
//
// Writes then go in an order the kernel accepts while exclusive groups
// exist: groups that stop being exclusive first, then groups that only
// give ways or bandwidth up, then the others, then new groups, and
// exclusive mode last. Each schemata is one write, which the kernel applies
// whole or not at all. If the kernel still refuses one (its reason, from
// info/last_cmd_status, is in the error), everything already written is
// restored and new group directories are removed: nothing is left
// half-written.
//
// # Tasks and monitoring
//
// Class.AddTasks writes PIDs one per write to the group's tasks file; a
// task that exits meanwhile (ESRCH) is reported, not an error. To move a
// container, pass every PID of its cgroup (read through package cgroup).
// TaskGroup and ClassOf read a task's group back, from
// /proc/PID/cpu_resctrl_groups where the kernel has it, else from the
// groups' tasks files. Class.CreateMonGroup makes a monitoring group
// (mon_groups/NAME, one RMID) for one container's tasks; MonData reads
// llc_occupancy, mbm_total_bytes and mbm_local_bytes per L3 cache id
// ("Unavailable" is reported in Counters.Missing), and Counters.Bandwidth
// turns two readings into bytes per second. Deleting a monitoring group
// releases its RMID; deleting a class releases its CLOSID and moves its
// tasks back to the default group.
//
// # What comes from github.com/intel/goresctrl, and why not more
//
// goresctrl's pkg/rdt is the reference Go implementation, and Strata's
// users may know its configuration. ClassSpec therefore takes goresctrl's
// own exported types — rdt.CatConfig (per cache id list or "all";
// unified, code and data), rdt.CacheProportion ("50%", "50-60%", way
// numbers "0-5", hex "0xff0") and rdt.MbaConfig/MbProportion ("80%",
// "1000MBps") — so a goresctrl class section unmarshals into it, and
// Resolve turns percentages into ways with goresctrl's arithmetic.
//
// The layer that touches resctrl is this package's own, as in koordinator
// and katalyst, because goresctrl's cannot be the code the tests run:
// pkg/rdt finds resctrl only by scanning /proc/mounts (the path is an
// unexported variable), keeps its state in package globals, and resolves
// its configuration against that global state (the parsing of shares into
// masks is unexported). It also does not check num_closids (a class too
// many fails as mkdir's ENOSPC), ignores configured cache ids the host
// lacks instead of refusing them, and allows only contiguous masks. Here
// the root is a parameter, state lives in a Resctrl value, and the same
// code runs against fixture trees (package rdttest: Intel CAT+MBA, Intel
// CDP, AMD EPYC with absolute MBA, monitoring-only, sparse masks) and
// /sys/fs/resctrl.
//
// # Fixtures versus the kernel
//
// On a real kernel a group's schemata file lists every resource and cache
// id when read, whatever was written; on a fixture it holds what was last
// written, which is what the kernel was asked to accept — tests compare it
// byte for byte. mkdir on resctrl fills a group with its files; on a
// fixture it makes an empty directory, so this package opens control files
// with O_CREATE (harmless on resctrl, where they exist) and removes a
// group with rmdir, falling back to removing a fixture directory's
// contents.
package rdt
