package rdt

import (
	"fmt"
	"math/bits"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/utils/cpuset"
)

// Schemata is a control group's allocation: per resource, per cache id
// (domain), a capacity bitmask (cache resources) or a bandwidth value in
// the host's MB unit (see MBInfo.Mode). A resource or cache id it leaves
// out is not written, so the kernel keeps the group's value for it.
type Schemata map[Resource]map[int]uint64

// String formats s as a schemata file accepts it: one line per resource in
// the kernel's order, cache ids ascending, masks in hex, bandwidths in
// decimal, e.g. "L3:0=7f0;1=7f0\nMB:0=50;1=50\n".
func (s Schemata) String() string {
	var b strings.Builder
	for _, res := range s.resources() {
		b.WriteString(string(res))
		b.WriteByte(':')
		for i, id := range s.ids(res) {
			if i > 0 {
				b.WriteByte(';')
			}
			if isCache(res) {
				fmt.Fprintf(&b, "%d=%x", id, s[res][id])
			} else {
				fmt.Fprintf(&b, "%d=%d", id, s[res][id])
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Clone returns a deep copy of s.
func (s Schemata) Clone() Schemata {
	out := make(Schemata, len(s))
	for res, doms := range s {
		out[res] = make(map[int]uint64, len(doms))
		for id, v := range doms {
			out[res][id] = v
		}
	}
	return out
}

// Equal reports whether s and o hold the same values.
func (s Schemata) Equal(o Schemata) bool { return s.String() == o.String() }

// resources lists s's resources in the kernel's order, unknown ones last
// in name order.
func (s Schemata) resources() []Resource {
	var out []Resource
	for _, r := range resourceOrder {
		if len(s[r]) > 0 {
			out = append(out, r)
		}
	}
	var extra []Resource
	for r, doms := range s {
		if len(doms) > 0 && !slices.Contains(resourceOrder, r) {
			extra = append(extra, r)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

func (s Schemata) ids(res Resource) []int {
	out := make([]int, 0, len(s[res]))
	for id := range s[res] {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

// maxMB is the largest MB value in s (the root group's shows the
// unthrottled value), 0 without an MB line.
func (s Schemata) maxMB() uint64 {
	var m uint64
	for _, v := range s[MB] {
		m = max(m, v)
	}
	return m
}

// isCache tells cache resources (hex masks) from bandwidth ones (MB, AMD's
// SMBA: decimal).
func isCache(res Resource) bool { return res != MB && res != "SMBA" }

// ParseSchemata reads the text of a schemata file. It accepts what the
// kernel prints — names padded with spaces, masks zero-padded, bandwidths
// space-padded ("MB:0= 50") — and what String writes.
func ParseSchemata(text string) (Schemata, error) {
	s := Schemata{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, doms, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("schemata line %q: no resource name", line)
		}
		res := Resource(strings.TrimSpace(name))
		if s[res] == nil {
			s[res] = map[int]uint64{}
		}
		for _, dom := range strings.Split(doms, ";") {
			ids, vals, ok := strings.Cut(dom, "=")
			if !ok {
				return nil, fmt.Errorf("schemata line %q: domain %q has no '='", line, dom)
			}
			id, err := strconv.Atoi(strings.TrimSpace(ids))
			if err == nil && id < 0 {
				err = fmt.Errorf("negative")
			}
			if err != nil {
				return nil, fmt.Errorf("schemata line %q: cache id %q: %w", line, ids, err)
			}
			vals = strings.TrimSpace(vals)
			var v uint64
			if isCache(res) {
				v, err = parseHex(vals)
			} else {
				v, err = strconv.ParseUint(vals, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("schemata line %q: value %q: %w", line, vals, err)
			}
			s[res][id] = v
		}
	}
	return s, nil
}

func readSchemataFile(path string) (Schemata, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Op: "read", Path: path, Err: err}
	}
	s, err := ParseSchemata(string(data))
	if err != nil {
		return nil, &FileError{Op: "parse", Path: path, Err: err}
	}
	return s, nil
}

// contiguous reports whether mask is one block of set bits.
func contiguous(mask uint64) bool {
	if mask == 0 {
		return false
	}
	m := mask >> bits.TrailingZeros64(mask)
	return m&(m+1) == 0
}

func idList(ids []int) string {
	if len(ids) == 0 {
		return "none"
	}
	return cpuset.New(ids...).String()
}

func resourceList(info *Info) string {
	var have []string
	for _, r := range resourceOrder {
		if info.Caches[r] != nil || r == MB && info.MB != nil {
			have = append(have, string(r))
		}
	}
	if len(have) == 0 {
		return "none"
	}
	return strings.Join(have, ", ")
}

// Validate checks s against the hardware: every resource offered, every
// cache id known, masks within cbm_mask, at least min_cbm_bits ways,
// contiguous unless sparse_masks is 1, bandwidth within
// [min_bandwidth, max] and a multiple of bandwidth_gran. The error is an
// *InvalidError naming class, resource, cache id and value.
func (r *Resctrl) Validate(class string, s Schemata) error {
	return validate(&r.info, class, s)
}

func validate(info *Info, class string, s Schemata) error {
	bad := func(res Resource, id int, value, reason string, args ...any) error {
		return &InvalidError{Class: class, Resource: res, CacheID: id, Value: value, Reason: fmt.Sprintf(reason, args...)}
	}
	for _, res := range s.resources() {
		if isCache(res) {
			c := info.Caches[res]
			if c == nil {
				hint := ""
				if res == L3 && info.CDP() {
					hint = " (CDP is enabled: give L3CODE and L3DATA)"
				} else if (res == L3Code || res == L3Data) && info.Caches[L3] != nil {
					hint = " (CDP is not enabled: give L3)"
				}
				return bad(res, -1, "", "resource not offered by this host%s; it has %s", hint, resourceList(info))
			}
			for _, id := range s.ids(res) {
				mask := s[res][id]
				v := fmt.Sprintf("%#x", mask)
				switch {
				case !slices.Contains(c.CacheIDs, id):
					return bad(res, id, v, "unknown cache id; the host has cache ids %s", idList(c.CacheIDs))
				case mask == 0 && c.MinCBMBits > 0:
					return bad(res, id, v, "empty mask; at least min_cbm_bits=%d ways are needed", c.MinCBMBits)
				case mask&^c.CBMMask != 0:
					return bad(res, id, v, "mask is wider than the cache: cbm_mask is %#x (%d ways)", c.CBMMask, c.Ways())
				case bits.OnesCount64(mask) < c.MinCBMBits:
					return bad(res, id, v, "%d ways is below min_cbm_bits=%d", bits.OnesCount64(mask), c.MinCBMBits)
				case mask != 0 && !c.SparseMasks && !contiguous(mask):
					return bad(res, id, v, "mask is not contiguous and the host has no sparse_masks")
				}
			}
			continue
		}
		if res != MB {
			return bad(res, -1, "", "resource not handled by this package; it handles L3, L3CODE, L3DATA, L2, L2CODE, L2DATA, MB")
		}
		m := info.MB
		if m == nil {
			return bad(res, -1, "", "memory bandwidth allocation not offered by this host; it has %s", resourceList(info))
		}
		for _, id := range s.ids(MB) {
			val := s[MB][id]
			v := strconv.FormatUint(val, 10)
			switch {
			case !slices.Contains(m.CacheIDs, id):
				return bad(MB, id, v, "unknown cache id; the host has memory bandwidth domains %s", idList(m.CacheIDs))
			case val < m.Min || val > m.Max:
				return bad(MB, id, v, "out of range [%d, %d] (%s)", m.Min, m.Max, m.Mode)
			case m.Mode == MBPercent && val%m.Granularity != 0:
				return bad(MB, id, v, "not a multiple of bandwidth_gran=%d", m.Granularity)
			}
		}
	}
	return nil
}
