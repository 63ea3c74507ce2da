package cpuset

import (
	"errors"
	"fmt"

	"github.com/strata-nri/strata/cgroup"
	"k8s.io/utils/cpuset"
)

// Apply sets cg's cpuset.cpus and cpuset.mems (cgroup v1 or v2, through
// package cgroup). Both sets must be non-empty: an empty v1 cpuset leaves
// tasks nowhere to run. Nothing is half-applied: if the mems write fails,
// the CPUs are put back.
//
// On cgroup v1 a child's CPUs must stay a subset of its parent's, so a
// cgroup with children cannot shrink below them and a child cannot grow
// beyond its parent; use ApplyTree or ApplyNested to change a parent and
// its children together.
func Apply(cg *cgroup.Cgroup, cpus, mems cpuset.CPUSet) error {
	return ApplyTree(Assignment{Cgroup: cg, CPUs: cpus, Mems: mems})
}

// Assignment is the cpuset one cgroup should end up with, and those of its
// child cgroups.
type Assignment struct {
	Cgroup     *cgroup.Cgroup
	CPUs, Mems cpuset.CPUSet
	Children   []Assignment
}

// ApplyNested applies parent and its direct children; see ApplyTree.
func ApplyNested(parent Assignment, children []Assignment) error {
	parent.Children = append(append([]Assignment(nil), parent.Children...), children...)
	return ApplyTree(parent)
}

// ApplyTree applies a tree of assignments in an order cgroup v1 accepts
// whatever grows and whatever shrinks: first, top-down, every cgroup is
// widened to the union of its old and new sets (a parent before its
// children, so each child's widened set fits inside its parent's); then,
// bottom-up, every cgroup is narrowed to its new set (children before their
// parent, so the parent never drops CPUs a child still holds). Unchanged
// files are not written. Each child's sets must be subsets of its parent's
// new sets. If a write fails, the cgroups already changed are put back the
// same way and the error names the cgroup, file value and cause.
func ApplyTree(root Assignment) error {
	var nodes []*applyNode
	if err := flatten(&root, -1, &nodes); err != nil {
		return err
	}
	for _, n := range nodes {
		var err error
		if n.oldCPUs, err = n.a.Cgroup.CPUSetCPUs(); err != nil {
			return fmt.Errorf("cpuset: read CPUs of %s: %w", n.a.Cgroup.Path(), err)
		}
		if n.oldMems, err = n.a.Cgroup.CPUSetMems(); err != nil {
			return fmt.Errorf("cpuset: read mems of %s: %w", n.a.Cgroup.Path(), err)
		}
		n.curCPUs, n.curMems = n.oldCPUs, n.oldMems
	}
	err := reshape(nodes, func(n *applyNode) (cpuset.CPUSet, cpuset.CPUSet) { return n.a.CPUs, n.a.Mems })
	if err == nil {
		return nil
	}
	if rerr := reshape(nodes, func(n *applyNode) (cpuset.CPUSet, cpuset.CPUSet) { return n.oldCPUs, n.oldMems }); rerr != nil {
		return fmt.Errorf("%w (and restoring the previous cpusets failed: %v)", err, rerr)
	}
	return err
}

type applyNode struct {
	a                *Assignment
	parent           int
	oldCPUs, oldMems cpuset.CPUSet
	curCPUs, curMems cpuset.CPUSet
}

var errEmptyCpuset = errors.New("an empty cpuset leaves its tasks nowhere to run")

// flatten lists the tree in pre-order (parents before children) and
// checks it.
func flatten(a *Assignment, parent int, out *[]*applyNode) error {
	if a.Cgroup == nil {
		return errors.New("cpuset: assignment without a cgroup")
	}
	if a.CPUs.Size() == 0 || a.Mems.Size() == 0 {
		return fmt.Errorf("cpuset: cpus %q mems %q for %s: %w", a.CPUs, a.Mems, a.Cgroup.Path(), errEmptyCpuset)
	}
	if parent >= 0 {
		p := (*out)[parent].a
		if extra := a.CPUs.Difference(p.CPUs); extra.Size() > 0 {
			return fmt.Errorf("cpuset: CPUs %s of %s are not in its parent %s's CPUs %s", extra, a.Cgroup.Path(), p.Cgroup.Path(), p.CPUs)
		}
		if extra := a.Mems.Difference(p.Mems); extra.Size() > 0 {
			return fmt.Errorf("cpuset: mems %s of %s are not in its parent %s's mems %s", extra, a.Cgroup.Path(), p.Cgroup.Path(), p.Mems)
		}
	}
	me := len(*out)
	*out = append(*out, &applyNode{a: a, parent: parent})
	for i := range a.Children {
		if err := flatten(&a.Children[i], me, out); err != nil {
			return err
		}
	}
	return nil
}

// reshape moves every node from its current sets to target's: widen
// top-down, then narrow bottom-up.
func reshape(nodes []*applyNode, target func(*applyNode) (cpuset.CPUSet, cpuset.CPUSet)) error {
	for _, n := range nodes {
		cpus, mems := target(n)
		if err := n.set(n.curCPUs.Union(cpus), n.curMems.Union(mems)); err != nil {
			return err
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if err := n.set(target(n)); err != nil {
			return err
		}
	}
	return nil
}

func (n *applyNode) set(cpus, mems cpuset.CPUSet) error {
	cg := n.a.Cgroup
	if !cpus.Equals(n.curCPUs) {
		if err := cg.SetCPUSetCPUs(cpus); err != nil {
			return fmt.Errorf("cpuset: set CPUs of %s to %q: %w", cg.Path(), cpus, err)
		}
		n.curCPUs = cpus
	}
	if !mems.Equals(n.curMems) {
		if err := cg.SetCPUSetMems(mems); err != nil {
			return fmt.Errorf("cpuset: set mems of %s to %q: %w", cg.Path(), mems, err)
		}
		n.curMems = mems
	}
	return nil
}
