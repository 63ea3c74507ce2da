package isolation

// PressureSource says whose PSI a pool's protection levels read in a
// period.
type PressureSource uint8

const (
	// PressureFromNode: no member's own PSI was measured (pure cgroup v1,
	// a hybrid host whose containers have no cgroup2 directory, a pool
	// without members), so the node's PSI stands in for the pool's.
	PressureFromNode PressureSource = iota
	// PressureFromMembers: the worst of the members' own PSI
	// (ContainerUsage.Pressure).
	PressureFromMembers
	// PressureFromObservation: the caller measured the pool as a whole
	// (Observations.Pools[name].Pressure).
	PressureFromObservation
)

func (s PressureSource) String() string {
	switch s {
	case PressureFromMembers:
		return "members"
	case PressureFromObservation:
		return "pool"
	default:
		return "node"
	}
}

// throttledCPUPSI is the throttled share of CFS periods from which a
// container's CPU PSI no longer counts for its pool: a container stalled
// by its own quota shows CPU pressure that no neighbour causes.
const throttledCPUPSI = 0.05

// addMember folds one member's own PSI into the pool's: each figure is the
// worst member's. A pool's "some" is at least its worst member's (while
// that member stalls, some task of the pool does), and adding members'
// figures would count overlapping stalls twice; the worst member is also
// what protection is for — one latency-critical service that stalls is
// reason enough. A member throttled by its own quota gives no CPU figure.
func (pp *PoolPlan) addMember(u *ContainerUsage) {
	if !u.PressureMeasured {
		return
	}
	pp.PressureMembers++
	if u.Throttled < throttledCPUPSI {
		pp.Pressure.CPU = worst(pp.Pressure.CPU, u.Pressure.CPU)
	}
	pp.Pressure.Memory = worst(pp.Pressure.Memory, u.Pressure.Memory)
}

func worst(a, b PSI) PSI {
	return PSI{Some: max(a.Some, percent(b.Some)), Full: max(a.Full, percent(b.Full))}
}

// percent bounds a PSI figure to 0..100; NaN counts as 0, like any bad
// sample.
func percent(x float64) float64 {
	if !(x > 0) {
		return 0
	}
	return min(x, 100)
}

// resolvePressure decides, once members are folded in, whose PSI each
// pool's protection reads: the caller's pool measurement, else the
// members', else the node's.
func (d *decider) resolvePressure() {
	node := &d.obs.Node
	for k := range d.p.Pools {
		pp := &d.p.Pools[k]
		switch po, ok := d.obs.Pools[pp.Name]; {
		case ok && po.PressureMeasured:
			pp.Pressure, pp.PressureFrom = po.Pressure, PressureFromObservation
		case pp.PressureMembers > 0:
			pp.PressureFrom = PressureFromMembers
		default:
			pp.Pressure, pp.PressureFrom = PoolPressure{CPU: node.CPU, Memory: node.Memory}, PressureFromNode
		}
	}
}
