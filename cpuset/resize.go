package cpuset

import (
	"fmt"
	"sort"

	"k8s.io/utils/cpuset"
)

// Grow chooses k CPUs from candidates to add to current so that the grown
// set stays compact: first the free threads of current's own cores, then
// CPUs in current's L2 and L3 groups, its core kind, its NUMA nodes, dies
// and packages, and only then elsewhere, nearest NUMA node first. Inside
// each of those regions it picks like TakeExclusive (whole cores, best
// fit). CPUs of current are never moved: the result only adds. If fewer
// than k usable candidates exist (online, not already in current) it
// returns an *InsufficientCPUsError.
func (t *Topology) Grow(current, candidates cpuset.CPUSet, k int) (cpuset.CPUSet, error) {
	if k < 0 {
		return cpuset.CPUSet{}, fmt.Errorf("cpuset: cannot grow by %d CPUs: the count must not be negative", k)
	}
	p := newPlanner(t)
	p.avail.fromCPUSet(candidates)
	p.avail.and(t.onlineMask)
	cur := newMask(t.maxID)
	cur.fromCPUSet(current)
	cur.and(t.onlineMask)
	p.avail.andNot(cur)
	if have := p.avail.count(); have < k {
		return cpuset.CPUSet{}, &InsufficientCPUsError{Requested: k, Available: have}
	}
	if k == 0 {
		return cpuset.CPUSet{}, nil
	}
	curIDs := cur.appendIDs(nil)
	if len(curIDs) == 0 {
		p.pick(0, k)
		return p.out.toCPUSet(nil), nil
	}
	tr := &t.tree
	overlap := make([]int32, len(tr.groups))
	for _, id := range curIDs {
		countRegions(tr, t.idx[id], overlap, 1)
		p.noteNode(tr.groups[tr.region[t.idx[id]][levelCore]].node)
	}
	rem := k
	var regions []int32
	for l := 0; l < numLevels && rem > 0; l++ {
		regions = regions[:0]
		for _, id := range curIDs {
			g := tr.region[t.idx[id]][l]
			if !containsGroup(regions, g) {
				regions = append(regions, g)
			}
		}
		// The region holding most of current first: that is where the
		// pool's weight already is.
		sort.Slice(regions, func(i, j int) bool {
			if overlap[regions[i]] != overlap[regions[j]] {
				return overlap[regions[i]] > overlap[regions[j]]
			}
			return regions[i] < regions[j]
		})
		p.evaluate(0, 1)
		for _, g := range regions {
			m := min(rem, int(p.free[g]))
			if m > 0 {
				p.pick(g, m)
				rem -= m
			}
			if rem == 0 {
				break
			}
		}
	}
	return p.out.toCPUSet(nil), nil
}

// Shrink chooses k CPUs of current, outside protected, to remove so that
// what remains stays compact: it releases the loosest CPUs first. A CPU's
// looseness is read top-down: the fewer of current's CPUs share its
// package, then die, NUMA node, core kind, L3, L2 and core, the sooner it
// goes; ties release the highest id. CPUs of current that are not online
// go first of all. protected CPUs (an exclusive allocation inside the
// pool, say) are never chosen. If current\protected has fewer than k CPUs
// it returns an *InsufficientCPUsError.
func (t *Topology) Shrink(current, protected cpuset.CPUSet, k int) (cpuset.CPUSet, error) {
	if k < 0 {
		return cpuset.CPUSet{}, fmt.Errorf("cpuset: cannot shrink by %d CPUs: the count must not be negative", k)
	}
	removable := current.Difference(protected)
	if removable.Size() < k {
		return cpuset.CPUSet{}, &InsufficientCPUsError{Requested: k, Available: removable.Size()}
	}
	var out []int
	var cand []int32 // cpu indices
	for _, id := range removable.List() {
		if len(out) < k && (id > t.maxID || t.idx[id] < 0) {
			out = append(out, id)
		}
	}
	for _, id := range removable.List() {
		if id <= t.maxID && t.idx[id] >= 0 {
			cand = append(cand, t.idx[id])
		}
	}
	tr := &t.tree
	count := make([]int32, len(tr.groups))
	for _, id := range current.UnsortedList() {
		if id <= t.maxID && t.idx[id] >= 0 {
			countRegions(tr, t.idx[id], count, 1)
		}
	}
	looser := func(a, b int32) bool {
		for l := numLevels - 1; l >= 0; l-- {
			ca, cb := count[tr.region[a][l]], count[tr.region[b][l]]
			if ca != cb {
				return ca < cb
			}
		}
		return t.cpus[a].ID > t.cpus[b].ID
	}
	for len(out) < k {
		bi := 0
		for i := 1; i < len(cand); i++ {
			if looser(cand[i], cand[bi]) {
				bi = i
			}
		}
		ci := cand[bi]
		out = append(out, t.cpus[ci].ID)
		countRegions(tr, ci, count, -1)
		cand[bi] = cand[len(cand)-1]
		cand = cand[:len(cand)-1]
	}
	return cpuset.New(out...), nil
}

// Carve splits from into compact pools of the given sizes, for shared
// pools carved out of what exclusive and reserved CPUs left. Larger pools
// are placed first, each by the same rules as TakeExclusive, so each pool
// is as NUMA-, L3- and core-compact as the remainder allows. The result is
// indexed like sizes. CPUs of from that are not online are ignored.
func (t *Topology) Carve(from cpuset.CPUSet, sizes []int) ([]cpuset.CPUSet, error) {
	total := 0
	for i, s := range sizes {
		if s < 0 {
			return nil, fmt.Errorf("cpuset: pool %d has size %d: sizes must not be negative", i, s)
		}
		total += s
	}
	p := newPlanner(t)
	p.avail.fromCPUSet(from)
	p.avail.and(t.onlineMask)
	if have := p.avail.count(); have < total {
		return nil, &InsufficientCPUsError{Requested: total, Available: have}
	}
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sizes[order[a]] > sizes[order[b]] })
	out := make([]cpuset.CPUSet, len(sizes))
	for _, i := range order {
		p.out.reset()
		p.near = p.near[:0]
		p.pick(0, sizes[i])
		out[i] = p.out.toCPUSet(nil)
	}
	return out, nil
}

// countRegions adds delta to counts of every distinct group representing
// CPU index ci at some level.
func countRegions(tr *tree, ci int32, counts []int32, delta int32) {
	prev := int32(-1)
	for l := 0; l < numLevels; l++ {
		if g := tr.region[ci][l]; g != prev {
			counts[g] += delta
			prev = g
		}
	}
}

func containsGroup(gs []int32, g int32) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}
