package sim

import (
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/isolation"
)

// IOModel is the disk antagonist model behind DiskAntagonistScenario,
// stated so its results can be judged:
//
//   - One device, Device, serves CapacityBPS bytes per second of reads.
//   - While the antagonist runs (from Start, for Length) batch streams
//     reads and takes all the device allows it: min(CapacityBPS, its
//     planned read limit). Otherwise it reads IdleShare of capacity.
//   - The online pool's members stall on IO in proportion to the
//     bandwidth batch takes: their IO PSI "some" avg10 is StallAtPeak ×
//     batch bandwidth ÷ CapacityBPS (the avg10 smoothing is left out, so
//     reactions show at their fastest).
//   - The plugin measures the device's capacity as CapacityBPS (the
//     highest throughput seen), the base of percentage limits.
//   - While every batch member's IO priority class is idle (the members'
//     settings as the plan's changes left them), bfq serves batch only
//     between the online reads: batch takes IdleClassShare of capacity
//     and the online pool stalls IdleClassStall times what that bandwidth
//     would cost it in the best-effort class. Measured outside containerd
//     (docs/iolimit.md): batch kept 30–65 % and the online p99 fell from
//     7–15 × its value alone to 0.56–3.9 ×.
type IOModel struct {
	Device         string
	CapacityBPS    float64
	Start, Length  time.Duration
	IdleShare      float64
	StallAtPeak    float64 // percent
	IdleClassShare float64
	IdleClassStall float64
}

// IOSample is one period of an IO run.
type IOSample struct {
	T time.Duration
	// OnlinePSI is the online pool's IO PSI some this period.
	OnlinePSI float64
	// BatchBPS is what batch read; BatchLimit its planned read limit
	// (0: none); Throttled whether the protection held it back.
	BatchBPS   float64
	BatchLimit uint64
	Throttled  bool
	Antagonist bool
	// BatchIdle: every batch member was in the idle IO class this period
	// (the IO priority the plan's changes gave them).
	BatchIdle bool
}

// DiskAntagonistScenario: an online service shares a 400 MiB/s disk with a
// batch job. Batch has the IO protection: while the online pool's IO PSI
// some is ≥ 20 % its reads are held to 10 % of the disk's capacity, lifted
// after 5 periods below 10 %. Between 60 s and 360 s batch streams reads.
// Ten minutes of one-second periods.
func DiskAntagonistScenario(topo *strcpuset.Topology) (Scenario, IOModel) {
	m := IOModel{Device: "/dev/vda", CapacityBPS: 400 << 20, Start: 60 * time.Second, Length: 300 * time.Second,
		IdleShare: 0.02, StallAtPeak: 60}
	cfg := baseConfig()
	for i := range cfg.Pools {
		if cfg.Pools[i].Name == isolation.PoolBatch {
			cfg.Pools[i].Profile.IO = isolation.IOProfile{Protect: &isolation.IOProtect{
				PSISome: 20, ReleasePSISome: 10, CalmPeriods: 5, Device: m.Device, ReadPercent: 10}}
		}
	}
	m.IdleClassShare, m.IdleClassStall = 0.4, 0.25
	s := Scenario{
		Name: "disk-antagonist", Config: cfg, Topology: topo,
		Start: Day0.Add(12 * time.Hour), Duration: 10 * time.Minute, Seed: 1,
		Workloads: []Workload{
			{Name: "web", Namespace: "web", Pool: isolation.PoolOnline, Replicas: 2, CPURequestMilli: 2000,
				MemoryRequest: gib, MemoryLimit: 2 * gib, CPU: Constant(0.8)},
			{Name: "scan", Namespace: "jobs", Pool: isolation.PoolBatch, Replicas: 2},
		},
	}
	return s, m
}

// DiskAntagonistIdleScenario is DiskAntagonistScenario with the IO
// protection switching batch's members to the idle IO class instead of
// limiting their bandwidth.
func DiskAntagonistIdleScenario(topo *strcpuset.Topology) (Scenario, IOModel) {
	s, m := DiskAntagonistScenario(topo)
	s.Name = "disk-antagonist-idle"
	for i := range s.Config.Pools {
		if s.Config.Pools[i].Name == isolation.PoolBatch {
			s.Config.Pools[i].Profile.IO.Protect = &isolation.IOProtect{PSISome: 20, ReleasePSISome: 10, CalmPeriods: 5, IOPriority: "idle"}
		}
	}
	return s, m
}

// RunIO runs s with m's measurements fed to the IO dimension and returns
// the run's result with one IOSample per period.
func RunIO(s Scenario, m IOModel) (*Result, []IOSample, error) {
	capacity := map[string]isolation.IOCapacity{m.Device: {ReadBPS: m.CapacityBPS, WriteBPS: m.CapacityBPS}}
	var cur IOSample
	class := map[string]string{} // batch members' IO priority, as last changed
	measure := func(t time.Duration, _ *IOSample, last *isolation.Plan, obs *isolation.Observations) {
		cur = IOSample{T: t, Antagonist: t >= m.Start && t < m.Start+m.Length}
		for _, ch := range last.Changes {
			if ch.Pool == isolation.PoolBatch {
				class[ch.ID] = ch.Settings.IOPriority
			}
		}
		cur.BatchIdle = len(class) > 0
		for _, c := range class {
			cur.BatchIdle = cur.BatchIdle && c == "idle"
		}
		allowed := m.CapacityBPS // what the last plan let batch read
		for k := range last.Pools {
			if last.Pools[k].Name != isolation.PoolBatch {
				continue
			}
			for _, l := range last.Pools[k].IO.Limits {
				if l.Device == m.Device && l.ReadBPS > 0 {
					allowed = min(allowed, float64(l.ReadBPS))
				}
			}
		}
		want := m.IdleShare * m.CapacityBPS
		if cur.Antagonist {
			want = m.CapacityBPS
		}
		stall := 1.0
		if cur.BatchIdle {
			want, stall = min(want, m.IdleClassShare*m.CapacityBPS), m.IdleClassStall
		}
		cur.BatchBPS = min(want, allowed)
		cur.OnlinePSI = stall * m.StallAtPeak * cur.BatchBPS / m.CapacityBPS
		setPool(obs, isolation.PoolLatencyCritical, isolation.PoolObservation{IO: isolation.IOObservation{Measured: true, Capacity: capacity}})
		setPool(obs, isolation.PoolOnline, isolation.PoolObservation{IO: isolation.IOObservation{Measured: true, PSISome: cur.OnlinePSI, Capacity: capacity}})
		setPool(obs, isolation.PoolBatch, isolation.PoolObservation{IO: isolation.IOObservation{Measured: true, ReadBPS: cur.BatchBPS, Capacity: capacity}})
	}
	sample := func(_ time.Duration, plan *isolation.Plan) IOSample {
		for k := range plan.Pools {
			if pp := &plan.Pools[k]; pp.Name == isolation.PoolBatch {
				cur.Throttled = pp.IO.Throttled
				for _, l := range pp.IO.Limits {
					if l.Device == m.Device {
						cur.BatchLimit = l.ReadBPS
					}
				}
			}
		}
		return cur
	}
	return runModel(s, measure, sample)
}
