package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

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
	// Outside is work outside every pool — the system, a load generator
	// in the root cgroup, other users' builds — as runnable tasks per CPU
	// (cores of demand per CPU) on every pool's shared CPUs; nil: none.
	// It competes with a pool's shared members at equal weight: when the
	// members' demand D and the outside work E = Outside × n exceed the
	// pool's n CPUs, the members get D·n/(D+E), and they wait in the run
	// queue as at utilisation (D+E)/n (runqueue.go). It runs ahead of the
	// batch pool's idle members, which get the rest of their CPUs.
	Outside Trace
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
	r, err := newRun(s)
	if err != nil {
		return nil, err
	}
	for i := 0; time.Duration(i)*r.period < s.Duration; i++ {
		if err := r.step(i); err != nil {
			return nil, err
		}
	}
	res := r.result()
	res.Elapsed = time.Since(wall)
	return res, nil
}

// run is one simulation in progress: the controller's state, the simulated
// members, and the figures gathered so far.
type run struct {
	s        Scenario
	st       *isolation.State
	names    []string         // pools by rank
	bands    []isolation.Band // by rank
	last     int              // rank of the lowest pool
	members  []*member
	usable   int   // CPUs the pools share out
	memTotal int64 // node memory, bytes
	period   time.Duration
	rng      *rand.Rand
	res      *Result

	// Per period: the shared CPUs each pool ran on, the shared members'
	// demand per pool, the batch capacity the last plan gave, suspended
	// members.
	sizes     []int
	demand    []float64
	batchCap  float64
	suspended map[string]bool
	obs       isolation.Observations
	plan      isolation.Plan
	stats     stats
}

// usage is one period's CPU usage (cores) and memory in use (bytes).
type usage struct {
	node, online, batch float64
	memory              int64
}

// stats accumulates what Result reports over the periods after warm-up,
// per pool by rank and for the node.
type stats struct {
	inBand, resizes []int
	sumSize         []float64
	sumLoad         []float64
	// outSince: period the load left the band, -1 while inside.
	outSince                            []int
	excursions, reactions, ended        []int
	maxReaction                         []int
	sumNode, sumBatch, sumFree, sumIdle float64
}

func newStats(n int) stats {
	st := stats{inBand: make([]int, n), resizes: make([]int, n), sumSize: make([]float64, n), sumLoad: make([]float64, n),
		outSince: make([]int, n), excursions: make([]int, n), reactions: make([]int, n), ended: make([]int, n), maxReaction: make([]int, n)}
	for k := range st.outSince {
		st.outSince[k] = -1
	}
	return st
}

// newRun builds the state and admits every workload's replicas.
func newRun(s Scenario) (*run, error) {
	if s.Config == nil {
		s.Config = isolation.DefaultConfig()
	}
	st, err := isolation.NewState(s.Topology, s.Config)
	if err != nil {
		return nil, err
	}
	r := &run{s: s, st: st, period: s.Config.Period.Duration, suspended: map[string]bool{},
		obs: isolation.Observations{Containers: map[string]isolation.ContainerUsage{}}, batchCap: math.Inf(1)}
	rank := map[string]int{}
	for i, p := range st.Pools() {
		rank[p.Name] = i
		r.names = append(r.names, p.Name)
	}
	r.last = len(r.names) - 1
	r.bands = make([]isolation.Band, len(r.names))
	for _, pc := range s.Config.Pools {
		r.bands[rank[pc.Name]] = pc.Band
	}
	if err := r.admit(rank); err != nil {
		return nil, err
	}
	for _, p := range st.Pools() {
		r.usable += p.CPUs.Size()
		r.sizes = append(r.sizes, p.Shared.Size())
	}
	r.memTotal = s.NodeMemory
	if r.memTotal == 0 {
		for _, n := range s.Topology.NUMANodes() {
			r.memTotal += int64(n.MemoryBytes)
		}
	}
	r.rng = rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	r.res = &Result{Scenario: s.Name, UsableCPUs: r.usable}
	r.demand = make([]float64, len(r.names))
	r.stats = newStats(len(r.names))
	return r, nil
}

// admit admits every workload's replicas, in order.
func (r *run) admit(rank map[string]int) error {
	cfg := r.s.Config
	for wi := range r.s.Workloads {
		w := &r.s.Workloads[wi]
		for i := range max(w.Replicas, 1) {
			req := isolation.ContainerRequest{
				ID:   fmt.Sprintf("%s-%d", w.Name, i),
				Name: w.Name, PodName: fmt.Sprintf("%s-%d", w.Name, i), PodUID: fmt.Sprintf("uid-%s-%d", w.Name, i),
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
			adm, err := r.st.Admit(req)
			if err != nil {
				return fmt.Errorf("sim %s: admit %s: %w", r.s.Name, req.ID, err)
			}
			m := &member{id: req.ID, w: w, pool: rank[adm.Pool]}
			if adm.Exclusive {
				m.excl = adm.CPUs.Size()
			}
			r.members = append(r.members, m)
		}
	}
	return nil
}

// step simulates period i: the members' usage, Decide, Commit, the
// actions' effects on the members, and the period's figures.
func (r *run) step(i int) error {
	t := time.Duration(i) * r.period
	now := r.s.Start.Add(t)
	tod := time.Duration(now.Hour())*time.Hour + time.Duration(now.Minute())*time.Minute + time.Duration(now.Second())*time.Second
	u := r.observe(t, tod)
	if r.s.BeforeDecide != nil {
		r.s.BeforeDecide(i, &r.plan, &r.obs)
	}
	isolation.DecideInto(&r.plan, &r.obs, r.st, now)
	for _, a := range r.plan.Actions {
		r.res.Actions = append(r.res.Actions, TimedAction{T: t, Action: a})
	}
	if err := r.st.Commit(&r.plan); err != nil {
		return fmt.Errorf("sim %s: period %d: %w", r.s.Name, i, err)
	}
	r.act(t, tod)
	if r.s.Observe != nil {
		r.s.Observe(i, &r.plan)
	}
	r.record(i, t, u)
	r.batchCap = r.plan.Batch.CPUs
	if !r.plan.Batch.Colocation {
		r.batchCap = 0
	}
	return nil
}

// demands returns what each member with a CPU trace wants this period
// (with its noise), adding shared members' demand to their pools', and the
// number of greedy batch members still running.
func (r *run) demands(t, tod time.Duration) (map[*member]float64, int) {
	clear(r.demand)
	want := make(map[*member]float64, len(r.members))
	greedy := 0
	for _, m := range r.members {
		if m.gone {
			continue
		}
		if m.w.CPU == nil {
			if !r.suspended[m.id] {
				greedy++
			}
			continue
		}
		v := m.w.CPU(t, tod)
		if m.w.Noise > 0 {
			v *= 1 + m.w.Noise*(2*r.rng.Float64()-1)
		}
		want[m] = v
		if m.excl == 0 {
			r.demand[m.pool] += v
		}
	}
	return want, greedy
}

// observe fills the observations: each member's usage — its demand, scaled
// down when its pool's demand exceeds the pool's CPUs; greedy batch
// members share what batch holds, up to the batch capacity — memory and
// page cache, and the node's memory.
func (r *run) observe(t, tod time.Duration) usage {
	clear(r.obs.Containers)
	want, greedy := r.demands(t, tod)
	u := usage{memory: r.s.SystemMemory}
	outside := 0.0
	if r.s.Outside != nil {
		outside = math.Max(0, r.s.Outside(t, tod))
	}
	for _, m := range r.members {
		if m.gone {
			continue
		}
		var cpu float64
		switch {
		case m.w.CPU == nil:
			if !r.suspended[m.id] && greedy > 0 {
				left := float64(r.sizes[m.pool]) * math.Max(0, 1-outside)
				cpu = math.Min(left, r.batchCap) / float64(greedy)
			}
		case m.excl > 0:
			cpu = math.Min(want[m], float64(m.excl))
		default:
			cpu = want[m]
			n := float64(r.sizes[m.pool])
			if all := r.demand[m.pool] + outside*n; all > n {
				cpu = want[m] * n / all
			}
		}
		if m.pool == r.last {
			u.batch += cpu
		} else {
			u.online += cpu
		}
		u.node += cpu
		cu := isolation.ContainerUsage{CPU: cpu}
		cu.RunQueueMean, cu.RunQueueP50, cu.RunQueueP99 = memberRunQueue(m, want[m], r.demand, r.sizes, outside) // runqueue.go
		if m.w.Memory != nil {
			cu.MemoryBytes = int64(m.w.Memory(t, tod))
		}
		if m.w.File != nil {
			f := m.w.File(t, tod)
			m.file = math.Max(0, f-m.fileBase)
			cu.FileBytes = int64(m.file)
			cu.MemoryBytes += cu.FileBytes
		}
		u.memory += cu.MemoryBytes
		r.obs.Containers[m.id] = cu
	}
	r.obs.Node = isolation.NodePressure{MemoryTotal: r.memTotal, MemoryUsed: u.memory}
	return u
}

// act carries out the plan's actions on the simulated members: a reclaim
// drops a member's page cache, an eviction removes it, a suspension stops
// a greedy member.
func (r *run) act(t, tod time.Duration) {
	for _, a := range r.plan.Actions {
		for _, m := range r.members {
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
				r.st.Remove(m.id)
				r.res.Evicted = append(r.res.Evicted, m.id)
			case isolation.ActionSuspend:
				r.suspended[m.id] = true
			}
		}
	}
}

// record adds period i to the figures (after warm-up) and the samples,
// and takes the pools' new sizes for the next period.
func (r *run) record(i int, t time.Duration, u usage) {
	counted := t >= r.s.WarmUp
	var sample Sample
	if r.s.Record {
		sample = Sample{T: t, Pools: make([]PoolSample, len(r.names)), BatchCapacity: r.plan.Batch.CPUs,
			NodeUsage: u.node, MemoryUsed: u.memory}
	}
	for k := range r.plan.Pools {
		pp := &r.plan.Pools[k]
		if counted {
			r.stats.pool(k, i, pp, r.bands[k])
		}
		if r.s.Record {
			sample.Pools[k] = PoolSample{Size: pp.Size, Exclusive: pp.Exclusive.Size(), RanOn: pp.PrevSize,
				Usage: pp.Usage, Demand: r.demand[k], Load: pp.Load, Level: pp.Level}
		}
		r.sizes[k] = pp.Size
	}
	if r.s.Record {
		r.res.Samples = append(r.res.Samples, sample)
	}
	if counted {
		r.res.Periods++
		r.stats.sumNode += u.node / float64(r.usable)
		r.stats.sumBatch += u.batch
		r.stats.sumFree += float64(r.plan.Pools[r.last].PrevSize)
		r.stats.sumIdle += float64(r.usable) - u.online
	}
}

// pool counts pool k's period i: in band or not (an excursion starts when
// the load leaves the band and ends when it is back), resized, size, load.
func (st *stats) pool(k, i int, pp *isolation.PoolPlan, band isolation.Band) {
	if pp.InBand(band) {
		st.inBand[k]++
		if st.outSince[k] >= 0 {
			d := i - st.outSince[k]
			st.reactions[k] += d
			st.ended[k]++
			st.maxReaction[k] = max(st.maxReaction[k], d)
			st.outSince[k] = -1
		}
	} else if st.outSince[k] < 0 {
		st.outSince[k] = i
		st.excursions[k]++
	}
	if pp.Size != pp.PrevSize {
		st.resizes[k]++
	}
	st.sumSize[k] += float64(pp.Size)
	st.sumLoad[k] += pp.Load
}

// result turns the figures into the Result.
func (r *run) result() *Result {
	res, st := r.res, &r.stats
	for k, name := range r.names {
		ps := PoolStats{Name: name, Band: r.bands[k], Resizes: st.resizes[k], Excursions: st.excursions[k], MaxReaction: st.maxReaction[k]}
		if st.ended[k] > 0 {
			ps.MeanReaction = float64(st.reactions[k]) / float64(st.ended[k])
		}
		if res.Periods > 0 {
			ps.TimeInBand = float64(st.inBand[k]) / float64(res.Periods)
			ps.MeanSize = st.sumSize[k] / float64(res.Periods)
			ps.MeanLoad = st.sumLoad[k] / float64(res.Periods)
		}
		res.Pools = append(res.Pools, ps)
	}
	if res.Periods > 0 {
		res.NodeUtilisation = st.sumNode / float64(res.Periods)
		res.BatchShare = st.sumBatch / float64(res.Periods) / float64(r.usable)
	}
	if st.sumFree > 0 {
		res.BatchUseOfFree = st.sumBatch / st.sumFree
	}
	if st.sumIdle > 0 {
		res.BatchUseOfIdle = st.sumBatch / st.sumIdle
	}
	return res
}
