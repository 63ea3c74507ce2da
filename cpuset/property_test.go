package cpuset_test

import (
	"errors"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	kcpuset "k8s.io/utils/cpuset"
)

func shapeNames() []string {
	var names []string
	for n := range cpusettest.All() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func randomSubset(r *rand.Rand, s kcpuset.CPUSet, p float64) kcpuset.CPUSet {
	var ids []int
	for _, id := range s.List() {
		if r.Float64() < p {
			ids = append(ids, id)
		}
	}
	return kcpuset.New(ids...)
}

// allocModel checks an Allocator against a plain model of its state.
type allocModel struct {
	t      *testing.T
	topo   *cpuset.Topology
	a      *cpuset.Allocator
	usable kcpuset.CPUSet
	free   kcpuset.CPUSet
	taken  []kcpuset.CPUSet
}

func (m *allocModel) take(n int, opts cpuset.TakeOptions) {
	t := m.t
	got, err := m.a.TakeExclusive(n, opts)
	avail := m.free
	if opts.Within.Size() > 0 {
		avail = avail.Intersection(opts.Within)
	}
	if err != nil {
		var ie *cpuset.InsufficientCPUsError
		if !errors.As(err, &ie) || !errors.Is(err, cpuset.ErrInsufficientCPUs) {
			t.Fatalf("TakeExclusive(%d, %+v): unexpected error %v", n, opts, err)
		}
		if !opts.Spread && opts.Kind == "" && (ie.Available != avail.Size() || avail.Size() >= n) {
			t.Fatalf("TakeExclusive(%d): %v, but %d CPUs were available", n, err, avail.Size())
		}
		if !m.a.Free().Equals(m.free) {
			t.Fatalf("failed TakeExclusive(%d) changed the free set", n)
		}
		return
	}
	if got.Size() != n {
		t.Fatalf("TakeExclusive(%d) = %s: %d CPUs", n, got, got.Size())
	}
	if !got.IsSubsetOf(avail) {
		t.Fatalf("TakeExclusive(%d, %+v) = %s, outside the available %s (overlap, offline, isolated or reserved)", n, opts, got, avail)
	}
	nodes := m.topo.MemsFor(got)
	if opts.Spread {
		cores := map[string]bool{}
		for _, id := range got.List() {
			c, _ := m.topo.CPU(id)
			if cores[c.Siblings.String()] {
				t.Fatalf("spread TakeExclusive(%d) = %s has two threads of core %s", n, got, c.Siblings)
			}
			cores[c.Siblings.String()] = true
		}
	} else if opts.Kind == "" && !m.topo.Hybrid() && nodes.Size() > 1 {
		// Locality: never span nodes when one node could hold the request.
		for _, node := range m.topo.NUMANodes() {
			if node.CPUs.Intersection(avail).Size() >= n {
				t.Fatalf("TakeExclusive(%d) = %s spans nodes %s, but node %d had %d available", n, got, nodes, node.ID, node.CPUs.Intersection(avail).Size())
			}
		}
	}
	m.free = m.free.Difference(got)
	m.taken = append(m.taken, got)
	m.check()
}

func (m *allocModel) release(i int) {
	before := m.free
	x := m.taken[i]
	if err := m.a.Release(x); err != nil {
		m.t.Fatalf("Release(%s): %v", x, err)
	}
	m.free = m.free.Union(x)
	m.taken = append(m.taken[:i], m.taken[i+1:]...)
	if !m.free.Equals(before.Union(x)) || !m.a.Free().Equals(m.free) {
		m.t.Fatalf("after Release(%s) free = %s, want %s", x, m.a.Free(), m.free)
	}
	// Releasing it again must fail and change nothing.
	if err := m.a.Release(x); err == nil {
		m.t.Fatalf("second Release(%s) succeeded", x)
	}
	m.check()
}

func (m *allocModel) check() {
	if !m.a.Free().Equals(m.free) {
		m.t.Fatalf("Free() = %s, model %s", m.a.Free(), m.free)
	}
	if !m.a.Allocated().Equals(m.usable.Difference(m.free)) {
		m.t.Fatalf("Allocated() = %s, want %s", m.a.Allocated(), m.usable.Difference(m.free))
	}
}

func runAllocatorOps(t *testing.T, topo *cpuset.Topology, r *rand.Rand, ops int) {
	opts := cpuset.AllocatorOptions{AllowIsolated: r.IntN(2) == 0}
	if r.IntN(2) == 0 {
		opts.Reserved = randomSubset(r, topo.Online(), 0.05)
	}
	a, err := cpuset.NewAllocator(topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	usable := topo.Online().Difference(opts.Reserved)
	if !opts.AllowIsolated {
		usable = usable.Difference(topo.Isolated())
	}
	m := &allocModel{t: t, topo: topo, a: a, usable: usable, free: usable}
	m.check()
	maxN := max(1, topo.Online().Size()/4)
	for i := 0; i < ops; i++ {
		if len(m.taken) > 0 && r.IntN(3) == 0 {
			m.release(r.IntN(len(m.taken)))
			continue
		}
		var to cpuset.TakeOptions
		to.Spread = r.IntN(5) == 0
		if r.IntN(4) == 0 {
			to.Within = randomSubset(r, topo.Online(), 0.5)
		}
		if topo.Hybrid() && r.IntN(3) == 0 {
			to.Kind = []string{cpuset.KindPerformance, cpuset.KindEfficiency}[r.IntN(2)]
		}
		m.take(1+r.IntN(maxN), to)
	}
	for len(m.taken) > 0 {
		m.release(0)
	}
	if !a.Free().Equals(usable) {
		t.Fatalf("after releasing everything Free() = %s, want %s", a.Free(), usable)
	}
}

// TestAllocatorProperties runs random take/release sequences on every
// fixture: allocations never overlap and never include offline, isolated
// (unless allowed) or reserved CPUs; a failed take changes nothing; a
// release restores the exact free set; spread takes one thread per core;
// an allocation spans NUMA nodes only when no single node could hold it.
func TestAllocatorProperties(t *testing.T) {
	for _, name := range shapeNames() {
		t.Run(name, func(t *testing.T) {
			topo := fixture(t, cpusettest.All()[name])
			for seed := uint64(1); seed <= 4; seed++ {
				runAllocatorOps(t, topo, rand.New(rand.NewPCG(seed, 7)), 200)
			}
		})
	}
}

// TestResizeProperties checks Grow, Shrink and Carve on random pools:
// Grow only adds candidates that are not yet in the pool, Shrink only
// removes unprotected CPUs of the pool (so an exclusive allocation inside a
// pool is never moved), Carve's pools are disjoint, sized as asked and
// taken from the given set.
func TestResizeProperties(t *testing.T) {
	for _, name := range shapeNames() {
		t.Run(name, func(t *testing.T) {
			topo := fixture(t, cpusettest.All()[name])
			r := rand.New(rand.NewPCG(11, 13))
			online := topo.Online()
			for i := 0; i < 200; i++ {
				current := randomSubset(r, online, r.Float64())
				exclusive := randomSubset(r, current, 0.3)
				candidates := randomSubset(r, online.Difference(current), r.Float64())
				if n := candidates.Size(); n > 0 {
					k := r.IntN(n + 1)
					got, err := topo.Grow(current, candidates, k)
					if err != nil {
						t.Fatalf("Grow(%s, %s, %d): %v", current, candidates, k, err)
					}
					if got.Size() != k || !got.IsSubsetOf(candidates) {
						t.Fatalf("Grow(%s, %s, %d) = %s", current, candidates, k, got)
					}
					// NUMA compactness: a pool that can grow inside its own
					// nodes does not reach into others.
					own := topo.MemsFor(current)
					inOwn := 0
					for _, id := range candidates.List() {
						if c, _ := topo.CPU(id); own.Contains(c.NUMANode) {
							inOwn++
						}
					}
					if own.Size() > 0 && inOwn >= k && !topo.MemsFor(got).IsSubsetOf(own) {
						t.Fatalf("Grow(%s, %s, %d) = %s reaches nodes %s beyond the pool's %s", current, candidates, k, got, topo.MemsFor(got), own)
					}
					if _, err := topo.Grow(current, candidates, n+1); !errors.Is(err, cpuset.ErrInsufficientCPUs) {
						t.Fatalf("Grow beyond the candidates: %v", err)
					}
				}
				if n := current.Difference(exclusive).Size(); n > 0 {
					k := r.IntN(n + 1)
					got, err := topo.Shrink(current, exclusive, k)
					if err != nil {
						t.Fatalf("Shrink(%s, %s, %d): %v", current, exclusive, k, err)
					}
					if got.Size() != k || !got.IsSubsetOf(current) || got.Intersection(exclusive).Size() != 0 {
						t.Fatalf("Shrink(%s, protected %s, %d) = %s", current, exclusive, k, got)
					}
				}
				from := randomSubset(r, online, r.Float64())
				var sizes []int
				left := from.Size()
				for j := r.IntN(4); j >= 0 && left > 0; j-- {
					s := r.IntN(left + 1)
					sizes = append(sizes, s)
					left -= s
				}
				pools, err := topo.Carve(from, sizes)
				if err != nil {
					t.Fatalf("Carve(%s, %v): %v", from, sizes, err)
				}
				seen := kcpuset.New()
				for j, p := range pools {
					if p.Size() != sizes[j] || !p.IsSubsetOf(from) || p.Intersection(seen).Size() != 0 {
						t.Fatalf("Carve(%s, %v) pool %d = %s (seen %s)", from, sizes, j, p, seen)
					}
					seen = seen.Union(p)
				}
			}
		})
	}
}

// FuzzAllocator drives an allocator on the 2-socket fixture with
// fuzzer-chosen operations and checks the same invariants as
// TestAllocatorProperties.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{4, 1, 200, 3, 9, 0x81, 2})
	f.Add([]byte{40, 41, 0xff, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		topo := fixture(t, cpusettest.OfflineCPUs)
		if len(ops) > 64 {
			ops = ops[:64]
		}
		a := newAllocator(t, topo, cpuset.AllocatorOptions{Reserved: kcpuset.New(0)})
		usable := topo.Online().Difference(topo.Isolated()).Difference(kcpuset.New(0))
		m := &allocModel{t: t, topo: topo, a: a, usable: usable, free: usable}
		for _, op := range ops {
			switch {
			case op >= 0xf0 && len(m.taken) > 0:
				m.release(int(op-0xf0) % len(m.taken))
			default:
				n := int(op&0x0f) + 1
				m.take(n, cpuset.TakeOptions{Spread: op&0x80 != 0})
			}
		}
	})
}
