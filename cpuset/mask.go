package cpuset

import (
	"math/bits"

	"k8s.io/utils/cpuset"
)

// mask is the allocator's working representation of a CPU set: one bit per
// CPU id. The public API speaks k8s.io/utils/cpuset, whose map-backed sets
// cost an allocation per operation; the allocator's hot path (take and
// release a few CPUs among hundreds) must stay within a handful of
// allocations, so it works on fixed-width bitmasks sized once per topology.
type mask []uint64

func newMask(maxID int) mask { return make(mask, maxID/64+1) }

func (m mask) set(id int) { m[id>>6] |= 1 << (uint(id) & 63) }

func (m mask) clear(id int) { m[id>>6] &^= 1 << (uint(id) & 63) }

func (m mask) has(id int) bool {
	w := id >> 6
	return id >= 0 && w < len(m) && m[w]&(1<<(uint(id)&63)) != 0
}

func (m mask) count() int {
	n := 0
	for _, w := range m {
		n += bits.OnesCount64(w)
	}
	return n
}

func (m mask) reset() {
	for i := range m {
		m[i] = 0
	}
}

func (m mask) copyFrom(o mask) { copy(m, o) }

// and sets m = m ∩ o.
func (m mask) and(o mask) {
	for i := range m {
		m[i] &= o[i]
	}
}

// andNot sets m = m \ o.
func (m mask) andNot(o mask) {
	for i := range m {
		m[i] &^= o[i]
	}
}

// or sets m = m ∪ o.
func (m mask) or(o mask) {
	for i := range m {
		m[i] |= o[i]
	}
}

// subsetOf reports whether m ⊆ o.
func (m mask) subsetOf(o mask) bool {
	for i := range m {
		if m[i]&^o[i] != 0 {
			return false
		}
	}
	return true
}

// appendIDs appends the ids in m, ascending, to dst.
func (m mask) appendIDs(dst []int) []int {
	for i, w := range m {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			dst = append(dst, i*64+b)
			w &= w - 1
		}
	}
	return dst
}

// toCPUSet converts m to the public set type; scratch avoids a second
// allocation for the id list.
func (m mask) toCPUSet(scratch []int) cpuset.CPUSet {
	return cpuset.New(m.appendIDs(scratch[:0])...)
}

// fromCPUSet fills m with s and returns the ids of s that do not fit in m
// (larger than the topology's highest CPU id), which callers report as
// unknown CPUs.
func (m mask) fromCPUSet(s cpuset.CPUSet) (outside []int) {
	m.reset()
	if s.Size() == 0 {
		return nil
	}
	for _, id := range s.UnsortedList() {
		if id >= 0 && id>>6 < len(m) {
			m.set(id)
		} else {
			outside = append(outside, id)
		}
	}
	return outside
}
