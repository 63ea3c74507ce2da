package isolation

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"sort"
	"time"

	"k8s.io/utils/cpuset"

	strcpuset "github.com/strata-nri/strata/cpuset"
)

// State is the controller's memory: pools (cpusets, RCF inputs, history)
// and containers (pool, requests, exclusive CPUs, applied settings). It is
// changed only by Admit, Restore, Remove and Commit; Decide reads it. State
// is not safe for concurrent use: the plugin serialises calls.
type State struct {
	cfg      *Config
	topo     *strcpuset.Topology
	alloc    *strcpuset.Allocator
	reserved cpuset.CPUSet
	usable   cpuset.CPUSet // online − reserved (− isolated): what pools share out
	// watermark: batch.watermark and its schedule (watermark.go).
	watermark watermarkSchedule

	pools      []*poolState // by priority, highest first
	containers []*containerState
	byID       map[string]int

	onlinePred *PeakPredictor
	lastEvict  time.Time
	version    uint64
	// dims: the pool-level dimensions' decision steps and memory.
	dims []dimension
}

type poolState struct {
	cfg       *PoolConfig
	rank      int
	shared    cpuset.CPUSet
	exclusive cpuset.CPUSet
	all       cpuset.CPUSet
	mems      cpuset.CPUSet
	gen       uint64 // incremented whenever shared changes
	pred      *PeakPredictor

	sharedMembers int
	exclMembers   int
	requestMilli  int64 // CPU requests of shared members

	lastResize time.Time
	// grownAtAdmission: Admit or Restore grew the shared CPUs; the next
	// period must not shrink them back before the new member ran.
	grownAtAdmission bool
	level            int
	levelMetAt       time.Time
	resizes          int
}

type containerState struct {
	req       ContainerRequest
	pool      int
	exclusive cpuset.CPUSet
	base      Settings // from the pool profile
	applied   Settings
	cpusGen   uint64 // pool generation last applied; 0: unknown
	appliedC  cpuset.CPUSet
	downgrade bool
	suspended bool
	evicting  bool
	reclaimAt time.Time
	// failed: fields the plugin reported as not applied (Unapplied); the
	// next Decide plans them again.
	failed Fields
}

// NewState creates the state of a node with no containers: every usable
// CPU is in the lowest pool. cfg must be valid (it is validated again).
func NewState(topo *strcpuset.Topology, cfg *Config) (*State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reserved, _ := strcpuset.ParseList(cfg.ReservedCPUs)
	alloc, err := strcpuset.NewAllocator(topo, strcpuset.AllocatorOptions{Reserved: reserved})
	if err != nil {
		return nil, fmt.Errorf("isolation: reservedCPUs %q: %w", cfg.ReservedCPUs, err)
	}
	// minCPUs is bounded by any machine at Validate; here by this one.
	for i, p := range cfg.Pools {
		if n := alloc.Usable().Size(); p.MinCPUs > n {
			return nil, &ConfigError{Field: fmt.Sprintf("pools[%d].minCPUs", i), Value: p.MinCPUs,
				Reason: fmt.Sprintf("more than the %d CPUs the pools share on this machine (online %s, reserved %s, isolated %s)",
					n, topo.Online(), reserved, topo.Isolated())}
		}
	}
	s := &State{
		cfg: cfg, topo: topo, alloc: alloc, reserved: reserved,
		usable: alloc.Usable(), watermark: newWatermarkSchedule(&cfg.Batch),
		byID:       map[string]int{},
		onlinePred: NewPeakPredictor(cfg.Predictor.HalfLife.Duration),
		dims:       newDimensions(cfg),
	}
	order := make([]int, len(cfg.Pools))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return cfg.Pools[order[a]].Priority < cfg.Pools[order[b]].Priority })
	for rank, i := range order {
		s.pools = append(s.pools, &poolState{
			cfg: &cfg.Pools[i], rank: rank, level: -1, gen: 1,
			pred: NewPeakPredictor(cfg.Predictor.HalfLife.Duration),
		})
	}
	low := s.pools[len(s.pools)-1]
	low.shared = s.usable
	for _, p := range s.pools {
		s.refresh(p)
	}
	return s, nil
}

// Config returns the configuration the state runs with.
func (s *State) Config() *Config { return s.cfg }

func (s *State) lowest() *poolState { return s.pools[len(s.pools)-1] }

func (s *State) poolByName(name string) *poolState {
	for _, p := range s.pools {
		if p.cfg.Name == name {
			return p
		}
	}
	return nil
}

// refresh recomputes a pool's derived sets after shared or exclusive changed.
func (s *State) refresh(p *poolState) {
	p.all = p.shared.Union(p.exclusive)
	p.mems = s.topo.MemsFor(p.all)
}

// Admission is the answer to Admit and Restore.
type Admission struct {
	ID    string
	Pool  string
	Route string // why this pool, see Classification.Route
	// CPUs the container runs on: its exclusive CPUs, or its pool's shared
	// CPUs. Mems: the NUMA nodes of those CPUs.
	CPUs      cpuset.CPUSet
	Mems      cpuset.CPUSet
	Exclusive bool
	Settings  Settings
	// Updates: other containers whose CPUs changed because this one took
	// CPUs from their pools. The plugin applies them with the creation
	// (the state already records them as applied).
	Updates []ContainerChange
}

// Admit places a new container: it classifies it (annotation, allow-lists,
// rules), gives it exclusive CPUs when its pool pins and its request is a
// whole number of CPUs, grows its pool's shared CPUs by RCF × its request,
// and returns its settings. Refusals are *AdmissionError wrapping
// ErrNotAllowed, ErrUnknownPool or ErrNoExclusiveCPUs; on refusal nothing
// changes.
func (s *State) Admit(req ContainerRequest) (Admission, error) {
	if _, dup := s.byID[req.ID]; dup {
		return Admission{}, fmt.Errorf("isolation: container %s of pod %s is already admitted", req.ID, req.pod())
	}
	cl, err := s.cfg.Classify(&req)
	if err != nil {
		return Admission{}, err
	}
	p := s.poolByName(cl.Pool)
	var excl cpuset.CPUSet
	if n := wholeCPUs(&req); p.cfg.ExclusiveCores && n > 0 {
		excl, err = s.takeExclusive(p, n, cpuset.CPUSet{})
		if err != nil {
			ann := ""
			if v, ok := req.Annotations[s.cfg.Classification.Annotation]; ok {
				ann = s.cfg.Classification.Annotation + "=" + v
			}
			return Admission{}, &AdmissionError{Container: req.ID, Pod: req.pod(), Pool: p.cfg.Name, Annotation: ann,
				Err: ErrNoExclusiveCPUs, Detail: err.Error()}
		}
	}
	return s.place(req, p, excl, cl.Route), nil
}

// Restore re-admits a container found running after a restart, in the pool
// recorded for it (the plugin reads it back from its annotations) and with
// the exclusive CPUs it had. It does not classify again: a pool chosen once
// stays, as long as the current configuration would still admit the
// container there.
//
// The record is not trusted further than that. The runtime hands Strata's
// own annotations back exactly as it hands back any a pod or a CRI client
// wrote under the same keys, so Restore treats the recorded pool as a
// request: it passes the same admission check as an annotation (allow-list
// and no-promotion; see Classify). Recorded exclusive CPUs are kept only
// when the pool pins exclusive cores, the container's request is that
// many whole CPUs, the CPUs are usable and free, and the container runs on
// exactly them now (when its cpuset is known). A forged record therefore
// gains nothing a fresh admission would not give, except the choice of
// which free CPUs — and only CPUs it already runs on.
//
// A refusal is an *AdmissionError (ErrUnknownPool, ErrNotAllowed,
// ErrNoExclusiveCPUs); the caller then admits the container afresh with
// Admit. On refusal nothing changes.
func (s *State) Restore(req ContainerRequest, pool string, exclusive cpuset.CPUSet) (Admission, error) {
	if _, dup := s.byID[req.ID]; dup {
		return Admission{}, fmt.Errorf("isolation: container %s of pod %s is already admitted", req.ID, req.pod())
	}
	p := s.poolByName(pool)
	if p == nil {
		return Admission{}, &AdmissionError{Container: req.ID, Pod: req.pod(), Pool: pool, Err: ErrUnknownPool,
			Allowed: s.cfg.allowedPools(&req), Detail: "recorded pool does not exist in the configuration"}
	}
	if detail := s.cfg.gate(&req, p.cfg, true); detail != "" {
		return Admission{}, &AdmissionError{Container: req.ID, Pod: req.pod(), Pool: pool, Err: ErrNotAllowed,
			Allowed: s.cfg.allowedPools(&req), Detail: "recorded pool: " + detail}
	}
	var excl cpuset.CPUSet
	if exclusive.Size() > 0 {
		refuse := func(format string, args ...any) (Admission, error) {
			return Admission{}, &AdmissionError{Container: req.ID, Pod: req.pod(), Pool: pool, Err: ErrNoExclusiveCPUs,
				Detail: fmt.Sprintf("recorded exclusive CPUs %s: ", exclusive) + fmt.Sprintf(format, args...)}
		}
		switch n := wholeCPUs(&req); {
		case !p.cfg.ExclusiveCores:
			return refuse("pool %q does not pin exclusive cores", pool)
		case n != exclusive.Size():
			return refuse("the container requests %d millicores, not %d whole CPUs", req.CPURequest(), exclusive.Size())
		case !exclusive.IsSubsetOf(s.usable):
			return refuse("not all usable (usable: %s)", s.usable)
		case req.CurrentCPUs.Size() > 0 && !req.CurrentCPUs.Equals(exclusive):
			return refuse("the container runs on %s", req.CurrentCPUs)
		}
		var err error
		excl, err = s.takeExclusive(p, exclusive.Size(), exclusive)
		if err != nil {
			return refuse("%v", err)
		}
	}
	if excl.Size() == 0 && req.CurrentCPUs.Size() > 0 && p.rank < len(s.pools)-1 {
		s.adopt(p, req.CurrentCPUs)
	}
	return s.place(req, p, excl, routeRestored), nil
}

// adopt moves the CPUs a restored shared member runs on from the lowest
// pool (where every unclaimed CPU sits after NewState) into its pool, as
// far as the lowest pool's floor allows. CPUs already claimed by another
// pool or an exclusive member stay where they are.
func (s *State) adopt(p *poolState, cpus cpuset.CPUSet) {
	low := s.lowest()
	take := cpus.Intersection(low.shared)
	if n := min(take.Size(), low.shared.Size()-s.hardFloor(low)); n < take.Size() {
		if n <= 0 {
			return
		}
		var err error
		if take, err = s.topo.Grow(p.all, take, n); err != nil {
			return
		}
	}
	if take.Size() == 0 {
		return
	}
	low.shared = low.shared.Difference(take)
	low.gen++
	s.refresh(low)
	p.shared = p.shared.Union(take)
	p.gen++
	p.grownAtAdmission = true
	s.refresh(p)
}

const routeRestored = "restored"

// wholeCPUs returns the CPU request in whole CPUs, or 0 when it is not whole.
func wholeCPUs(r *ContainerRequest) int {
	m := r.CPURequest()
	if m <= 0 || m%1000 != 0 {
		return 0
	}
	return int(m / 1000)
}

// takeExclusive takes n CPUs for an exclusive member of p: from the lowest
// pool's shared CPUs first (above its floor), then from the next pool up,
// never from p or a higher pool. When exact is not empty it must be taken
// as is (restore).
func (s *State) takeExclusive(p *poolState, n int, exact cpuset.CPUSet) (cpuset.CPUSet, error) {
	// Work out how many each lower pool can give.
	var within cpuset.CPUSet
	if exact.Size() > 0 {
		within = exact
	} else {
		// Candidates: the CPUs each pool can give above its floor, lowest
		// pool first; a pool further up is only added when the ones below
		// cannot cover n. Which CPUs a pool gives is the topology's
		// choice (Shrink keeps the pool compact).
		avail := 0
		for j := len(s.pools) - 1; j >= p.rank && avail < n; j-- {
			q := s.pools[j]
			give := q.shared.Size() - s.admissionFloor(q)
			if give <= 0 {
				continue
			}
			if give < q.shared.Size() {
				cand, err := s.topo.Shrink(q.shared, cpuset.CPUSet{}, give)
				if err != nil {
					return cpuset.CPUSet{}, fmt.Errorf("choosing CPUs pool %q can give: %w", q.cfg.Name, err)
				}
				within = within.Union(cand)
			} else {
				within = within.Union(q.shared)
			}
			avail += give
		}
		if avail < n {
			return cpuset.CPUSet{}, fmt.Errorf("%d CPUs wanted, %d can be taken from this and lower pools above their floors", n, avail)
		}
	}
	got, err := s.alloc.TakeExclusive(n, strcpuset.TakeOptions{Within: within})
	if err != nil {
		return cpuset.CPUSet{}, err
	}
	if exact.Size() > 0 && !got.Equals(exact) {
		_ = s.alloc.Release(got)
		return cpuset.CPUSet{}, fmt.Errorf("allocator returned %s for %s", got, exact)
	}
	for _, q := range s.pools {
		if q.shared.Intersection(got).Size() > 0 {
			q.shared = q.shared.Difference(got)
			q.gen++
			s.refresh(q)
		}
	}
	return got, nil
}

// hardFloor is the fewest shared CPUs a pool keeps: its minCPUs (at least
// 1) while it has shared members; the lowest pool keeps minCPUs while
// colocation is on, even before batch members arrive. A lowest pool with
// minCPUs 0 may give its last CPU to a busy higher pool; its members then
// borrow (see memberView).
func (s *State) hardFloor(p *poolState) int {
	if p.rank == len(s.pools)-1 {
		if s.cfg.Colocation.Disabled {
			return 0
		}
		return p.cfg.MinCPUs
	}
	if p.sharedMembers == 0 {
		return 0
	}
	return max(p.cfg.MinCPUs, 1)
}

// admissionFloor is what a pool keeps when an admission takes CPUs from
// it: its hard floor, and for an online pool also RCF.min × its requests —
// an arriving container must not squeeze a running pool below the share of
// requests it is promised (load-driven preemption may, later, under a
// protection level).
func (s *State) admissionFloor(q *poolState) int {
	f := s.hardFloor(q)
	if q.rank < len(s.pools)-1 && q.requestMilli > 0 {
		f = max(f, ceilEps(q.cfg.RCF.Min*float64(q.requestMilli)/1000))
	}
	return f
}

func (s *State) place(req ContainerRequest, p *poolState, excl cpuset.CPUSet, route string) Admission {
	c := &containerState{req: req, pool: p.rank, exclusive: excl}
	c.req.Annotations = maps.Clone(req.Annotations) // the caller may reuse its maps
	c.req.Labels = maps.Clone(req.Labels)
	c.base = s.baseSettings(p, &c.req)
	c.applied = c.base
	if p.rank == len(s.pools)-1 && s.cfg.Colocation.Disabled && s.cfg.Colocation.WhenDisabled != WhenDisabledEvict {
		// Colocation is off: a batch member starts suspended rather than
		// running for a period first.
		c.applied = suspendedSettings(c.base)
		c.suspended = true
	}
	var changed []*poolState
	if excl.Size() > 0 {
		p.exclusive = p.exclusive.Union(excl)
		p.exclMembers++
		s.refresh(p)
		for _, q := range s.pools {
			if q != p {
				changed = append(changed, q)
			}
		}
	} else {
		// Grow the shared CPUs by RCF × request, so the pool's RCF does not
		// drop because a member arrived. An empty pool starts at RCF max.
		rcf := p.cfg.RCF.Max
		if p.requestMilli > 0 && p.rank < len(s.pools)-1 {
			rcf = math.Min(math.Max(float64(p.shared.Size())*1000/float64(p.requestMilli), p.cfg.RCF.Min), p.cfg.RCF.Max)
		}
		p.sharedMembers++
		p.requestMilli += req.CPURequest()
		// A restored member with known CPUs brought its pool's CPUs along
		// (adopt): only the floor is topped up, so a restart moves nothing.
		adopted := route == routeRestored && req.CurrentCPUs.Size() > 0
		if adopted && p.rank < len(s.pools)-1 {
			if want := s.hardFloor(p) - p.shared.Size(); want > 0 {
				changed = s.growFromLower(p, want)
			}
		} else if p.rank < len(s.pools)-1 {
			target := ceilEps(rcf * float64(p.requestMilli) / 1000)
			want := max(target, s.hardFloor(p)) - p.shared.Size()
			if want > 0 {
				changed = s.growFromLower(p, want)
			}
		}
	}
	s.containers = append(s.containers, c)
	s.byID[req.ID] = len(s.containers) - 1
	s.version++

	a := Admission{ID: req.ID, Pool: p.cfg.Name, Route: route, Exclusive: excl.Size() > 0, Settings: c.applied}
	if a.Exclusive {
		a.CPUs = excl
	} else {
		a.CPUs, _, c.cpusGen = s.memberView(p)
	}
	a.Mems = s.topo.MemsFor(a.CPUs)
	c.appliedC = a.CPUs
	if a.Exclusive {
		c.cpusGen = math.MaxUint64
	}
	if route == routeRestored {
		// What a running container really has is not known for sure: the
		// next Decide reconciles its settings, and its CPUs unless they
		// are (still) what it reported running on.
		c.cpusGen = 0
		c.appliedC = req.CurrentCPUs
		c.applied = Settings{}
		c.suspended = false
	}
	if len(changed) > 0 {
		a.Updates = s.updatesFor(c, "cpus taken for "+req.ID)
	}
	return a
}

// growFromLower moves up to k CPUs into p's shared set: from the lowest
// pool above its floor first, then the next pool up. Returns the pools
// that changed.
func (s *State) growFromLower(p *poolState, k int) []*poolState {
	var changed []*poolState
	for j := len(s.pools) - 1; j > p.rank && k > 0; j-- {
		q := s.pools[j]
		give := min(k, q.shared.Size()-s.admissionFloor(q))
		if give <= 0 {
			continue
		}
		add, err := s.topo.Grow(p.all, q.shared, give)
		if err != nil || add.Size() == 0 {
			continue
		}
		q.shared = q.shared.Difference(add)
		q.gen++
		s.refresh(q)
		p.shared = p.shared.Union(add)
		k -= add.Size()
		changed = append(changed, q)
	}
	if len(changed) > 0 {
		p.gen++
		p.grownAtAdmission = true
		s.refresh(p)
		changed = append(changed, p)
	}
	return changed
}

// updatesFor returns CPU changes for the shared members (except skip) whose
// CPUs changed, and records them as applied.
func (s *State) updatesFor(skip *containerState, reason string) []ContainerChange {
	// A member's CPUs change with its own pool's, or, while its pool has
	// none, with those of the pool it borrows from: compare generations of
	// the member view (computed once per pool) rather than filtering by pool.
	type view struct {
		cpus, mems cpuset.CPUSet
		gen        uint64
	}
	views := make([]view, len(s.pools))
	for k, p := range s.pools {
		views[k].cpus, views[k].mems, views[k].gen = s.memberView(p)
	}
	var out []ContainerChange
	for _, c := range s.containers {
		if c == skip || c.exclusive.Size() > 0 {
			continue
		}
		p := s.pools[c.pool]
		cpus, mems, gen := views[c.pool].cpus, views[c.pool].mems, views[c.pool].gen
		if c.cpusGen == gen || cpus.Size() == 0 {
			continue
		}
		c.cpusGen = gen
		c.appliedC = cpus
		out = append(out, ContainerChange{ID: c.req.ID, Pool: p.cfg.Name, CPUs: cpus, Mems: mems,
			Settings: c.applied, Fields: FieldCPUs | FieldMems, Reason: reason})
	}
	return out
}

// Remove forgets a container. Its exclusive CPUs return to the lowest pool;
// the returned changes give them to that pool's members. A shared pool
// keeps its size until the next Decide shrinks it by load. Removing an
// unknown container is not an error (the runtime may report it twice).
func (s *State) Remove(id string) []ContainerChange {
	i, ok := s.byID[id]
	if !ok {
		return nil
	}
	c := s.containers[i]
	p := s.pools[c.pool]
	last := len(s.containers) - 1
	s.containers[i] = s.containers[last]
	s.byID[s.containers[i].req.ID] = i
	s.containers = s.containers[:last]
	delete(s.byID, id)
	s.version++
	if c.exclusive.Size() > 0 {
		_ = s.alloc.Release(c.exclusive)
		p.exclusive = p.exclusive.Difference(c.exclusive)
		p.exclMembers--
		s.refresh(p)
		low := s.lowest()
		low.shared = low.shared.Union(c.exclusive)
		low.gen++
		s.refresh(low)
		return s.updatesFor(nil, "exclusive CPUs of "+id+" returned")
	}
	p.sharedMembers--
	p.requestMilli -= c.req.CPURequest()
	return nil
}

// ContainerInfo is a read-only view of a container.
type ContainerInfo struct {
	ID, Pod   string
	Pool      string
	Exclusive cpuset.CPUSet
	CPUs      cpuset.CPUSet // as last applied
	Request   int64         // CPU request, millicores
	// Memory request and limit in bytes (limit ≤ 0: none).
	MemoryRequest, MemoryLimit int64
	Settings                   Settings // as last applied
	// Downgraded, Suspended, Evicting: protection state.
	Downgraded, Suspended, Evicting bool
}

// Containers lists the containers, sorted by ID.
func (s *State) Containers() []ContainerInfo {
	out := make([]ContainerInfo, 0, len(s.containers))
	for _, c := range s.containers {
		out = append(out, ContainerInfo{ID: c.req.ID, Pod: c.req.pod(), Pool: s.pools[c.pool].cfg.Name,
			Exclusive: c.exclusive, CPUs: c.appliedC, Request: c.req.CPURequest(), Settings: c.applied,
			MemoryRequest: c.req.MemoryRequest, MemoryLimit: c.req.MemoryLimit,
			Downgraded: c.downgrade, Suspended: c.suspended, Evicting: c.evicting})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PoolInfo is a read-only view of a pool.
type PoolInfo struct {
	Name      string
	Priority  int
	Shared    cpuset.CPUSet
	Exclusive cpuset.CPUSet
	CPUs      cpuset.CPUSet
	Mems      cpuset.CPUSet
	Members   int
	Request   int64   // CPU requests of shared members, millicores
	RCF       float64 // len(Shared) / requests (0 without requests)
	Level     int     // protection level, -1: none
	Resizes   int     // resizes committed so far
	// Predicted peak usage of shared members (cores).
	Predicted float64
}

// Pools lists the pools by priority, highest first.
func (s *State) Pools() []PoolInfo {
	out := make([]PoolInfo, 0, len(s.pools))
	for _, p := range s.pools {
		info := PoolInfo{Name: p.cfg.Name, Priority: p.cfg.Priority, Shared: p.shared, Exclusive: p.exclusive,
			CPUs: p.all, Mems: p.mems, Members: p.sharedMembers + p.exclMembers, Request: p.requestMilli,
			Level: p.level, Resizes: p.resizes}
		if p.requestMilli > 0 {
			info.RCF = float64(p.shared.Size()) * 1000 / float64(p.requestMilli)
		}
		if !s.cfg.Predictor.Disabled {
			info.Predicted = p.pred.Percentile(s.cfg.Predictor.Percentile)
		}
		out = append(out, info)
	}
	return out
}

// memberView returns the CPUs the shared members of pool p run on, their
// NUMA nodes, and a generation that changes whenever that set does.
//
// A pool with CPUs of its own runs its members on them. A pool with members
// but no CPUs — on a node too small for every pool to hold one, or when a
// lowest pool with minCPUs 0 gave its last CPU to a busy higher pool —
// borrows: its members run on the CPUs of the nearest lower pool that has
// some (lower priority, so the borrower wins the contention), else of the
// nearest higher one. A borrowing batch member keeps its profile (idle
// scheduling, minimum weight), so it only gets cycles nobody above wants.
func (s *State) memberView(p *poolState) (cpuset.CPUSet, cpuset.CPUSet, uint64) {
	src := lender(p.rank, len(s.pools), func(j int) int { return s.pools[j].shared.Size() })
	if src < 0 {
		return s.noLender()
	}
	q := s.pools[src]
	mems := q.mems
	if src != p.rank {
		mems = s.topo.MemsFor(q.shared)
	}
	return q.shared, mems, viewGen(p.rank, src, q.gen)
}

// noLender is the member view when no pool has shared CPUs (every usable
// CPU is exclusive): the reserved CPUs, or nothing.
func (s *State) noLender() (cpuset.CPUSet, cpuset.CPUSet, uint64) {
	if s.reserved.Size() == 0 {
		return cpuset.New(), cpuset.New(), math.MaxUint64 - 1
	}
	return s.reserved, s.topo.MemsFor(s.reserved), math.MaxUint64 - 1
}

// lender picks the pool whose shared CPUs the members of pool k run on:
// k when it has CPUs, else the nearest lower pool with CPUs, else the
// nearest higher one; -1 when none has any. size(j) is pool j's CPU count.
func lender(k, n int, size func(int) int) int {
	if size(k) > 0 {
		return k
	}
	for j := k + 1; j < n; j++ {
		if size(j) > 0 {
			return j
		}
	}
	for j := k - 1; j >= 0; j-- {
		if size(j) > 0 {
			return j
		}
	}
	return -1
}

// viewGen tells member views apart: a pool's own generation, or, when it
// borrows, the lender's generation tagged with the lender's rank, so a
// change of lender or of the lender's CPUs is a new generation.
func viewGen(k, src int, gen uint64) uint64 {
	if src == k {
		return gen
	}
	return gen | uint64(src+1)<<56
}

// Unapplied records that fields of a committed change to container id did
// not reach it (the container refused a write, the runtime dropped an
// update): the state no longer counts them as applied, and the next Decide
// plans them again. Unknown containers are ignored.
func (s *State) Unapplied(id string, f Fields) {
	idx, ok := s.byID[id]
	if !ok || f == 0 {
		return
	}
	c := s.containers[idx]
	if f&(FieldCPUs|FieldMems) != 0 {
		c.cpusGen, c.appliedC = 0, cpuset.CPUSet{}
		f &^= FieldCPUs | FieldMems
	}
	c.failed |= f
}

// Evicted records how a committed eviction ended. Commit marks the
// action's container as being evicted (no further changes, not chosen
// again); the evictor may take another candidate instead (a pod of lower
// Kubernetes priority, one no disruption budget protects) or none at all
// (every candidate protected, a dry run, an error). evicted lists the
// containers actually on their way out: they are marked, and proposed, if
// not among them, is an ordinary member again. The eviction interval
// still counts from the attempt. Unknown containers are ignored.
func (s *State) Evicted(proposed string, evicted ...string) {
	if i, ok := s.byID[proposed]; ok {
		s.containers[i].evicting = false
	}
	for _, id := range evicted {
		if i, ok := s.byID[id]; ok {
			s.containers[i].evicting = true
		}
	}
}

// Reserved returns the CPUs kept for the system.
func (s *State) Reserved() cpuset.CPUSet { return s.reserved }

// ErrStalePlan: Commit was given a plan made before the state last changed
// (Admit, Restore, Remove or another Commit came in between). Decide again.
var ErrStalePlan = errors.New("isolation: plan is stale: the state changed after Decide; decide again")
