package cpuset

import "sort"

// Locality levels, tightest first. A group at level L holds CPUs that share
// everything from L up: an L3 group is the CPUs of one L3 cache inside one
// kind, one NUMA node, one die and one package. Taking the intersection at
// every level keeps the tree a tree on machines where caches and nodes do
// not nest the same way: with Intel sub-NUMA clustering one L3 spans two
// nodes, so its groups are the two node halves; on AMD EPYC several L3
// groups (CCX) sit inside one node.
const (
	levelCore = iota
	levelL2
	levelL3
	levelKind
	levelNode
	levelDie
	levelPackage
	levelMachine
	numLevels
)

type group struct {
	level    int8
	lo, hi   int32 // CPUs are tree.order[lo:hi]
	parent   int32
	end      int32 // groups[g+1:end] is g's subtree (pre-order)
	node     int32 // node index of the group's first CPU
	maxCore  int32 // most threads in one core of the group
	children []int32
	// nodeGroups, for groups above the NUMA level, are the node-level
	// groups inside: spans at those levels count NUMA nodes, not dies or
	// packages.
	nodeGroups []int32
}

// tree is the locality tree built once per topology. Groups that would
// hold the same CPUs as their only child are merged into one group carrying
// the tightest level, so a 2-CPU VM is one L3 group with two cores, not a
// chain of seven single-child groups.
type tree struct {
	groups []group
	order  []int32 // CPU ids in tree order
	// region[i][L] is the group that represents CPU t.cpus[i] at level L.
	region [][numLevels]int32
}

func kindRank(kind string) int {
	switch kind {
	case KindPerformance:
		return 0
	case KindEfficiency:
		return 2
	}
	return 1
}

func buildTree(t *Topology) tree {
	n := len(t.cpus)
	coreKey := make([]int, n)
	for i, c := range t.cpus {
		coreKey[i] = c.Siblings.List()[0]
	}
	key := func(i int, level int) int {
		c := &t.cpus[i]
		switch level {
		case levelCore:
			return coreKey[i]
		case levelL2:
			return c.L2
		case levelL3:
			return c.L3
		case levelKind:
			return kindRank(c.Kind)
		case levelNode:
			return t.nodeIdx[c.NUMANode]
		case levelDie:
			return c.Die
		case levelPackage:
			return c.Package
		}
		return 0
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		for l := levelPackage; l >= levelCore; l-- {
			ka, kb := key(idx[a], l), key(idx[b], l)
			if ka != kb {
				return ka < kb
			}
		}
		return t.cpus[idx[a]].ID < t.cpus[idx[b]].ID
	})
	tr := tree{order: make([]int32, n), region: make([][numLevels]int32, n)}
	for i, ci := range idx {
		tr.order[i] = int32(t.cpus[ci].ID)
	}
	splits := func(level, lo, hi int) bool {
		k := key(idx[lo], level)
		for i := lo + 1; i < hi; i++ {
			if key(idx[i], level) != k {
				return true
			}
		}
		return false
	}
	var make func(level, lo, hi int, parent int32) int32
	make = func(level, lo, hi int, parent int32) int32 {
		for level > levelCore && !splits(level-1, lo, hi) {
			level--
		}
		g := int32(len(tr.groups))
		tr.groups = append(tr.groups, group{level: int8(level), lo: int32(lo), hi: int32(hi), parent: parent,
			node: int32(t.nodeIdx[t.cpus[idx[lo]].NUMANode])})
		if level == levelCore {
			tr.groups[g].maxCore = int32(hi - lo)
		} else {
			var children []int32
			for a := lo; a < hi; {
				b := a + 1
				k := key(idx[a], level-1)
				for b < hi && key(idx[b], level-1) == k {
					b++
				}
				children = append(children, make(level-1, a, b, g))
				a = b
			}
			tr.groups[g].children = children
			for _, c := range children {
				if m := tr.groups[c].maxCore; m > tr.groups[g].maxCore {
					tr.groups[g].maxCore = m
				}
			}
		}
		tr.groups[g].end = int32(len(tr.groups))
		return g
	}
	make(levelMachine, 0, n, -1)

	for g := range tr.groups {
		gr := &tr.groups[g]
		if gr.level <= levelNode {
			continue
		}
		for d := int32(g) + 1; d < gr.end; d++ {
			if tr.groups[d].level <= levelNode && tr.groups[tr.groups[d].parent].level > levelNode {
				gr.nodeGroups = append(gr.nodeGroups, d)
			}
		}
	}

	// Regions: walk up from each leaf; a group stands for its own level and
	// every level below its parent's.
	for g := range tr.groups {
		gr := &tr.groups[g]
		if gr.children != nil {
			continue
		}
		for i := gr.lo; i < gr.hi; i++ {
			ci := t.idx[tr.order[i]]
			cur := int32(g)
			for l := 0; l < numLevels; l++ {
				for p := tr.groups[cur].parent; p >= 0 && int(tr.groups[p].level) <= l; p = tr.groups[cur].parent {
					cur = p
				}
				tr.region[ci][l] = cur
			}
		}
	}
	return tr
}
