package cpuset

import (
	"errors"
	"fmt"
	"sync"

	"k8s.io/utils/cpuset"
)

// AllocatorOptions configure an Allocator.
type AllocatorOptions struct {
	// Reserved CPUs are never handed out (system and kubelet CPUs). They
	// must be online.
	Reserved cpuset.CPUSet
	// AllowIsolated lets isolated and nohz_full CPUs be allocated like any
	// other; by default they are left alone, since their owner placed them
	// outside the scheduler on purpose.
	AllowIsolated bool
}

// TakeOptions shape one exclusive allocation.
type TakeOptions struct {
	// Spread takes at most one thread per physical core, for workloads that
	// want every CPU backed by its own core's execution units. The threads
	// left beside them stay free for others.
	Spread bool
	// Within, when not empty, restricts the choice to these CPUs.
	Within cpuset.CPUSet
	// Kind restricts the choice to one core kind on hybrid machines
	// (KindPerformance or KindEfficiency). When empty, a hybrid machine
	// serves exclusive requests from performance cores while they last.
	Kind string
}

// Allocator hands out exclusive CPUs from one topology and takes them back.
// It is safe for concurrent use.
type Allocator struct {
	t *Topology

	mu        sync.Mutex
	usable    mask // online − reserved − isolated (unless allowed)
	free      mask
	allocated mask
	within    mask
	p         *planner
	ids       []int
}

// NewAllocator returns an allocator over t's online CPUs minus the
// reserved ones (and minus isolated ones unless AllowIsolated).
func NewAllocator(t *Topology, opts AllocatorOptions) (*Allocator, error) {
	a := &Allocator{
		t:         t,
		usable:    newMask(t.maxID),
		free:      newMask(t.maxID),
		allocated: newMask(t.maxID),
		within:    newMask(t.maxID),
		p:         newPlanner(t),
		ids:       make([]int, 0, len(t.cpus)),
	}
	if bad := opts.Reserved.Difference(t.online); bad.Size() > 0 {
		return nil, fmt.Errorf("cpuset: reserved CPUs %s are not online (online: %s)", bad, t.online)
	}
	a.usable.copyFrom(t.onlineMask)
	for _, id := range opts.Reserved.UnsortedList() {
		a.usable.clear(id)
	}
	if !opts.AllowIsolated {
		a.usable.andNot(t.isolatedMask)
	}
	a.free.copyFrom(a.usable)
	return a, nil
}

// Topology returns the topology the allocator works on.
func (a *Allocator) Topology() *Topology { return a.t }

// TakeExclusive allocates n CPUs with the tightest locality (see the
// planner rules in the package documentation). If fewer than n CPUs are
// free (within the restriction), it returns an *InsufficientCPUsError and
// allocates nothing.
func (a *Allocator) TakeExclusive(n int, opts TakeOptions) (cpuset.CPUSet, error) {
	if n <= 0 {
		return cpuset.CPUSet{}, fmt.Errorf("cpuset: cannot take %d CPUs: the count must be positive", n)
	}
	switch opts.Kind {
	case "", KindPerformance, KindEfficiency:
	default:
		return cpuset.CPUSet{}, fmt.Errorf("cpuset: unknown core kind %q (want %q, %q or empty)", opts.Kind, KindPerformance, KindEfficiency)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.p
	p.spread = opts.Spread
	p.avail.copyFrom(a.free)
	if opts.Within.Size() > 0 {
		if outside := a.within.fromCPUSet(opts.Within); len(outside) > 0 {
			return cpuset.CPUSet{}, fmt.Errorf("cpuset: Within names CPUs %v beyond the highest CPU %d", outside, a.t.maxID)
		}
		p.avail.and(a.within)
	}
	switch {
	case opts.Kind == KindPerformance:
		p.avail.and(a.t.perfMask)
	case opts.Kind == KindEfficiency:
		p.avail.andNot(a.t.perfMask)
	}
	if err := a.plan(n, opts.Kind == "" && a.t.hybrid); err != nil {
		return cpuset.CPUSet{}, err
	}
	a.free.andNot(p.out)
	a.allocated.or(p.out)
	return p.out.toCPUSet(a.ids), nil
}

// plan runs the planner for n CPUs from p.avail into p.out. preferPerf
// first tries the performance cores alone.
func (a *Allocator) plan(n int, preferPerf bool) error {
	p := a.p
	p.out.reset()
	p.near = p.near[:0]
	if preferPerf {
		a.within.copyFrom(p.avail)
		p.avail.and(a.t.perfMask)
		if a.capacity() >= n {
			p.pick(0, n)
			return nil
		}
		p.avail.copyFrom(a.within)
	}
	if have := a.capacity(); have < n {
		return &InsufficientCPUsError{Requested: n, Available: have}
	}
	p.pick(0, n)
	return nil
}

// capacity counts what the planner could take from p.avail (in spread
// mode: one per core).
func (a *Allocator) capacity() int {
	p := a.p
	if !p.spread {
		return p.avail.count()
	}
	p.evaluate(0, 1)
	return int(p.free[0])
}

// Release returns CPUs taken by TakeExclusive. Every CPU must currently be
// allocated; otherwise nothing is released.
func (a *Allocator) Release(cpus cpuset.CPUSet) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.within
	if outside := m.fromCPUSet(cpus); len(outside) > 0 {
		return fmt.Errorf("cpuset: cannot release CPUs %v: beyond the highest CPU %d", outside, a.t.maxID)
	}
	if !m.subsetOf(a.allocated) {
		m.andNot(a.allocated)
		return fmt.Errorf("cpuset: cannot release CPUs %s: %w", m.toCPUSet(nil), errNotAllocated)
	}
	a.allocated.andNot(m)
	a.free.or(m)
	return nil
}

var errNotAllocated = errors.New("not allocated")

// Claim marks specific free CPUs as allocated, for rebuilding the
// allocator's state from allocations that already exist (containers found
// running after a restart). Every CPU must be free; otherwise nothing is
// claimed and the error names the CPUs that are not.
func (a *Allocator) Claim(cpus cpuset.CPUSet) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.within
	if outside := m.fromCPUSet(cpus); len(outside) > 0 {
		return fmt.Errorf("cpuset: cannot claim CPUs %v: beyond the highest CPU %d", outside, a.t.maxID)
	}
	if !m.subsetOf(a.free) {
		m.andNot(a.free)
		return fmt.Errorf("cpuset: cannot claim CPUs %s: not free (allocated, reserved, isolated or offline)", m.toCPUSet(nil))
	}
	a.free.andNot(m)
	a.allocated.or(m)
	return nil
}

// Free returns the CPUs still available for exclusive allocation.
func (a *Allocator) Free() cpuset.CPUSet {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.free.toCPUSet(nil)
}

// Allocated returns the CPUs currently allocated.
func (a *Allocator) Allocated() cpuset.CPUSet {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.allocated.toCPUSet(nil)
}

// Usable returns the CPUs the allocator manages: online, not reserved, and
// not isolated unless allowed.
func (a *Allocator) Usable() cpuset.CPUSet {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.usable.toCPUSet(nil)
}
