package sim

import (
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/isolation"
)

// RDTModel is the memory-bandwidth antagonist model behind
// MemoryBandwidthScenario, stated so its results can be judged:
//
//   - The host has Ways L3 ways (min_cbm_bits 1) and memory bandwidth
//     allocation; PeakBandwidth is the node's memory bandwidth.
//   - While the antagonist runs (from Start, for Length), batch streams
//     memory: it takes min(PeakBandwidth, MB% × PeakBandwidth), and fills
//     every L3 way it may use (WayBytes each). Otherwise batch uses
//     IdleShare of what it may.
//   - Pool 0's members stall on memory in proportion to the bandwidth
//     batch takes: their memory PSI "some" is StallAtPeak × batch
//     bandwidth ÷ PeakBandwidth. Pool 0's ways are exclusive, so batch's
//     cache use does not add to it.
//   - The plugin reads each class's counters every period (monitoring).
type RDTModel struct {
	Ways          int
	WayBytes      uint64
	PeakBandwidth float64 // bytes per second
	Start, Length time.Duration
	IdleShare     float64
	StallAtPeak   float64 // percent
}

// RDTSample is one period of an RDT run.
type RDTSample struct {
	T time.Duration
	// Pool0PSI is pool 0's memory PSI some this period; Pool0Level its
	// protection level (-1: none).
	Pool0PSI   float64
	Pool0Level int
	// Batch's share as planned this period, and what it used.
	BatchWays, BatchMB int
	BatchBandwidth     float64
	BatchOccupancy     uint64
	Antagonist         bool
}

// MemoryBandwidthScenario: pool 0 runs a latency-critical service with
// half the L3 ways exclusive; batch may use the other five ways and 80 %
// of memory bandwidth, throttled down to 2 ways and 20 % while pool 0 is at
// a protection level ("elevated" also triggers at memory PSI some ≥ 15).
// Between 60 s and 180 s batch streams memory. Ten minutes of one-second
// periods.
func MemoryBandwidthScenario(topo *strcpuset.Topology) (Scenario, RDTModel) {
	cfg := baseConfig()
	cfg.Protection.Levels[0].When.MemorySome = 15
	cfg.Protection.Cooldown = isolation.Duration{Duration: 3 * time.Second}
	for i := range cfg.Pools {
		switch cfg.Pools[i].Name {
		case isolation.PoolLatencyCritical:
			cfg.Pools[i].Profile.RDT = isolation.RDTProfile{L3Percent: 50}
		case isolation.PoolOnline:
			cfg.Pools[i].Profile.RDT = isolation.RDTProfile{L3Percent: 100, MBPercent: 100}
		case isolation.PoolBatch:
			cfg.Pools[i].Profile.RDT = isolation.RDTProfile{L3Ways: 5, MBPercent: 80,
				Throttle: &isolation.RDTThrottle{MinL3Ways: 2, MinMBPercent: 20, StepWays: 1, StepMBPercent: 20, RecoverPeriods: 5}}
		}
	}
	s := Scenario{
		Name: "memory-bandwidth", Config: cfg, Topology: topo,
		Start: Day0.Add(12 * time.Hour), Duration: 10 * time.Minute, Seed: 1,
		Workloads: []Workload{
			{Name: "lc", Namespace: "shop", Pool: isolation.PoolLatencyCritical, Replicas: 2, CPURequestMilli: 2000,
				MemoryRequest: gib, MemoryLimit: 2 * gib, CPU: Constant(0.8)},
			{Name: "web", Namespace: "web", Pool: isolation.PoolOnline, Replicas: 2, CPURequestMilli: 2000,
				MemoryRequest: gib, MemoryLimit: 2 * gib, CPU: Constant(0.8)},
			{Name: "stream", Namespace: "jobs", Pool: isolation.PoolBatch, Replicas: 4},
		},
	}
	m := RDTModel{Ways: 11, WayBytes: 2816 << 10, PeakBandwidth: 100e9,
		Start: 60 * time.Second, Length: 120 * time.Second, IdleShare: 0.05, StallAtPeak: 60}
	return s, m
}

// RunRDT runs s with m's measurements fed to the RDT dimension and
// returns the run's result with one RDTSample per period.
func RunRDT(s Scenario, m RDTModel) (*Result, []RDTSample, error) {
	host := isolation.RDTObservation{Ways: m.Ways, MinWays: 1, Bandwidth: true}
	var cur RDTSample
	measure := func(t time.Duration, _ *RDTSample, last *isolation.Plan, obs *isolation.Observations) {
		cur = RDTSample{T: t, Antagonist: t >= m.Start && t < m.Start+m.Length}
		// What batch may use is what the last plan gave it; at the first
		// period, its profile.
		ways, mb := 5, 80
		for k := range last.Pools {
			if rp := last.Pools[k].RDT; last.Pools[k].Name == isolation.PoolBatch && rp.Enabled {
				ways, mb = rp.Ways, rp.MBPercent
			}
		}
		share := m.IdleShare
		if cur.Antagonist {
			share = 1
		}
		cur.BatchBandwidth = share * float64(mb) / 100 * m.PeakBandwidth
		cur.BatchOccupancy = uint64(share * float64(uint64(ways)*m.WayBytes))
		cur.Pool0PSI = m.StallAtPeak * cur.BatchBandwidth / m.PeakBandwidth
		lc := host
		lc.Measured, lc.BandwidthBytes, lc.OccupancyBytes = true, 2e9, 6*m.WayBytes
		setPool(obs, isolation.PoolLatencyCritical, isolation.PoolObservation{
			Pressure: isolation.PoolPressure{Memory: isolation.PSI{Some: cur.Pool0PSI}}, PressureMeasured: true, RDT: lc})
		online := host
		online.Measured, online.BandwidthBytes, online.OccupancyBytes = true, 5e9, 3*m.WayBytes
		setPool(obs, isolation.PoolOnline, isolation.PoolObservation{RDT: online})
		batch := host
		batch.Measured, batch.BandwidthBytes, batch.OccupancyBytes = true, cur.BatchBandwidth, cur.BatchOccupancy
		setPool(obs, isolation.PoolBatch, isolation.PoolObservation{RDT: batch})
	}
	sample := func(_ time.Duration, plan *isolation.Plan) RDTSample {
		for k := range plan.Pools {
			pp := &plan.Pools[k]
			switch pp.Name {
			case isolation.PoolLatencyCritical:
				cur.Pool0Level = pp.Level
			case isolation.PoolBatch:
				cur.BatchWays, cur.BatchMB = pp.RDT.Ways, pp.RDT.MBPercent
			}
		}
		return cur
	}
	return runModel(s, measure, sample)
}
