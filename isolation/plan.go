package isolation

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/utils/cpuset"
)

// Observations are one period's measurements, plain data filled by the
// plugin (from package pressure). Maps may be reused between periods.
type Observations struct {
	// Containers by container ID. A container without an entry counts as
	// idle this period.
	Containers map[string]ContainerUsage
	// Pools by pool name: per-pool measurements (pressure of the pool's
	// members, and what pool-level dimensions measure). A pool without
	// measured pressure here uses the worst of its members' own PSI
	// (ContainerUsage.Pressure), and without that the node's.
	Pools map[string]PoolObservation
	// Node-wide PSI and memory.
	Node NodePressure
}

// ContainerUsage is one container's measurements over the last period.
type ContainerUsage struct {
	CPU float64 // usage rate, cores
	// Throttled: fraction of CFS periods in which the container was
	// throttled (0..1).
	Throttled   float64
	MemoryBytes int64 // memory in use, page cache included
	FileBytes   int64 // page cache part of MemoryBytes
	// Run-queue delay this period: how long the container's tasks waited
	// for a CPU once runnable (mean and percentiles); 0 when not measured
	// (no scheduler probe) or no task waited.
	RunQueueMean, RunQueueP50, RunQueueP99 time.Duration
	// Pressure is the container's own cpu and memory PSI avg10 (its
	// cgroup's pressure files), valid when PressureMeasured. A pool's
	// protection reads the worst of its members' (see pressure.go).
	Pressure         PoolPressure
	PressureMeasured bool
}

// PSI is one resource's pressure stall avg10, in percent.
type PSI struct {
	Some float64
	Full float64
}

// PoolPressure is cpu and memory PSI: of a pool's members, or of one
// container.
type PoolPressure struct {
	CPU    PSI
	Memory PSI
}

// PoolObservation is one pool's measurements over the last period. A
// pool-level dimension that measures per pool (see dimensions.go) adds one
// field of its own type here.
type PoolObservation struct {
	// Pressure is the PSI of the pool's members as the caller measured
	// it, only when PressureMeasured; it takes precedence over the
	// members' own PSI in Observations.Containers (see pressure.go).
	Pressure         PoolPressure
	PressureMeasured bool
	RDT              RDTObservation
	IO               IOObservation
	Net              NetObservation
}

// NodePressure is node-wide pressure and memory.
type NodePressure struct {
	CPU         PSI
	Memory      PSI
	MemoryTotal int64 // bytes
	MemoryUsed  int64 // bytes, page cache included
}

// ActionKind is a protection action. The order of the constants is the
// escalation order that protection levels must follow.
type ActionKind string

// Protection actions, in escalation order, and the node switch's suspend.
const (
	// ActionRelease: lower online pools give back idle CPUs at once,
	// without waiting for shrink interval or step limits.
	ActionRelease ActionKind = "release"
	// ActionPreempt: the pool grows without step limit and may take CPUs
	// lower online pools are using, down to their floors.
	ActionPreempt ActionKind = "preempt"
	// ActionCPUDowngrade: members of lower pools get minimum CPU weight and
	// idle scheduling.
	ActionCPUDowngrade ActionKind = "cpuDowngrade"
	// ActionReclaimPageCache: reclaim page cache of members of reclaimable
	// pools, lowest pool and largest cache first.
	ActionReclaimPageCache ActionKind = "reclaimPageCache"
	// ActionEvict: evict the lowest-priority member (lowest pool, most
	// memory), at most one per protection.evictInterval.
	ActionEvict ActionKind = "evict"
	// ActionSuspend: colocation is off; the batch member is suspended
	// (throttled to 1 % of a CPU with idle scheduling).
	ActionSuspend ActionKind = "suspend"
)

var actionOrder = []ActionKind{ActionRelease, ActionPreempt, ActionCPUDowngrade, ActionReclaimPageCache, ActionEvict}

func (a ActionKind) rank() int {
	for i, k := range actionOrder {
		if k == a {
			return i
		}
	}
	return -1
}

func actionList() string {
	s := make([]string, len(actionOrder))
	for i, a := range actionOrder {
		s[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(s, " → ")
}

// Plan is what Decide wants done this period. Applying it is the plugin's
// job; State.Commit records that it was applied.
type Plan struct {
	Time time.Time
	// Pools in priority order (highest first).
	Pools []PoolPlan
	// Changes lists containers whose CPUs or settings must change.
	Changes []ContainerChange
	// Actions lists protection and node-switch actions, each with a Reason.
	Actions []Action
	// Batch is the batch capacity view.
	Batch BatchCapacity
	// Warnings: things the controller could not do (e.g. a topology call
	// failed); the rest of the plan is still valid.
	Warnings []string

	version uint64 // State version the plan was made from
	scratch planScratch
}

// PoolPlan is one pool's decision.
type PoolPlan struct {
	Name     string
	Priority int
	// CPUs is every CPU of the pool: Shared ∪ Exclusive.
	CPUs      cpuset.CPUSet
	Shared    cpuset.CPUSet
	Exclusive cpuset.CPUSet
	Mems      cpuset.CPUSet
	// Size is len(Shared) after the plan; PrevSize before.
	Size, PrevSize int
	// Members: containers in the pool; SharedMembers: those without
	// exclusive CPUs.
	Members, SharedMembers int
	// Usage: CPU usage of shared members, cores; ExclusiveUsage: of the
	// members with exclusive CPUs.
	Usage, ExclusiveUsage float64
	// Request: CPU requests of shared members, cores.
	Request float64
	// Load = Usage / PrevSize: the load measured on the CPUs the members
	// ran on. The band applies to it.
	Load float64
	// Predicted is the predictor's peak of Usage (0 when disabled).
	Predicted float64
	// Target is the size the control law wanted (before flows).
	Target int
	// RCF = Size / Request (0 without requests).
	RCF float64
	// RunQueueP50, RunQueueP99: the worst shared member's run-queue delay
	// percentiles this period (0 when not measured).
	RunQueueP50, RunQueueP99 time.Duration
	// Waiting names the signal and threshold when resize.waiting applied
	// this period (the load near its band's top, the members waiting for
	// a CPU: the pool was sized as if above its band); empty otherwise.
	Waiting string
	// Pressure is the PSI the protection levels read for the pool this
	// period, PressureFrom whose it is, and PressureMembers how many of
	// its members had their own PSI measured.
	Pressure        PoolPressure
	PressureFrom    PressureSource
	PressureMembers int
	// Level is the protection level index (-1: none) and its name.
	Level     int
	LevelName string
	// Resized: Size != PrevSize. Reason explains the change or why the
	// pool could not reach its target.
	Resized bool
	Reason  string
	// levelMet: the level's thresholds were met this period (not just
	// held by cooldown).
	levelMet bool

	// Pool-level dimensions (see dimensions.go) add one field each below,
	// of their own type: this pool's section of the dimension's plan.
	RDT RDTPlan
	IO  IOPlan
	Net NetPlan
}

// InBand reports whether the load was inside the band this period.
func (p *PoolPlan) InBand(b Band) bool { return p.Load >= b.Low && p.Load <= b.High }

// Fields says which parts of a ContainerChange to apply.
type Fields uint32

// Fields of a ContainerChange.
const (
	FieldCPUs Fields = 1 << iota
	FieldMems
	FieldCPUShares
	FieldCPUQuota // quota and period
	FieldCPUIdle
	FieldMemoryLimit
	FieldMemoryMin
	FieldMemoryLow
	FieldMemoryHigh
	FieldMemorySoftLimit
	FieldOOMScoreAdj
	FieldIOPriority

	// FieldsAll is every field.
	FieldsAll = FieldIOPriority<<1 - 1
)

// Settings are a container's complete settings (not a delta).
type Settings struct {
	CPUShares uint64
	CPUQuota  int64 // µs per period, -1: unlimited
	CPUPeriod uint64
	CPUIdle   bool
	// Memory in bytes. MemoryLimit, MemoryHigh, MemorySoftLimit: -1 is
	// unlimited. MemoryMin, MemoryLow: 0 is no protection.
	MemoryLimit     int64
	MemoryMin       int64
	MemoryLow       int64
	MemoryHigh      int64
	MemorySoftLimit int64
	OOMScoreAdj     int
	// IOPriority is the IO scheduling class of the container's threads,
	// "idle" or "best-effort" (the pool profile's io.ioPriority, or its
	// IO protection's while engaged), IOPriorityNone (class none, the
	// kernel's default: a pool whose protection switches the class when it
	// is not engaged); "": the runtime's, not written.
	IOPriority string
}

// Diff returns the fields whose values differ.
func (s Settings) Diff(o Settings) Fields {
	var f Fields
	if s.CPUShares != o.CPUShares {
		f |= FieldCPUShares
	}
	if s.CPUQuota != o.CPUQuota || s.CPUPeriod != o.CPUPeriod {
		f |= FieldCPUQuota
	}
	if s.CPUIdle != o.CPUIdle {
		f |= FieldCPUIdle
	}
	if s.MemoryLimit != o.MemoryLimit {
		f |= FieldMemoryLimit
	}
	if s.MemoryMin != o.MemoryMin {
		f |= FieldMemoryMin
	}
	if s.MemoryLow != o.MemoryLow {
		f |= FieldMemoryLow
	}
	if s.MemoryHigh != o.MemoryHigh {
		f |= FieldMemoryHigh
	}
	if s.MemorySoftLimit != o.MemorySoftLimit {
		f |= FieldMemorySoftLimit
	}
	if s.OOMScoreAdj != o.OOMScoreAdj {
		f |= FieldOOMScoreAdj
	}
	if s.IOPriority != o.IOPriority {
		f |= FieldIOPriority
	}
	return f
}

// ContainerChange: apply Fields of CPUs, Mems and Settings to container ID.
type ContainerChange struct {
	ID       string
	Pool     string
	CPUs     cpuset.CPUSet
	Mems     cpuset.CPUSet
	Settings Settings
	Fields   Fields
	Reason   string
}

// Action is a protection or node-switch action.
type Action struct {
	Kind ActionKind
	// Pool whose protection level (or the node switch) triggered it.
	Pool  string
	Level string
	// Container targeted (reclaim, evict, suspend, downgrade); empty for
	// pool-wide actions (release, preempt, cpuDowngrade as a mode).
	Container string
	// TargetPool holds Container.
	TargetPool string
	// Bytes of page cache to reclaim.
	Bytes  int64
	Reason string
}

// BatchCapacity is the batch capacity view, following vivo:
//
//	CPUs = NodeCPUs − max(OnlineUsage, OnlinePredicted) − Watermark
//
// clamped at 0, and 0 when colocation is off. It is what batch work may
// use on this node; the batch pool's cpuset (BatchPoolCPUs) is what batch
// can run on.
type BatchCapacity struct {
	NodeCPUs        float64
	OnlineUsage     float64
	OnlinePredicted float64
	Watermark       float64
	// WatermarkFrom names the configuration that set the watermark.
	WatermarkFrom string
	CPUs          float64
	BatchPoolCPUs int
	Colocation    bool
}

// String explains the figure with its terms.
func (b BatchCapacity) String() string {
	if !b.Colocation {
		return "batch capacity 0: colocation disabled"
	}
	return fmt.Sprintf("batch capacity %.2f = %.0f node CPUs − max(online usage %.2f, predicted %.2f) − watermark %.2f (%s); batch pool holds %d CPUs",
		b.CPUs, b.NodeCPUs, b.OnlineUsage, b.OnlinePredicted, b.Watermark, b.WatermarkFrom, b.BatchPoolCPUs)
}

// String summarises the plan in one line per pool plus the batch view, for
// logs: "online 24→22 CPUs load 0.41 [level elevated]: <reason>".
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan at %s: %d container changes, %d actions\n", p.Time.Format(time.RFC3339), len(p.Changes), len(p.Actions))
	for i := range p.Pools {
		pp := &p.Pools[i]
		fmt.Fprintf(&b, "  %s %d→%d CPUs (+%d exclusive) load %.2f", pp.Name, pp.PrevSize, pp.Size, pp.Exclusive.Size(), pp.Load)
		if pp.Level >= 0 {
			fmt.Fprintf(&b, " [level %s]", pp.LevelName)
		}
		if pp.Reason != "" {
			b.WriteString(": ")
			b.WriteString(pp.Reason)
		}
		b.WriteByte('\n')
	}
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "  %s %s: %s\n", a.Kind, a.Container, a.Reason)
	}
	b.WriteString("  ")
	b.WriteString(p.Batch.String())
	return b.String()
}
