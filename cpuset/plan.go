package cpuset

import "math"

const noFit = math.MaxInt32

// planner chooses CPUs from avail on one topology's tree. It carries the
// scratch arrays of one selection so that the allocator's hot path does not
// allocate; it is not safe for concurrent use.
//
// The rule it implements, for n CPUs:
//
//  1. Find the tightest group that holds n available CPUs, in this order:
//     whole cores in one core/L2/L3/kind/NUMA node, then single threads in
//     the same, then die, package and machine (whole cores before threads
//     at each). Whole cores win over L3 compactness inside a NUMA node, but
//     a request never leaves a NUMA node just to get whole cores.
//  2. Among equally tight candidates, take the one closest (SLIT distance)
//     to CPUs already chosen, then the one with the fewest available CPUs
//     (best fit, so large holes stay for large requests), then the lowest.
//  3. Inside the group, when no child fits, span the fewest children (NUMA
//     nodes, above the node level): take the child with the most available
//     CPUs whole, until the remainder fits one child, which is chosen by
//     rule 2.
//  4. Single threads come from cores already partly used before a whole
//     free core is broken.
type planner struct {
	t      *Topology
	avail  mask // CPUs that may still be chosen; chosen CPUs are cleared
	out    mask // CPUs chosen
	spread bool // at most one thread per core

	free  []int32 // per group: available CPUs (spread: available cores)
	whole []int32 // per group: CPUs in fully available cores (spread: such cores)
	best  []int32 // per group: best rank achievable inside the group for the current n
	near  []int32 // node indices already holding chosen (or current) CPUs
}

func newPlanner(t *Topology) *planner {
	ng := len(t.tree.groups)
	return &planner{
		t:     t,
		avail: newMask(t.maxID),
		out:   newMask(t.maxID),
		free:  make([]int32, ng),
		whole: make([]int32, ng),
		best:  make([]int32, ng),
		near:  make([]int32, 0, 16),
	}
}

// rank orders candidate groups for n CPUs: lower is tighter.
func (p *planner) rank(g int32, n int) int32 {
	if int(p.free[g]) < n {
		return noFit
	}
	gr := &p.t.tree.groups[g]
	level := int32(gr.level)
	if p.wholeFit(g, n) {
		if level <= levelNode {
			return level
		}
		return 10 + (level-levelDie)*2
	}
	if level <= levelNode {
		return 5 + level
	}
	return 10 + (level-levelDie)*2 + 1
}

// wholeFit reports whether g can give n CPUs as whole cores, apart from a
// remainder smaller than a core.
func (p *planner) wholeFit(g int32, n int) bool {
	per := int(p.t.tree.groups[g].maxCore)
	if p.spread {
		per = 1
	}
	return int(p.whole[g]) >= n-n%per
}

// evaluate recomputes counts and ranks for g's subtree. Groups are stored
// in pre-order, so walking the subtree backwards visits children first.
func (p *planner) evaluate(g int32, n int) {
	tr := &p.t.tree
	for i := tr.groups[g].end - 1; i >= g; i-- {
		gr := &tr.groups[i]
		if gr.children == nil {
			var f int32
			for _, id := range tr.order[gr.lo:gr.hi] {
				if p.avail.has(int(id)) {
					f++
				}
			}
			size := gr.hi - gr.lo
			w := int32(0)
			if f == size {
				w = size
			}
			if p.spread {
				f = min(f, 1)
				w = min(w, 1)
			}
			p.free[i], p.whole[i] = f, w
			p.best[i] = p.rank(i, n)
			continue
		}
		var f, w int32
		b := int32(noFit)
		for _, c := range gr.children {
			f += p.free[c]
			w += p.whole[c]
			b = min(b, p.best[c])
		}
		p.free[i], p.whole[i] = f, w
		p.best[i] = min(b, p.rank(i, n))
	}
}

// distance sums SLIT distances from g's node to the nodes already chosen.
func (p *planner) distance(g int32) int {
	if len(p.near) == 0 {
		return 0
	}
	row := p.t.dist[p.t.tree.groups[g].node]
	d := 0
	for _, n := range p.near {
		d += row[n]
	}
	return d
}

// better reports whether candidate a beats b (b < 0: no candidate yet) by
// rule 2: closer, then fewer available CPUs, then lower.
func (p *planner) better(a, b int32) bool {
	if b < 0 {
		return true
	}
	if da, db := p.distance(a), p.distance(b); da != db {
		return da < db
	}
	if p.free[a] != p.free[b] {
		return p.free[a] < p.free[b]
	}
	return a < b
}

// pick chooses n CPUs inside g; the caller guarantees g holds n available
// CPUs.
func (p *planner) pick(g int32, n int) {
	if n <= 0 {
		return
	}
	p.evaluate(g, n)
	tr := &p.t.tree
	for {
		gr := &tr.groups[g]
		if gr.children == nil {
			p.takeLeaf(g, n)
			return
		}
		own := p.rank(g, n)
		bc := int32(-1)
		for _, c := range gr.children {
			if p.best[c] == noFit {
				continue
			}
			if bc < 0 || p.best[c] < p.best[bc] || (p.best[c] == p.best[bc] && p.better(c, bc)) {
				bc = c
			}
		}
		if bc >= 0 && p.best[bc] <= own {
			g = bc
			continue
		}
		p.span(g, n, p.wholeFit(g, n))
		return
	}
}

// span spreads n CPUs over the fewest children of g (rule 3). Above the
// NUMA level the children considered are the NUMA nodes inside g, so a
// request that must leave one node spans the fewest nodes, wherever they
// are, rather than the fewest packages.
func (p *planner) span(g int32, n int, wholeMode bool) {
	children := p.t.tree.groups[g].children
	if p.t.tree.groups[g].level > levelNode {
		children = p.t.tree.groups[g].nodeGroups
	}
	rem := n
	for rem > 0 {
		fit := int32(-1)
		for _, c := range children {
			if int(p.free[c]) < rem {
				continue
			}
			if wholeMode && !p.wholeFit(c, rem) {
				continue
			}
			if p.better(c, fit) {
				fit = c
			}
		}
		if fit >= 0 {
			p.pick(fit, rem)
			p.noteNode(fit)
			return
		}
		largest := int32(-1)
		for _, c := range children {
			capC, capL := p.free[c], int32(0)
			if wholeMode {
				capC = p.whole[c]
			}
			if largest >= 0 {
				capL = p.free[largest]
				if wholeMode {
					capL = p.whole[largest]
				}
			}
			if capC == 0 {
				continue
			}
			if largest < 0 || capC > capL || (capC == capL && p.distance(c) < p.distance(largest)) {
				largest = c
			}
		}
		if largest < 0 {
			if wholeMode {
				wholeMode = false // only partial cores remain
				continue
			}
			panic("cpuset: planner ran out of CPUs; caller checked availability")
		}
		// Keep the child's counts current instead of marking it used: after
		// its whole cores are gone, its partial cores may still be needed
		// once only partial cores remain anywhere.
		taken := p.takeAll(largest, wholeMode)
		rem -= taken
		p.free[largest] -= int32(taken)
		p.whole[largest] = 0
		p.noteNode(largest)
	}
}

func (p *planner) noteNode(g int32) {
	node := p.t.tree.groups[g].node
	for _, n := range p.near {
		if n == node {
			return
		}
	}
	p.near = append(p.near, node)
}

// takeLeaf takes n available threads of core g, lowest ids first.
func (p *planner) takeLeaf(g int32, n int) {
	tr := &p.t.tree
	gr := &tr.groups[g]
	for _, id := range tr.order[gr.lo:gr.hi] {
		if n == 0 {
			return
		}
		if p.avail.has(int(id)) {
			p.take(int(id))
			n--
		}
	}
}

// takeAll takes every available CPU of g (wholeOnly: only fully available
// cores; spread: one thread per core) and returns how many it took.
func (p *planner) takeAll(g int32, wholeOnly bool) int {
	tr := &p.t.tree
	taken := 0
	for i := g; i < tr.groups[g].end; i++ {
		gr := &tr.groups[i]
		if gr.children != nil {
			continue
		}
		free := 0
		for _, id := range tr.order[gr.lo:gr.hi] {
			if p.avail.has(int(id)) {
				free++
			}
		}
		if free == 0 || (wholeOnly && free != int(gr.hi-gr.lo)) {
			continue
		}
		if p.spread {
			free = 1
		}
		p.takeLeaf(i, free)
		taken += free
	}
	return taken
}

func (p *planner) take(id int) {
	p.avail.clear(id)
	p.out.set(id)
}
