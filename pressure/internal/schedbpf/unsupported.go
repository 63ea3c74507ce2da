//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package schedbpf

import (
	"errors"
	"structs"

	"github.com/cilium/ebpf"
)

// SchedCgStats mirrors struct cg_stats (see sched_bpfel.go).
type SchedCgStats struct {
	_       structs.HostLayout
	CpuNs   uint64
	Wakeups uint64
	DelayNs uint64
	Delays  uint64
	Hist    [21]uint64
}

// SchedOnCpu mirrors struct on_cpu.
type SchedOnCpu struct {
	_        structs.HostLayout
	SinceNs  uint64
	CgroupId uint64
}

// Map and program names, as in sched_bpfel.go.
const (
	SchedMapOncpu            = "oncpu"
	SchedMapQueued           = "queued"
	SchedMapStats            = "stats"
	SchedProgStrataSwitch    = "strata_switch"
	SchedProgStrataWakeup    = "strata_wakeup"
	SchedProgStrataWakeupNew = "strata_wakeup_new"
)

// ErrBigEndian: only a little-endian object is generated.
var ErrBigEndian = errors.New("schedbpf: no BPF object for big-endian architectures")

// LoadSched fails on big-endian architectures.
func LoadSched() (*ebpf.CollectionSpec, error) { return nil, ErrBigEndian }
