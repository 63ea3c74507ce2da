package isolation

import (
	"fmt"
	"math"
	"sort"
	"time"

	"k8s.io/utils/cpuset"
)

// Decide computes this period's plan from the observations and the state.
// It is pure: it does not change st and does no I/O; the same inputs give
// the same plan. Apply the plan, then call st.Commit(plan).
func Decide(obs Observations, st *State, now time.Time) Plan {
	var p Plan
	DecideInto(&p, &obs, st, now)
	return p
}

// DecideInto is Decide writing into dst, reusing dst's slices: a loop that
// keeps one Plan allocates almost nothing per period.
func DecideInto(dst *Plan, obs *Observations, st *State, now time.Time) {
	d := decider{p: dst, obs: obs, st: st, now: now}
	d.run()
}

// Unexported scratch lives in the Plan so it is reused with it.
type planScratch struct {
	want      []int
	floor     []int
	modes     []uint8 // per pool: bit i = action rank i active
	shared    []cpuset.CPUSet
	taken     [][]int // taken[k][j]: CPUs pool k took from pool j
	touched   []bool
	reasons   []string
	synced    []int // restored containers found on the right CPUs
	memory    []int64
	file      []int64
	throttled []float64
	cand      []candidate
	reclaimed []bool
	gen       []uint64
	// memberCPUs, memberMems, memberGen: what each pool's shared members
	// run on after the plan (see State.memberView), and its generation.
	memberCPUs []cpuset.CPUSet
	memberMems []cpuset.CPUSet
	memberGen  []uint64
	state      []uint8 // per change: container flags after apply
}

type candidate struct {
	idx  int
	rank int
	val  int64
}

type decider struct {
	p   *Plan
	obs *Observations
	st  *State
	now time.Time
}

const (
	flagDowngraded uint8 = 1 << iota
	flagSuspended
)

func (d *decider) run() {
	p, st := d.p, d.st
	n := len(st.pools)
	p.Time = d.now
	p.version = st.version
	p.Pools = p.Pools[:0]
	p.Changes = p.Changes[:0]
	p.Actions = p.Actions[:0]
	p.Warnings = p.Warnings[:0]
	sc := &p.scratch
	sc.want = resize(sc.want, n)
	sc.floor = resize(sc.floor, n)
	sc.modes = resize(sc.modes, n)
	sc.shared = resize(sc.shared, n)
	sc.memory = resize(sc.memory, n)
	sc.file = resize(sc.file, n)
	sc.throttled = resize(sc.throttled, n)
	sc.gen = resize(sc.gen, n)
	sc.memberCPUs = resize(sc.memberCPUs, n)
	sc.memberMems = resize(sc.memberMems, n)
	sc.memberGen = resize(sc.memberGen, n)
	sc.touched = resize(sc.touched, n)
	sc.state = sc.state[:0]
	if len(sc.taken) < n {
		sc.taken = make([][]int, n)
	}
	for k := range n {
		sc.taken[k] = resize(sc.taken[k], n)
	}
	sc.reclaimed = resize(sc.reclaimed, len(st.containers))

	for _, ps := range st.pools {
		p.Pools = append(p.Pools, PoolPlan{
			Name: ps.cfg.Name, Priority: ps.cfg.Priority,
			CPUs: ps.all, Shared: ps.shared, Exclusive: ps.exclusive, Mems: ps.mems,
			PrevSize: ps.shared.Size(), Level: -1,
		})
	}
	d.aggregate()
	d.levels()
	d.targets()
	d.flows()
	d.dimensions()
	d.containers()
	d.protect()
	d.capacity()
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// aggregate sums members' usage, requests and memory per pool.
func (d *decider) aggregate() {
	p, st, sc := d.p, d.st, &d.p.scratch
	for _, c := range st.containers {
		u := d.obs.Containers[c.req.ID]
		if !(u.CPU >= 0 && u.CPU < math.MaxFloat32) { // NaN, negative or absurd: a bad sample counts as idle
			u.CPU = 0
		}
		pp := &p.Pools[c.pool]
		pp.Members++
		if c.exclusive.Size() > 0 {
			pp.ExclusiveUsage += u.CPU
		} else {
			pp.SharedMembers++
			pp.Usage += u.CPU
			pp.Request += float64(c.req.CPURequest()) / 1000
			pp.RunQueueP50, pp.RunQueueP99 = max(pp.RunQueueP50, u.RunQueueP50), max(pp.RunQueueP99, u.RunQueueP99)
			sc.throttled[c.pool] += u.Throttled
		}
		sc.memory[c.pool] += u.MemoryBytes
		sc.file[c.pool] += u.FileBytes
		pp.addMember(&u)
	}
	d.resolvePressure()
	for k := range p.Pools {
		pp := &p.Pools[k]
		switch {
		case pp.PrevSize > 0:
			pp.Load = pp.Usage / float64(pp.PrevSize)
		case pp.Usage > 0:
			pp.Load = math.Inf(1)
		}
		if pp.SharedMembers > 0 {
			sc.throttled[k] /= float64(pp.SharedMembers)
		}
		if !st.cfg.Predictor.Disabled {
			pp.Predicted = st.pools[k].pred.Percentile(st.cfg.Predictor.Percentile)
		}
	}
}

// Threshold that raised a level, for the reason text.
type trigger struct {
	what      string
	value, at float64
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (d *decider) met(l *ProtectionLevel, k int) (trigger, bool) {
	pp, node := &d.p.Pools[k], &d.obs.Node
	w := &l.When
	// The lowest pool is meant to fill its CPUs: its CPU load is no alarm.
	if w.CPULoad > 0 && pp.PrevSize > 0 && k < len(d.p.Pools)-1 && pp.Load >= w.CPULoad {
		return trigger{"cpu load", pp.Load, w.CPULoad}, true
	}
	if w.MemoryUsage > 0 && node.MemoryTotal > 0 {
		if u := float64(node.MemoryUsed) / float64(node.MemoryTotal); u >= w.MemoryUsage {
			return trigger{"memory usage", u, w.MemoryUsage}, true
		}
	}
	psi := &pp.Pressure
	// Waiting for a CPU is what hurts latency; the lowest pool is meant to.
	if rq := w.RunQueueP99.Duration; rq > 0 && k < len(d.p.Pools)-1 && pp.RunQueueP99 >= rq {
		return trigger{"run-queue delay p99 (ms)", ms(pp.RunQueueP99), ms(rq)}, true
	}
	// A throttled pool's CPU PSI measures its own quota, not interference.
	if w.CPUSome > 0 && d.p.scratch.throttled[k] < 0.05 && psi.CPU.Some >= w.CPUSome {
		return trigger{"cpu PSI some", psi.CPU.Some, w.CPUSome}, true
	}
	if w.MemorySome > 0 && psi.Memory.Some >= w.MemorySome {
		return trigger{"memory PSI some", psi.Memory.Some, w.MemorySome}, true
	}
	if w.MemoryFull > 0 && psi.Memory.Full >= w.MemoryFull {
		return trigger{"memory PSI full", psi.Memory.Full, w.MemoryFull}, true
	}
	return trigger{}, false
}

// levels sets each pool's protection level: the highest whose thresholds
// are met; a lower one only after cooldown. Mode actions (release, preempt,
// cpuDowngrade) are announced when a level is entered.
func (d *decider) levels() {
	p, st, sc := d.p, d.st, &d.p.scratch
	levels := st.cfg.Protection.Levels
	for k := range p.Pools {
		pp, ps := &p.Pools[k], st.pools[k]
		raw := -1
		var why trigger
		for i := len(levels) - 1; i >= 0; i-- {
			if t, ok := d.met(&levels[i], k); ok {
				raw, why = i, t
				break
			}
		}
		lvl := raw
		if raw >= ps.level {
			pp.levelMet = raw >= 0
		} else if ps.level >= 0 && d.now.Sub(ps.levelMetAt) < st.cfg.Protection.Cooldown.Duration {
			lvl = ps.level // hold during cooldown
		}
		pp.Level = lvl
		if lvl >= 0 {
			pp.LevelName = levels[lvl].Name
			for i := 0; i <= lvl; i++ {
				for _, a := range levels[i].Actions {
					sc.modes[k] |= 1 << a.rank()
				}
			}
		}
		// Mode actions act on lower pools: the lowest pool has none.
		if lvl > ps.level && raw == lvl && k < len(p.Pools)-1 {
			for i := ps.level + 1; i <= lvl; i++ {
				for _, a := range levels[i].Actions {
					if a == ActionReclaimPageCache || a == ActionEvict {
						continue // announced per target
					}
					p.Actions = append(p.Actions, Action{Kind: a, Pool: pp.Name, Level: levels[i].Name,
						Reason: fmt.Sprintf("pool %s entered level %s: %s %.2f ≥ %.2f", pp.Name, levels[lvl].Name, why.what, why.value, why.at)})
				}
			}
		}
	}
}

func (d *decider) mode(k int, a ActionKind) bool { return d.p.scratch.modes[k]&(1<<a.rank()) != 0 }

// anyAbove reports whether a pool of higher priority than k is in a level
// with action a.
func (d *decider) anyAbove(k int, a ActionKind) bool {
	for i := 0; i < k; i++ {
		if d.mode(i, a) {
			return true
		}
	}
	return false
}

func ceilEps(x float64) int  { return int(math.Ceil(x - 1e-9)) }
func floorEps(x float64) int { return int(math.Floor(x + 1e-9)) }

// targets applies the control law to every pool but the lowest.
func (d *decider) targets() {
	p, st, sc := d.p, d.st, &d.p.scratch
	cfg := st.cfg
	last := len(p.Pools) - 1
	for k := 0; k < last; k++ {
		pp, ps := &p.Pools[k], st.pools[k]
		sc.floor[k] = st.hardFloor(ps)
		n := pp.PrevSize
		if pp.SharedMembers == 0 {
			sc.want[k] = 0
			pp.Target = 0
			continue
		}
		b := ps.cfg.Band
		mid := b.Mid()
		keep := (b.Low + mid) / 2
		u := pp.Usage
		lo, hi := sc.floor[k], math.MaxInt
		if pp.Request > 0 {
			lo = max(lo, ceilEps(ps.cfg.RCF.Min*pp.Request))
			hi = max(floorEps(ps.cfg.RCF.Max*pp.Request), sc.floor[k])
		}
		ideal := ceilEps(u / mid)
		if !cfg.Predictor.Disabled {
			peak := math.Max(pp.Predicted, u)
			ideal = max(ideal, min(ceilEps(peak/b.High), floorEps(u/keep)))
		}
		want := n
		switch {
		case n < lo || n > hi:
			want = ideal
		case pp.Load > b.High:
			want = max(ideal, n)
		case d.waiting(k):
			want = max(ideal, n+1) // as if above the band: by one CPU at least
		case pp.Load < b.Low:
			want = min(ideal, n)
		}
		want = min(max(want, lo), hi)
		pp.Target = want
		if want > n && !d.mode(k, ActionPreempt) {
			step := max(cfg.Resize.MaxGrowCores, ceilEps(cfg.Resize.MaxGrowPercent/100*float64(n)))
			want = min(want, n+step)
		}
		if want < n && !d.anyAbove(k, ActionRelease) {
			if ps.grownAtAdmission && cfg.Resize.ShrinkInterval.Duration > 0 || !ps.lastResize.IsZero() && d.now.Sub(ps.lastResize) < cfg.Resize.ShrinkInterval.Duration {
				want = n
			} else {
				want = max(want, n-cfg.Resize.MaxShrinkCores)
			}
		}
		sc.want[k] = want
	}
	sc.floor[last] = st.hardFloor(st.pools[last])
}

// waiting applies resize.waiting to pool k (not the lowest): its load is
// in the top of its band and its members wait for a CPU. It records the
// signal in the pool's plan.
func (d *decider) waiting(k int) bool {
	pp, w := &d.p.Pools[k], &d.st.cfg.Resize.Waiting
	b := d.st.pools[k].cfg.Band
	if w.Disabled || pp.PrevSize == 0 || pp.Load < b.High-w.NearTop*(b.High-b.Low)-1e-9 {
		return false
	}
	switch {
	case w.RunQueueP99.Duration > 0 && pp.RunQueueP99 >= w.RunQueueP99.Duration:
		pp.Waiting = fmt.Sprintf("run-queue delay p99 %.2f ms ≥ %.2f ms", ms(pp.RunQueueP99), ms(w.RunQueueP99.Duration))
	case w.CPUSome > 0 && d.p.scratch.throttled[k] < 0.05 && pp.Pressure.CPU.Some >= w.CPUSome:
		pp.Waiting = fmt.Sprintf("cpu PSI some %.2f ≥ %.2f", pp.Pressure.CPU.Some, w.CPUSome)
	default:
		return false
	}
	return true
}

// flows moves CPUs: first every shrinking pool gives to the lowest pool,
// then growing pools, highest priority first, take from the lowest pool
// (above its floor), then — when preempting — from the next pools up, never
// from a higher pool.
func (d *decider) flows() {
	p, st, sc := d.p, d.st, &d.p.scratch
	last := len(p.Pools) - 1
	for k := range p.Pools {
		sc.shared[k] = p.Pools[k].Shared
	}
	for k := 0; k < last; k++ {
		if give := sc.shared[k].Size() - sc.want[k]; give > 0 {
			rm, err := st.topo.Shrink(sc.shared[k], cpuset.CPUSet{}, give)
			if err != nil {
				p.Warnings = append(p.Warnings, fmt.Sprintf("pool %s: shrink by %d: %v", p.Pools[k].Name, give, err))
				continue
			}
			sc.shared[k] = sc.shared[k].Difference(rm)
			sc.shared[last] = sc.shared[last].Union(rm)
			sc.touched[k], sc.touched[last] = true, true
		}
	}
	for k := 0; k < last; k++ {
		need := sc.want[k] - sc.shared[k].Size()
		if need <= 0 {
			continue
		}
		preempt := d.mode(k, ActionPreempt)
		for j := last; j > k && need > 0; j-- {
			keep := sc.floor[j]
			if j < last && !preempt {
				keep = max(keep, sc.want[j])
			}
			give := min(need, sc.shared[j].Size()-keep)
			if give <= 0 {
				continue
			}
			add, err := st.topo.Grow(sc.shared[k].Union(p.Pools[k].Exclusive), sc.shared[j], give)
			if err != nil {
				p.Warnings = append(p.Warnings, fmt.Sprintf("pool %s: grow by %d from %s: %v", p.Pools[k].Name, give, p.Pools[j].Name, err))
				continue
			}
			sc.shared[j] = sc.shared[j].Difference(add)
			sc.shared[k] = sc.shared[k].Union(add)
			sc.taken[k][j] += add.Size()
			sc.touched[k], sc.touched[j] = true, true
			need -= add.Size()
		}
	}
	for k := range p.Pools {
		pp, ps := &p.Pools[k], st.pools[k]
		sc.gen[k] = ps.gen
		pp.Size = sc.shared[k].Size()
		if sc.touched[k] {
			pp.Resized = true
			sc.gen[k] = ps.gen + 1
			pp.Shared = sc.shared[k]
			pp.CPUs = pp.Shared.Union(pp.Exclusive)
			pp.Mems = st.topo.MemsFor(pp.CPUs)
		}
		if k == last {
			pp.Target = pp.Size
		}
		if pp.Request > 0 {
			pp.RCF = float64(pp.Size) / pp.Request
		}
		if pp.Resized || (k < last && pp.Target != pp.Size) {
			pp.Reason = d.reason(k)
		}
	}
}

// reason explains a pool's resize in the terms of the control law.
func (d *decider) reason(k int) string {
	p, st, sc := d.p, d.st, &d.p.scratch
	pp, ps := &p.Pools[k], st.pools[k]
	b := ps.cfg.Band
	last := len(p.Pools) - 1
	var s string
	switch {
	case k == last:
		s = fmt.Sprintf("lowest pool keeps the rest: %d → %d CPUs", pp.PrevSize, pp.Size)
	case pp.SharedMembers == 0:
		s = fmt.Sprintf("no shared members: %d → %d CPUs", pp.PrevSize, pp.Size)
	default:
		where := "inside"
		if pp.Load > b.High {
			where = "above"
		} else if pp.Waiting != "" {
			where = "near the top of" // and waiting: see below
		} else if pp.Load < b.Low {
			where = "below"
		}
		s = fmt.Sprintf("load %.3f %s band %.2f–%.2f (usage %.2f on %d CPUs, predicted %.2f, request %.2f): target %d, now %d",
			pp.Load, where, b.Low, b.High, pp.Usage, pp.PrevSize, pp.Predicted, pp.Request, pp.Target, pp.Size)
		if pp.Waiting != "" {
			s += "; members waiting for a CPU (" + pp.Waiting + "): grown as if above the band"
		}
		if pp.Request > 0 {
			switch rcf := ps.cfg.RCF; {
			case pp.Target == max(floorEps(rcf.Max*pp.Request), sc.floor[k]) && pp.Target < ceilEps(pp.Usage/b.Mid()):
				s += fmt.Sprintf(" (capped by rcf.max %.2f × request)", rcf.Max)
			case pp.Target == max(ceilEps(rcf.Min*pp.Request), sc.floor[k]) && pp.Target > ceilEps(pp.Usage/b.Mid()):
				s += fmt.Sprintf(" (held up by rcf.min %.2f × request)", rcf.Min)
			}
		}
	}
	for j := last; j > k; j-- {
		if t := sc.taken[k][j]; t > 0 {
			verb := "took"
			if j < last {
				verb = "preempted"
			}
			s += fmt.Sprintf("; %s %d from %s", verb, t, p.Pools[j].Name)
		}
	}
	if k < last && pp.Size < pp.Target {
		s += fmt.Sprintf("; short of target by %d (step limit or lower pools at their floors)", pp.Target-pp.Size)
	} else if k < last && pp.Size > pp.Target {
		s += fmt.Sprintf("; shrink held by %s", shrinkLimit(st, ps, d.now))
	}
	return s
}

func shrinkLimit(st *State, ps *poolState, now time.Time) string {
	if ps.grownAtAdmission && st.cfg.Resize.ShrinkInterval.Duration > 0 {
		return "shrinkInterval: the pool grew for a new member, whose usage is not known yet"
	}
	if !ps.lastResize.IsZero() && now.Sub(ps.lastResize) < st.cfg.Resize.ShrinkInterval.Duration {
		return fmt.Sprintf("shrinkInterval %s (last resize %s ago)", st.cfg.Resize.ShrinkInterval.Duration, now.Sub(ps.lastResize))
	}
	return fmt.Sprintf("maxShrinkCores %d", st.cfg.Resize.MaxShrinkCores)
}

// containers lists each member's changes: new CPUs when its pool changed,
// settings when downgrade or suspension starts or ends.
func (d *decider) containers() {
	p, st, sc := d.p, d.st, &d.p.scratch
	d.memberViews()
	why := d.changeReasons()
	sc.synced = sc.synced[:0]
	for i, c := range st.containers {
		if c.evicting {
			continue
		}
		ch, flags, ok := d.change(i, c, &why)
		if !ok {
			continue
		}
		p.Changes = append(p.Changes, ch)
		sc.state = append(sc.state, flags)
		if flags&flagSuspended != 0 && !c.suspended {
			p.Actions = append(p.Actions, Action{Kind: ActionSuspend, Pool: ch.Pool, Container: c.req.ID, TargetPool: ch.Pool, Reason: ch.Reason})
		}
	}
	if why.evictBatch {
		d.evictBatch()
	}
}

// memberViews sets, for every pool, the CPUs and memory nodes its shared
// members run on after the flows (its own, or a lender's: see
// State.memberView) and the generation of that view.
func (d *decider) memberViews() {
	p, st, sc := d.p, d.st, &d.p.scratch
	for k := range p.Pools {
		src := lender(k, len(p.Pools), func(j int) int { return sc.shared[j].Size() })
		if src < 0 {
			sc.memberCPUs[k], sc.memberMems[k], sc.memberGen[k] = st.noLender()
			continue
		}
		sc.memberCPUs[k] = sc.shared[src]
		if src == k && p.Pools[k].Resized {
			sc.memberMems[k] = p.Pools[k].Mems
		} else if src == k {
			sc.memberMems[k] = st.pools[k].mems
		} else {
			sc.memberMems[k] = st.topo.MemsFor(sc.shared[src])
		}
		sc.memberGen[k] = viewGen(k, src, sc.gen[src])
	}
}

// changeContext is what every member's change this period shares: which
// pools are downgraded or suspended, and the reasons, one string per pool
// and period.
type changeContext struct {
	downgradeBelow  int // pools below this index are downgraded
	downgradeReason string
	suspend         bool // colocation off: the lowest pool is suspended
	evictBatch      bool // colocation off: the lowest pool is evicted
}

func (d *decider) changeReasons() changeContext {
	p, st, sc := d.p, d.st, &d.p.scratch
	why := changeContext{downgradeBelow: len(p.Pools)}
	for k := range p.Pools {
		if d.mode(k, ActionCPUDowngrade) {
			why.downgradeBelow = k
			why.downgradeReason = "cpuDowngrade: pool " + p.Pools[k].Name + " at level " + p.Pools[k].LevelName
			break
		}
	}
	sc.reasons = resize(sc.reasons, len(p.Pools))
	for k := range p.Pools {
		if p.Pools[k].Resized {
			sc.reasons[k] = "pool " + p.Pools[k].Name + " resized"
		}
	}
	off := st.cfg.Colocation.Disabled
	why.suspend = off && st.cfg.Colocation.WhenDisabled != WhenDisabledEvict
	why.evictBatch = off && !why.suspend
	return why
}

// change is member i's change this period, with its protection flags
// after apply; ok is false when nothing changes.
func (d *decider) change(i int, c *containerState, why *changeContext) (ContainerChange, uint8, bool) {
	p, st, sc := d.p, d.st, &d.p.scratch
	k := c.pool
	pp := &p.Pools[k]
	f, cpus := d.cpuChange(i, c)
	want := c.base
	var flags uint8
	reason := ""
	if k == len(p.Pools)-1 && why.suspend {
		flags |= flagSuspended
		want = suspendedSettings(want)
		reason = "colocation disabled: suspended"
	} else if k > why.downgradeBelow {
		flags |= flagDowngraded
		want = downgradedSettings(want)
		reason = why.downgradeReason
	}
	want = ioProtectedSettings(want, &pp.IO)
	f |= want.Diff(c.applied) | c.failed
	if f == 0 {
		return ContainerChange{}, 0, false
	}
	if reason == "" {
		switch {
		case f&FieldIOPriority != 0 && want.IOPriority != c.base.IOPriority:
			reason = "IO protection: IO priority " + want.IOPriority + " (" + pp.IO.Reason + ")"
		case f&FieldIOPriority != 0 && c.applied.IOPriority != c.base.IOPriority:
			reason = "IO protection " + pp.IO.Reason + ": IO priority " + want.IOPriority
		case f&FieldCPUs != 0 && pp.Resized:
			reason = sc.reasons[k]
		case f&FieldCPUs != 0:
			reason = "cpuset reconciled"
		default:
			reason = "restored after protection"
		}
	}
	if f&FieldCPUs != 0 && cpus.Size() == 0 {
		f &^= FieldCPUs | FieldMems // no CPUs anywhere: leave the cpuset as it is
		cpus = cpuset.CPUSet{}
	}
	if f == 0 {
		return ContainerChange{}, 0, false
	}
	ch := ContainerChange{ID: c.req.ID, Pool: pp.Name, Settings: want, Fields: f, Reason: reason}
	if f&FieldCPUs != 0 {
		ch.CPUs = cpus
		ch.Mems = sc.memberMems[k]
		if c.exclusive.Size() > 0 {
			ch.Mems = st.topo.MemsFor(cpus)
		}
	}
	return ch, flags, true
}

// cpuChange says whether member i needs a new cpuset, and which: its
// exclusive CPUs once, or its pool's member view when that changed. A
// restored member already on the right CPUs is only recorded as in sync.
func (d *decider) cpuChange(i int, c *containerState) (Fields, cpuset.CPUSet) {
	sc := &d.p.scratch
	var f Fields
	var cpus cpuset.CPUSet
	if c.exclusive.Size() > 0 {
		if c.cpusGen == 0 {
			f |= FieldCPUs | FieldMems
			cpus = c.exclusive
		}
	} else if c.cpusGen != sc.memberGen[c.pool] {
		f |= FieldCPUs | FieldMems
		cpus = sc.memberCPUs[c.pool]
	}
	if c.cpusGen == 0 && f&FieldCPUs != 0 && c.appliedC.Equals(cpus) {
		f &^= FieldCPUs | FieldMems
		sc.synced = append(sc.synced, i)
	}
	return f, cpus
}

// evictBatch: with colocation off and whenDisabled evict, every member of
// the lowest pool is evicted.
func (d *decider) evictBatch() {
	p, st := d.p, d.st
	last := len(p.Pools) - 1
	for _, c := range st.containers {
		if c.pool == last && !c.evicting {
			p.Actions = append(p.Actions, Action{Kind: ActionEvict, Pool: p.Pools[last].Name, Container: c.req.ID,
				TargetPool: p.Pools[last].Name, Reason: "colocation disabled: batch members are evicted"})
		}
	}
}

// protect issues the one-shot protection actions: page-cache reclaim and
// eviction.
func (d *decider) protect() {
	p, st := d.p, d.st
	cfg := &st.cfg.Protection
	last := len(p.Pools) - 1
	evicted := false
	for k := range p.Pools {
		pp := &p.Pools[k]
		if pp.Level < 0 {
			continue
		}
		if d.mode(k, ActionReclaimPageCache) {
			d.reclaim(k)
		}
		if d.mode(k, ActionEvict) && !evicted && (st.lastEvict.IsZero() || d.now.Sub(st.lastEvict) >= cfg.EvictInterval.Duration) {
			// Victim: a member of the lowest pool below k that has members
			// (k itself when k is the lowest), the one using most memory.
			from := k + 1
			if k == last {
				from = k
			}
			best := -1
			var bestMem int64
			for j := last; j >= from && best < 0; j-- {
				for i, c := range st.containers {
					if c.pool != j || c.evicting {
						continue
					}
					m := d.obs.Containers[c.req.ID].MemoryBytes
					if best < 0 || m > bestMem || (m == bestMem && c.req.ID < st.containers[best].req.ID) {
						best, bestMem = i, m
					}
				}
			}
			if best >= 0 {
				c := st.containers[best]
				evicted = true
				p.Actions = append(p.Actions, Action{Kind: ActionEvict, Pool: pp.Name, Level: pp.LevelName,
					Container: c.req.ID, TargetPool: st.pools[c.pool].cfg.Name,
					Reason: fmt.Sprintf("pool %s at level %s: evict lowest-priority member %s of pool %s (memory %d MiB)",
						pp.Name, pp.LevelName, c.req.ID, st.pools[c.pool].cfg.Name, bestMem>>20)})
			}
		}
	}
}

// minReclaimBytes: smaller page caches are not worth a reclaim.
const minReclaimBytes = 16 << 20

// reclaim picks page-cache reclaim targets for pool k: members of
// reclaimable pools at or below k, lowest pool first and most cache first,
// until the node is back under the lowest memory threshold.
func (d *decider) reclaim(k int) {
	p, st, sc := d.p, d.st, &d.p.scratch
	node := &d.obs.Node
	pp := &p.Pools[k]
	minUse := 0.0
	for _, l := range st.cfg.Protection.Levels {
		if l.When.MemoryUsage > 0 && (minUse == 0 || l.When.MemoryUsage < minUse) {
			minUse = l.When.MemoryUsage
		}
	}
	need := int64(0)
	if minUse > 0 && node.MemoryTotal > 0 {
		need = node.MemoryUsed - int64(minUse*float64(node.MemoryTotal))
	}
	sc.cand = sc.cand[:0]
	for i, c := range st.containers {
		if c.pool < k || c.evicting || sc.reclaimed[i] || !st.pools[c.pool].cfg.Profile.PageCache.Reclaimable {
			continue
		}
		if !c.reclaimAt.IsZero() && d.now.Sub(c.reclaimAt) < st.cfg.Protection.ReclaimInterval.Duration {
			continue
		}
		if f := d.obs.Containers[c.req.ID].FileBytes; f >= minReclaimBytes {
			sc.cand = append(sc.cand, candidate{idx: i, rank: c.pool, val: f})
		}
	}
	sort.Slice(sc.cand, func(a, b int) bool {
		x, y := sc.cand[a], sc.cand[b]
		if x.rank != y.rank {
			return x.rank > y.rank
		}
		if x.val != y.val {
			return x.val > y.val
		}
		return st.containers[x.idx].req.ID < st.containers[y.idx].req.ID
	})
	freed := int64(0)
	for i, cd := range sc.cand {
		if i > 0 && freed >= need {
			break
		}
		c := st.containers[cd.idx]
		sc.reclaimed[cd.idx] = true
		freed += cd.val
		p.Actions = append(p.Actions, Action{Kind: ActionReclaimPageCache, Pool: pp.Name, Level: pp.LevelName,
			Container: c.req.ID, TargetPool: st.pools[c.pool].cfg.Name, Bytes: cd.val,
			Reason: fmt.Sprintf("pool %s at level %s: reclaim %d MiB page cache of %s in pool %s (node needs %d MiB back)",
				pp.Name, pp.LevelName, cd.val>>20, c.req.ID, st.pools[c.pool].cfg.Name, max(need, 0)>>20)})
	}
}

// capacity fills the batch capacity view.
func (d *decider) capacity() {
	p, st := d.p, d.st
	last := len(p.Pools) - 1
	b := &p.Batch
	*b = BatchCapacity{NodeCPUs: float64(st.usable.Size()), BatchPoolCPUs: p.Pools[last].Size, Colocation: !st.cfg.Colocation.Disabled}
	for k := 0; k < last; k++ {
		b.OnlineUsage += p.Pools[k].Usage + p.Pools[k].ExclusiveUsage
	}
	if !st.cfg.Predictor.Disabled {
		b.OnlinePredicted = st.onlinePred.Percentile(st.cfg.Predictor.Percentile)
	}
	q, from := st.watermark.at(d.now)
	b.Watermark, b.WatermarkFrom = q.of(b.NodeCPUs), from
	if b.Colocation {
		b.CPUs = math.Max(0, b.NodeCPUs-math.Max(b.OnlineUsage, b.OnlinePredicted)-b.Watermark)
	}
}
