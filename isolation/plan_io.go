package isolation

// IOPlan is a pool's block IO settings this period, applied to every
// member's cgroup.
type IOPlan struct {
	// Weight: 0 leaves the members' weight to the runtime.
	Weight int
	// IOPriority: the members' IO priority class, the profile's or, while
	// the protection is engaged, its own ("" leaves it). The members'
	// changes carry it (Settings.IOPriority), applied per container.
	IOPriority string
	// Limits per device, already resolved from percentages where a
	// capacity was measured.
	Limits []IOPlanLimit
	// Throttled: the protection action holds this pool back; Reason says
	// why (or why it is being lifted). Calm counts calm periods so far, of
	// Hold needed to lift (Protect's calmPeriods, doubled each time
	// pressure returned right after a lift).
	Throttled bool
	Reason    string
	Calm      int
	Hold      int
	since     int // periods since the last lift, carried to commit
}

// IOPlanLimit is one device's per-member limit (0: none), the device as the
// profile names it.
type IOPlanLimit struct {
	Device                                 string
	ReadBPS, WriteBPS, ReadIOPS, WriteIOPS uint64
}

// IOObservation is a pool's block IO over the last period.
type IOObservation struct {
	// Measured: the members' IO files were read.
	Measured bool
	// PSISome and PSIFull: the highest IO PSI avg10 (percent) among the
	// pool's members.
	PSISome, PSIFull float64
	// ReadBPS and WriteBPS: the members' throughput together.
	ReadBPS, WriteBPS float64
	// Capacity: per device (as profiles name it) the highest read and
	// write bandwidth seen, the base of percentage limits.
	Capacity map[string]IOCapacity
}

// IOCapacity is a device's measured bandwidth, bytes per second.
type IOCapacity struct {
	ReadBPS, WriteBPS float64
}

// IOPriorityNone is Settings.IOPriority for IO priority class none, the
// kernel's default (derived from the CPU nice value), which Strata writes
// to restore a member its IO protection had switched.
const IOPriorityNone = "none"
