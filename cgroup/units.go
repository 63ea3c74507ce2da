package cgroup

import (
	"os"
	"strconv"
)

// Value ranges of the CPU weight files.
const (
	// MinShares and MaxShares bound cgroup v1 cpu.shares; DefaultShares is
	// the kernel's default (one CPU's request, as the kubelet counts).
	MinShares     = 2
	MaxShares     = 262144
	DefaultShares = 1024
	// MinWeight and MaxWeight bound cgroup v2 cpu.weight (default 100).
	MinWeight = 1
	MaxWeight = 10000
	// DefaultCPUPeriodUs is the CFS period the kernel and the kubelet use.
	DefaultCPUPeriodUs = 100000
	// MinCPUQuotaUs is the smallest CFS quota the kernel accepts.
	MinCPUQuotaUs = 1000
)

// MilliCPUToShares converts a CPU request in millicores to cpu.shares as
// the kubelet does (1 CPU = 1024 shares, at least MinShares).
func MilliCPUToShares(milli int64) uint64 {
	return uint64(min(max(milli*DefaultShares/1000, MinShares), MaxShares))
}

// SharesToMilliCPU inverts MilliCPUToShares: the CPU request, in
// millicores, that the kubelet turned into these shares; 0 for the
// minimum, which the kubelet writes for containers without a request.
// Shares above MaxShares (which the kernel would not accept) count as
// MaxShares, so the product cannot overflow.
//
// The kubelet's MilliCPUToShares rounds down (2001m gives 2049 shares), so
// the inverse rounds up: the smallest request that gives these shares,
// which is the only one (the map is one-to-one, 1.024 shares a
// millicore). Rounding down would read 2049 shares as 2000m, a whole-CPU
// request, and give exclusive cores to a 2001m container.
func SharesToMilliCPU(shares uint64) int64 {
	if shares <= MinShares {
		return 0
	}
	return (int64(min(shares, MaxShares))*1000 + DefaultShares - 1) / DefaultShares
}

// Keys of the OCI linux.resources.unified map: cgroup v2 file names, which
// runc writes verbatim. Only for cgroup v2 hosts.
const (
	UnifiedCPUIdle    = "cpu.idle"
	UnifiedMemoryMin  = "memory.min"
	UnifiedMemoryLow  = "memory.low"
	UnifiedMemoryHigh = "memory.high"
)

// UnifiedBytes formats a memory value for the unified map: -1 (no limit)
// is "max".
func UnifiedBytes(bytes int64) string {
	if bytes < 0 {
		return "max"
	}
	return strconv.FormatInt(bytes, 10)
}

// UnifiedBool formats a flag (cpu.idle) for the unified map.
func UnifiedBool(on bool) string {
	if on {
		return "1"
	}
	return "0"
}

// SameShares reports whether cpu.shares got, read back from a cgroup, is
// the setting want on this hierarchy. On v2 several shares values map to
// one cpu.weight, so a value written as shares reads back as another, and
// runtimes disagree on the map: runc 1.3+ and crun 1.23+ use the
// quadratic one of SharesToWeight (1024 → 100), older ones (Debian 12's
// runc 1.1.5) the linear LinearSharesToWeight (1024 → 39). got matches
// want when its weight is what either conversion gives for want, so a
// cgroup the runtime wrote is never taken for drift.
func (h *Hierarchy) SameShares(got, want uint64) bool {
	if h.mode == V2 {
		w := SharesToWeight(got)
		return w == SharesToWeight(want) || w == LinearSharesToWeight(want)
	}
	return got == want
}

// LinearSharesToWeight is the conversion of cpu.shares to a v2 cpu.weight
// that runc used before 1.3 and crun before 1.23: 2..262144 mapped
// linearly onto 1..10000.
func LinearSharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, MinShares), MaxShares)
	return 1 + ((shares-2)*9999)/262142
}

// SameBytes reports whether a memory value read back from a cgroup (got)
// is the one written (want): the kernel rounds limits down to whole pages,
// and -1 is no limit.
func SameBytes(got, want int64) bool {
	if got < 0 || want < 0 {
		return got < 0 && want < 0
	}
	page := int64(os.Getpagesize())
	return got/page == want/page
}

// Core interface files of a cgroup v2 directory, for code that must set a
// hierarchy up before there is one to Detect (a VM's init).
const (
	// ControllersFile lists the controllers a cgroup may enable.
	ControllersFile = "cgroup.controllers"
	// SubtreeControlFile enables controllers for a cgroup's children.
	SubtreeControlFile = "cgroup.subtree_control"
)
