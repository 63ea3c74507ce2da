// Package iolimit sets block IO throttling and proportional weights for
// cgroups, on cgroup v1 (blkio.throttle.*, blkio.bfq.weight) and v2 (io.max,
// io.bfq.weight, io.weight), reads them back, and samples each cgroup's IO
// statistics and IO pressure without allocating. It knows nothing of pools
// or NRI; every file name goes through package cgroup, and the sysfs,
// procfs and /dev roots are parameters (Options).
//
// # Model
//
// Settings are per cgroup: a default weight, per-device weights and
// per-device limits (read and write bytes and IOs per second; zero is no
// limit). Limiter.Apply validates them against the kernel's ranges and
// sysfs first and writes nothing if anything is wrong; then it makes the
// cgroup match them (devices not listed lose their limits and weight
// overrides), restoring the earlier values if a write fails. Limiter.Read
// returns what the cgroup's files say.
//
// Devices are whole disks: the kernel refuses a partition's number in
// blkio and io files. A Resolver finds them from a path (the filesystem it
// lives on, via stat and mountinfo; a tmpfs path is ErrNoBlockDevice), a
// partition (to its disk, via sysfs), a name, a major:minor validated in
// /sys/dev/block, or goresctrl-style patterns ("/dev/sd[a-z]").
//
// # When a weight takes effect
//
// Throttling works under every IO scheduler. Weights do not:
//
//	            v1                                   v2
//	bfq         blkio.bfq.weight (needs bfq)         io.bfq.weight (needs bfq)
//	other       blkio.weight: cfq only, absent       io.weight: needs iocost enabled
//	            since Linux 5.0                      for the device (root io.cost.qos)
//
// Apply writes the default weight to every knob the cgroup has, so it acts
// under whichever the device uses, and Limiter.WeightEffect says for a
// device which knob acts, or why none does (ErrWeightIneffective, naming the
// scheduler and how to select bfq). Weights use the OCI and goresctrl scale
// 10..1000; io.weight gets them converted as runc converts them.
//
// cgroup v1 throttles only IO the kernel attributes to the cgroup: direct
// IO and reads. Buffered writes are written back by kernel threads outside
// the writer's cgroup, so v1 limits do not hold them back; v2 attributes
// writeback to the page's owner and throttles it. A write limit (io.max
// wbps) on v2 is therefore what keeps a batch cgroup's buffered writes from
// delaying another cgroup's fsyncs on the same filesystem
// (TestKernelFsyncLatencyV2) — as long as the two write separate files: an
// fdatasync of a raw block device or of a shared file also flushes the
// other writer's dirty pages, at its limited rate.
//
// # Classes
//
// Config is github.com/intel/goresctrl's pkg/blockio configuration type,
// so one file of named classes serves Strata and a runtime that resolves
// blockio classes with goresctrl (containerd's blockio_config_file); a
// class name passed at creation through NRI's blockio class field means the
// same settings there. Limiter.Classes resolves classes to Settings with
// goresctrl's semantics. We do not call goresctrl's blockio.SetConfig: it
// keeps classes in package-global state, scans the host's real /sys and /dev
// (no root parameter, so it cannot be tested against fixture trees), and
// only logs bad classes; it also produces OCI parameters, not cgroup writes,
// while a running container's settings can only change by writing its
// cgroup (NRI cannot update a blockio class).
//
// # Statistics and pressure
//
// OpenStats keeps a cgroup's statistics files (v1
// blkio.throttle.io_service_bytes and io_serviced, v2 io.stat) and its
// io.pressure open and Stats.Read re-reads them into a reused Reading with
// no allocation (see BenchmarkStatsRead).
package iolimit
