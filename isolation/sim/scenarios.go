package sim

import (
	"fmt"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/isolation"
)

// The scenarios of docs/simulation.md. Each takes the topology (any
// machine; the numbers below suit the 80-CPU Intel2S20C2T fixture and up)
// and returns a Scenario with LAR's default configuration except where
// noted, reserved CPUs 0 and the sibling of 0.

// Day0 is the simulated start: midnight UTC.
var Day0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

const gib = 1 << 30

func baseConfig() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0"
	// The latency-critical services live in namespace shop, which the
	// operator lets into pool 0.
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"shop"}}
	return cfg
}

// DiurnalScenario: 24 hours of one-second periods. Pool 0 runs 6 latency-critical
// services (3.5 CPUs requested each) peaking at 14:00, plus one pinned
// service with 2 whole CPUs; pool 1 runs 10 online services (4 CPUs each)
// peaking at 20:00; batch runs 6 greedy jobs. Demands swing 4:1 over the
// day with ±5 % noise per period.
func DiurnalScenario(topo *strcpuset.Topology) Scenario {
	return Scenario{
		Name: "diurnal", Config: baseConfig(), Topology: topo,
		Start: Day0, Duration: 24 * time.Hour, WarmUp: time.Hour, Seed: 1,
		Workloads: []Workload{
			{Name: "lc", Namespace: "shop", Pool: isolation.PoolLatencyCritical, Replicas: 6, CPURequestMilli: 3500,
				MemoryRequest: 2 * gib, MemoryLimit: 4 * gib,
				CPU: Diurnal(0.33, 1.3, 14*time.Hour), Noise: 0.05},
			{Name: "lc-pinned", Namespace: "shop", Pool: isolation.PoolLatencyCritical, Replicas: 1, CPURequestMilli: 2000,
				CPULimitMilli: 2000, MemoryRequest: 2 * gib, MemoryLimit: 2 * gib,
				CPU: Diurnal(0.4, 1.6, 14*time.Hour), Noise: 0.05},
			{Name: "web", Namespace: "web", Pool: isolation.PoolOnline, Replicas: 10, CPURequestMilli: 4000,
				MemoryRequest: 2 * gib, MemoryLimit: 4 * gib,
				CPU: Diurnal(0.5, 2.0, 20*time.Hour), Noise: 0.05},
			{Name: "batch", Namespace: "jobs", Pool: isolation.PoolBatch, Replicas: 6},
		},
	}
}

// SpikeScenario: steady loads for 20 minutes, then pool 0's demand triples in one
// period and stays for 10 minutes.
func SpikeScenario(topo *strcpuset.Topology) Scenario {
	s := SteadyScenario(topo)
	s.Name = "spike"
	s.Duration = 40 * time.Minute
	s.WarmUp = 15 * time.Minute
	s.Workloads[0].CPU = Step(Constant(0.5), 3, SpikeAt, 10*time.Minute)
	return s
}

// SpikeAt is when Spike's step happens.
const SpikeAt = 20 * time.Minute

// SteadyScenario: constant demands with ±5 % noise for 2 hours.
func SteadyScenario(topo *strcpuset.Topology) Scenario {
	return Scenario{
		Name: "steady", Config: baseConfig(), Topology: topo,
		Start: Day0.Add(10 * time.Hour), Duration: 2 * time.Hour, WarmUp: 30 * time.Minute, Seed: 2,
		Workloads: []Workload{
			{Name: "lc", Namespace: "shop", Pool: isolation.PoolLatencyCritical, Replicas: 6, CPURequestMilli: 3500,
				CPU: Constant(0.5), Noise: 0.05},
			{Name: "web", Namespace: "web", Pool: isolation.PoolOnline, Replicas: 10, CPURequestMilli: 4000,
				CPU: Constant(1.2), Noise: 0.05},
			{Name: "batch", Namespace: "jobs", Pool: isolation.PoolBatch, Replicas: 6},
		},
	}
}

// MemoryPressureScenario: node memory of 64 GiB; batch jobs' anonymous memory grows
// from 2 to 9 GiB each over 30 minutes, pushing node usage through the
// protection levels' thresholds (80 %, 88 %, 95 %).
func MemoryPressureScenario(topo *strcpuset.Topology) Scenario {
	s := SteadyScenario(topo)
	s.Name = "memory-pressure"
	s.Duration = 40 * time.Minute
	s.WarmUp = 0
	s.NodeMemory = 64 * gib
	s.SystemMemory = 4 * gib
	for i := range s.Workloads {
		s.Workloads[i].Memory = Constant(1 * gib)
		s.Workloads[i].File = Constant(0.5 * gib)
	}
	b := &s.Workloads[2]
	b.Memory = Ramp(2*gib, 9*gib, 5*time.Minute, 30*time.Minute)
	b.File = Ramp(0.5*gib, 1*gib, 5*time.Minute, 30*time.Minute)
	return s
}

// Scale multiplies every workload's replicas by factor, for larger
// machines.
func Scale(s Scenario, factor int) Scenario {
	w := make([]Workload, len(s.Workloads))
	copy(w, s.Workloads)
	for i := range w {
		w[i].Replicas = max(w[i].Replicas, 1) * factor
	}
	s.Workloads = w
	s.Name = fmt.Sprintf("%s×%d", s.Name, factor)
	return s
}

// BandTopScenario is SteadyScenario with its online pools brought into
// the top quarter of their bands after the warm-up: pool 0's demand ramps
// from 0.5 to 0.705 cores per service (load about 0.47 on its 9 CPUs, band
// 30–50 %), pool 1's from 1.2 to 1.38 (about 0.575 on 24, band 45–60 %),
// both between minutes 30 and 40, then steady for 2 hours and 20 minutes.
// Statistics start at minute 40.
func BandTopScenario(topo *strcpuset.Topology) Scenario {
	s := SteadyScenario(topo)
	s.Name = "band-top"
	s.Duration = 3 * time.Hour
	s.WarmUp = 40 * time.Minute
	s.Workloads[0].CPU = Ramp(0.5, 0.705, 30*time.Minute, 10*time.Minute)
	s.Workloads[1].CPU = Ramp(1.2, 1.38, 30*time.Minute, 10*time.Minute)
	return s
}

// StarvedScenario is the reaction benchmark's node (benchmarks/colocation)
// in simulation, on the 2-CPU VM2 fixture with no reserved CPU: one
// latency-critical service requesting both CPUs, shared (exclusiveCores
// off), one greedy batch job, batch's minimum 0 so that it lends its last
// CPU to a busy pool 0, a 100 ms period and a 2 s shrinkInterval. Outside
// work (the benchmark's load generator and other users' builds) keeps
// OutsidePerCPU runnable tasks on every CPU. The service's demand steps
// between 0.2 cores (2.5 s) and 0.8 cores (2 s), StarvedSteps times, after
// a 5 s warm-up at the low demand. On its one CPU at the trough the step
// gets 0.8 / (0.8 + 0.9) ≈ 0.47 of it: load in the top quarter of the
// band, never above it, while its tasks queue behind the outside work.
func StarvedScenario(topo *strcpuset.Topology) Scenario {
	cfg := isolation.DefaultConfig()
	cfg.Period = isolation.Duration{Duration: StarvedPeriod}
	cfg.Resize.ShrinkInterval = isolation.Duration{Duration: 2 * time.Second}
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"shop"}}
	cfg.Pools[0].ExclusiveCores = false
	cfg.Pools[2].MinCPUs = 0
	demand := func(t, _ time.Duration) float64 {
		if t < StarvedWarmUp {
			return 0.2
		}
		if (t-StarvedWarmUp)%(StarvedLowFor+StarvedHighFor) >= StarvedLowFor {
			return 0.8
		}
		return 0.2
	}
	return Scenario{
		Name: "starved", Config: cfg, Topology: topo,
		Start: Day0.Add(10 * time.Hour), Duration: StarvedWarmUp + StarvedSteps*(StarvedLowFor+StarvedHighFor), Seed: 3,
		Outside: Constant(OutsidePerCPU),
		Workloads: []Workload{
			{Name: "lc", Namespace: "shop", Pool: isolation.PoolLatencyCritical, Replicas: 1, CPURequestMilli: 2000,
				CPU: demand, Noise: 0.05},
			{Name: "batch", Namespace: "jobs", Pool: isolation.PoolBatch, Replicas: 1},
		},
	}
}

// StarvedScenario's shape: its period, warm-up, phases, steps and outside
// work.
const (
	StarvedPeriod  = 100 * time.Millisecond
	StarvedWarmUp  = 5 * time.Second
	StarvedLowFor  = 2500 * time.Millisecond
	StarvedHighFor = 2 * time.Second
	StarvedSteps   = 20
	OutsidePerCPU  = 0.9
)
