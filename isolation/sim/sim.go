package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/isolation"
)

// Trace gives a value (cores, bytes) at simulated time t since the start
// of the scenario; tod is the time of day.
type Trace func(t time.Duration, tod time.Duration) float64

// Constant is a flat trace.
func Constant(v float64) Trace { return func(time.Duration, time.Duration) float64 { return v } }

// Diurnal swings between low and high over a day following a raised cosine,
// highest at time of day peak.
func Diurnal(low, high float64, peak time.Duration) Trace {
	return func(_ time.Duration, tod time.Duration) float64 {
		phase := 2 * math.Pi * float64(tod-peak) / float64(24*time.Hour)
		return low + (high-low)*(1+math.Cos(phase))/2
	}
}

// Step multiplies base by factor from at for length (0: for ever).
func Step(base Trace, factor float64, at, length time.Duration) Trace {
	return func(t, tod time.Duration) float64 {
		v := base(t, tod)
		if t >= at && (length == 0 || t < at+length) {
			v *= factor
		}
		return v
	}
}

// Ramp goes linearly from 'from' to 'to' between start and start+length.
func Ramp(from, to float64, start, length time.Duration) Trace {
	return func(t, _ time.Duration) float64 {
		switch {
		case t <= start:
			return from
		case t >= start+length:
			return to
		}
		return from + (to-from)*float64(t-start)/float64(length)
	}
}

// Workload is a group of identical containers.
type Workload struct {
	Name      string
	Namespace string
	// Pool is written into the pool annotation; empty lets the
	// configuration classify by namespace and QoS.
	Pool     string
	Replicas int
	// CPURequestMilli (shares are derived from it); CPULimitMilli 0 means
	// no limit.
	CPURequestMilli int64
	CPULimitMilli   int64
	MemoryRequest   int64
	MemoryLimit     int64
	// CPU is each replica's demand in cores; nil makes a greedy batch
	// member that uses whatever it gets.
	CPU Trace
	// Noise: each period each replica's demand is multiplied by a uniform
	// factor in [1−Noise, 1+Noise], from the scenario's seeded generator.
	Noise float64
	// Memory (anon) and File (page cache) bytes per replica; nil: 0.
	Memory, File Trace
}

// Scenario is one simulation.
type Scenario struct {
	Name      string
	Config    *isolation.Config
	Topology  *strcpuset.Topology
	Workloads []Workload
	// Start is the simulated wall-clock time of the first period (its
	// time of day drives diurnal traces and the watermark schedule).
	Start    time.Time
	Duration time.Duration
	// WarmUp periods are excluded from the statistics.
	WarmUp time.Duration
	// NodeMemory in bytes; 0: the topology's NUMA memory.
	NodeMemory int64
	// SystemMemory: bytes used outside containers.
	SystemMemory int64
	Seed         uint64
	// Record keeps one Sample per period in the Result.
	Record bool
	// Observe, if set, is called after every committed period.
	Observe func(i int, plan *isolation.Plan)
	// BeforeDecide, when set, adds what a dimension's model measures
	// (obs.Pools) just before period i's Decide; last is the previous
	// period's plan (zero at i = 0).
	BeforeDecide func(i int, last *isolation.Plan, obs *isolation.Observations)
}

// PoolSample is one pool in one period.
type PoolSample struct {
	Size      int     // shared CPUs after the plan
	Exclusive int     // exclusive CPUs
	RanOn     int     // shared CPUs during the period
	Usage     float64 // shared members' usage
	Demand    float64 // shared members' demand
	Load      float64 // Usage / RanOn
	Level     int
}

// Sample is one period.
type Sample struct {
	T             time.Duration
	Pools         []PoolSample
	BatchCapacity float64
	NodeUsage     float64
	MemoryUsed    int64
}

// PoolStats summarises a pool after warm-up.
type PoolStats struct {
	Name string
	// TimeInBand: fraction of periods whose load was inside the band.
	TimeInBand float64
	// Resizes: periods in which the pool's size changed.
	Resizes  int
	MeanSize float64
	MeanLoad float64
	Band     isolation.Band
	// Excursions: times the load left the band. Reaction: periods from
	// leaving the band until the load was measured inside it again
	// (mean and max over excursions that ended).
	Excursions   int
	MeanReaction float64
	MaxReaction  int
}

// TimedAction is an action with the simulated time it was planned.
type TimedAction struct {
	T time.Duration
	isolation.Action
}

// Result is the outcome of Run.
type Result struct {
	Scenario string
	Periods  int // after warm-up
	Pools    []PoolStats
	// NodeUtilisation: mean usage of all containers ÷ usable CPUs.
	NodeUtilisation float64
	// BatchShare: mean batch usage ÷ usable CPUs.
	BatchShare float64
	// BatchUseOfFree: batch usage ÷ CPUs the online pools left to batch
	// (the batch pool's CPUs), summed over periods.
	BatchUseOfFree float64
	// BatchUseOfIdle: batch usage ÷ (usable CPUs − online usage): how much
	// of all idle CPU time batch used, including headroom online pools
	// hold inside their bands.
	BatchUseOfIdle float64
	Samples        []Sample
	Actions        []TimedAction
	Evicted        []string
	UsableCPUs     int
	Elapsed        time.Duration // wall time of the run
}

type member struct {
	id       string
	w        *Workload
	pool     int
	excl     int
	file     float64 // current page cache (bytes), follows the trace but drops on reclaim
	fileBase float64 // trace value at last reclaim
	gone     bool
}

// Run simulates the scenario.
func Run(s Scenario) (*Result, error) {
	wall := time.Now()
	cfg := s.Config
	if cfg == nil {
		cfg = isolation.DefaultConfig()
	}
	st, err := isolation.NewState(s.Topology, cfg)
	if err != nil {
		return nil, err
	}
	pools := st.Pools()
	last := len(pools) - 1
	rank := map[string]int{}
	for i, p := range pools {
		rank[p.Name] = i
	}
	bands := make([]isolation.Band, len(pools))
	for _, pc := range cfg.Pools {
		bands[rank[pc.Name]] = pc.Band
	}
	var members []*member
	for wi := range s.Workloads {
		w := &s.Workloads[wi]
		for r := range max(w.Replicas, 1) {
			req := isolation.ContainerRequest{
				ID:   fmt.Sprintf("%s-%d", w.Name, r),
				Name: w.Name, PodName: fmt.Sprintf("%s-%d", w.Name, r), PodUID: fmt.Sprintf("uid-%s-%d", w.Name, r),
				Namespace:       w.Namespace,
				CPURequestMilli: w.CPURequestMilli,
				CPUShares:       cgroup.MilliCPUToShares(w.CPURequestMilli),
				MemoryRequest:   w.MemoryRequest, MemoryLimit: w.MemoryLimit,
			}
			if w.CPULimitMilli > 0 {
				req.CPUPeriod = 100000
				req.CPUQuota = w.CPULimitMilli * 100
			}
			if w.Pool != "" {
				req.Annotations = map[string]string{cfg.Classification.Annotation: w.Pool}
			}
			adm, err := st.Admit(req)
			if err != nil {
				return nil, fmt.Errorf("sim %s: admit %s: %w", s.Name, req.ID, err)
			}
			m := &member{id: req.ID, w: w, pool: rank[adm.Pool]}
			if adm.Exclusive {
				m.excl = adm.CPUs.Size()
			}
			members = append(members, m)
		}
	}
	usable := 0
	for _, p := range pools {
		usable += p.CPUs.Size()
	}
	usable = 0
	for _, p := range st.Pools() {
		usable += p.CPUs.Size()
	}
	memTotal := s.NodeMemory
	if memTotal == 0 {
		for _, n := range s.Topology.NUMANodes() {
			memTotal += int64(n.MemoryBytes)
		}
	}
	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	res := &Result{Scenario: s.Name, UsableCPUs: usable}
	sizes := make([]int, len(pools))
	for i, p := range st.Pools() {
		sizes[i] = p.Shared.Size()
	}
	demand := make([]float64, len(pools))
	batchCap := math.Inf(1)
	obs := isolation.Observations{Containers: map[string]isolation.ContainerUsage{}}
	var plan isolation.Plan
	inBand := make([]int, len(pools))
	resizes := make([]int, len(pools))
	sumSize := make([]float64, len(pools))
	sumLoad := make([]float64, len(pools))
	var sumNode, sumBatch, sumFree, sumIdle float64
	outSince := make([]int, len(pools)) // period the load left the band, -1: inside
	for k := range outSince {
		outSince[k] = -1
	}
	excursions := make([]int, len(pools))
	reactions := make([]int, len(pools))
	ended := make([]int, len(pools))
	maxReaction := make([]int, len(pools))
	d := cfg.Period.Duration
	suspended := map[string]bool{}
	for i := 0; time.Duration(i)*d < s.Duration; i++ {
		t := time.Duration(i) * d
		now := s.Start.Add(t)
		tod := time.Duration(now.Hour())*time.Hour + time.Duration(now.Minute())*time.Minute + time.Duration(now.Second())*time.Second
		clear(demand)
		clear(obs.Containers)
		// Demands.
		want := make(map[*member]float64, len(members))
		batchMembers := 0
		for _, m := range members {
			if m.gone {
				continue
			}
			if m.w.CPU == nil {
				if !suspended[m.id] {
					batchMembers++
				}
				continue
			}
			v := m.w.CPU(t, tod)
			if m.w.Noise > 0 {
				v *= 1 + m.w.Noise*(2*rng.Float64()-1)
			}
			want[m] = v
			if m.excl == 0 {
				demand[m.pool] += v
			}
		}
		// Usage.
		var nodeUse, onlineUse, batchUse float64
		var memUsed = s.SystemMemory
		for _, m := range members {
			if m.gone {
				continue
			}
			var u float64
			switch {
			case m.w.CPU == nil:
				if !suspended[m.id] && batchMembers > 0 {
					u = math.Min(float64(sizes[m.pool]), batchCap) / float64(batchMembers)
				}
			case m.excl > 0:
				u = math.Min(want[m], float64(m.excl))
			default:
				u = want[m]
				if demand[m.pool] > float64(sizes[m.pool]) {
					u = want[m] * float64(sizes[m.pool]) / demand[m.pool]
				}
			}
			if m.pool == last {
				batchUse += u
			} else {
				onlineUse += u
			}
			nodeUse += u
			cu := isolation.ContainerUsage{CPU: u}
			cu.RunQueueMean, cu.RunQueueP50, cu.RunQueueP99 = memberRunQueue(m, want[m], demand, sizes) // runqueue.go
			if m.w.Memory != nil {
				cu.MemoryBytes = int64(m.w.Memory(t, tod))
			}
			if m.w.File != nil {
				f := m.w.File(t, tod)
				m.file = math.Max(0, f-m.fileBase)
				cu.FileBytes = int64(m.file)
				cu.MemoryBytes += cu.FileBytes
			}
			memUsed += cu.MemoryBytes
			obs.Containers[m.id] = cu
		}
		obs.Node = isolation.NodePressure{MemoryTotal: memTotal, MemoryUsed: memUsed}

		if s.BeforeDecide != nil {
			s.BeforeDecide(i, &plan, &obs)
		}
		isolation.DecideInto(&plan, &obs, st, now)
		// Apply.
		for _, a := range plan.Actions {
			res.Actions = append(res.Actions, TimedAction{T: t, Action: a})
		}
		if err := st.Commit(&plan); err != nil {
			return nil, fmt.Errorf("sim %s: period %d: %w", s.Name, i, err)
		}
		for _, a := range plan.Actions {
			for _, m := range members {
				if m.id != a.Container || m.gone {
					continue
				}
				switch a.Kind {
				case isolation.ActionReclaimPageCache:
					if m.w.File != nil {
						m.fileBase = m.w.File(t, tod)
					}
				case isolation.ActionEvict:
					m.gone = true
					st.Remove(m.id)
					res.Evicted = append(res.Evicted, m.id)
				case isolation.ActionSuspend:
					suspended[m.id] = true
				}
			}
		}
		if s.Observe != nil {
			s.Observe(i, &plan)
		}
		counted := t >= s.WarmUp
		var sample Sample
		if s.Record {
			sample = Sample{T: t, Pools: make([]PoolSample, len(pools)), BatchCapacity: plan.Batch.CPUs,
				NodeUsage: nodeUse, MemoryUsed: memUsed}
		}
		for k := range plan.Pools {
			pp := &plan.Pools[k]
			if counted {
				if pp.InBand(bands[k]) {
					inBand[k]++
					if outSince[k] >= 0 {
						r := i - outSince[k]
						reactions[k] += r
						ended[k]++
						maxReaction[k] = max(maxReaction[k], r)
						outSince[k] = -1
					}
				} else if outSince[k] < 0 {
					outSince[k] = i
					excursions[k]++
				}
				if pp.Size != pp.PrevSize {
					resizes[k]++
				}
				sumSize[k] += float64(pp.Size)
				sumLoad[k] += pp.Load
			}
			if s.Record {
				sample.Pools[k] = PoolSample{Size: pp.Size, Exclusive: pp.Exclusive.Size(), RanOn: pp.PrevSize,
					Usage: pp.Usage, Demand: demand[k], Load: pp.Load, Level: pp.Level}
			}
			sizes[k] = pp.Size
		}
		if s.Record {
			res.Samples = append(res.Samples, sample)
		}
		if counted {
			res.Periods++
			sumNode += nodeUse / float64(usable)
			sumBatch += batchUse
			sumFree += float64(plan.Pools[last].PrevSize)
			sumIdle += float64(usable) - onlineUse
		}
		batchCap = plan.Batch.CPUs
		if !plan.Batch.Colocation {
			batchCap = 0
		}
	}
	for k, p := range pools {
		ps := PoolStats{Name: p.Name, Band: bands[k], Resizes: resizes[k], Excursions: excursions[k], MaxReaction: maxReaction[k]}
		if ended[k] > 0 {
			ps.MeanReaction = float64(reactions[k]) / float64(ended[k])
		}
		if res.Periods > 0 {
			ps.TimeInBand = float64(inBand[k]) / float64(res.Periods)
			ps.MeanSize = sumSize[k] / float64(res.Periods)
			ps.MeanLoad = sumLoad[k] / float64(res.Periods)
		}
		res.Pools = append(res.Pools, ps)
	}
	if res.Periods > 0 {
		res.NodeUtilisation = sumNode / float64(res.Periods)
		res.BatchShare = sumBatch / float64(res.Periods) / float64(usable)
	}
	if sumFree > 0 {
		res.BatchUseOfFree = sumBatch / sumFree
	}
	if sumIdle > 0 {
		res.BatchUseOfIdle = sumBatch / sumIdle
	}
	res.Elapsed = time.Since(wall)
	_ = cpuset.CPUSet{}
	return res, nil
}
