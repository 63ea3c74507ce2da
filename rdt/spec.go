package rdt

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	grdt "github.com/intel/goresctrl/pkg/rdt"
	"k8s.io/utils/cpuset"
)

// ClassSpec is a class's allocation in goresctrl's configuration syntax, so
// that a goresctrl (or nri-plugins) class section reads the same here:
//
//	l3Allocation:
//	  all: "60%"            # or "20-80%", "0-5" (ways), "0x3f0"
//	  "2,3": {unified: "50%", code: "40%", data: "60%"}   # CDP halves
//	mbAllocation:
//	  all: ["50%", "2000MBps"]   # the first one in the host's unit wins
//
// Keys are cache id lists ("0-7,16-23") or "all" (every other id).
// Percentages select ways the way goresctrl does (50% of 11 ways is ways
// 0-4; a share below min_cbm_bits is widened). Bit lists and hex masks are
// relative to the lowest way. Unlike goresctrl, a key naming a cache id the
// host lacks is an error, not ignored, and bit masks may be sparse where
// the host allows it.
type ClassSpec struct {
	L3 grdt.CatConfig `json:"l3Allocation,omitempty"`
	L2 grdt.CatConfig `json:"l2Allocation,omitempty"`
	MB grdt.MbaConfig `json:"mbAllocation,omitempty"`
}

// Resolve turns spec into the schemata of class on this host and validates
// it. Bandwidth is rounded up to bandwidth_gran, as the kernel would. On
// AMD (absolute units of 1/8 GB/s) "MBps" values convert to units and
// percentages scale the unthrottled maximum; with mba_MBps only MBps
// values apply.
func (r *Resctrl) Resolve(class string, spec ClassSpec) (Schemata, error) {
	s := Schemata{}
	for _, level := range []struct {
		cfg                 grdt.CatConfig
		unified, code, data Resource
	}{{spec.L3, L3, L3Code, L3Data}, {spec.L2, L2, L2Code, L2Data}} {
		if len(level.cfg) == 0 {
			continue
		}
		if c := r.info.Caches[level.code]; c != nil && r.info.Caches[level.data] != nil {
			if err := resolveCat(class, level.cfg, c, r.info.Caches[level.data], s); err != nil {
				return nil, err
			}
			continue
		}
		c := r.info.Caches[level.unified]
		if c == nil {
			return nil, &InvalidError{Class: class, Resource: level.unified, CacheID: -1,
				Reason: fmt.Sprintf("cache allocation not offered by this host; it has %s", resourceList(&r.info))}
		}
		if err := resolveCat(class, level.cfg, c, nil, s); err != nil {
			return nil, err
		}
	}
	if len(spec.MB) > 0 {
		if err := r.resolveMB(class, spec.MB, s); err != nil {
			return nil, err
		}
	}
	if err := r.Validate(class, s); err != nil {
		return nil, err
	}
	return s, nil
}

// perID expands a goresctrl per-cache-id map onto ids: the entry whose key
// lists the id, else "all", else def.
func perID[T any](class string, res Resource, cfg map[string]T, ids []int, def T) (map[int]T, error) {
	out := make(map[int]T, len(ids))
	all, hasAll := cfg[grdt.CacheIdAll]
	for _, id := range ids {
		out[id] = def
		if hasAll {
			out[id] = all
		}
	}
	for key, v := range cfg {
		if key == grdt.CacheIdAll {
			continue
		}
		set, err := parseList(key, maxCacheID)
		if err != nil {
			return nil, &InvalidError{Class: class, Resource: res, CacheID: -1, Value: key,
				Reason: fmt.Sprintf("cache id list: %v; use \"all\" or a list like \"0-7,16-23\"", err)}
		}
		for _, id := range set.List() {
			if _, ok := out[id]; !ok {
				return nil, &InvalidError{Class: class, Resource: res, CacheID: id, Value: key,
					Reason: fmt.Sprintf("unknown cache id; the host has cache ids %s", idList(ids))}
			}
			out[id] = v
		}
	}
	return out, nil
}

// resolveCat fills s for one cache level: unified into c, or, with data
// set, code into c and data into data.
func resolveCat(class string, cfg grdt.CatConfig, c, data *CacheInfo, s Schemata) error {
	doms, err := perID(class, c.Resource, cfg, c.CacheIDs, grdt.CacheIdCatConfig{Unified: "100%"})
	if err != nil {
		return err
	}
	for id, d := range doms {
		if d.Unified == "" {
			d.Unified = "100%"
		}
		if (d.Code == "") != (d.Data == "") {
			return &InvalidError{Class: class, Resource: c.Resource, CacheID: id, Value: fmt.Sprintf("code=%q data=%q", d.Code, d.Data),
				Reason: "give both code and data, or neither"}
		}
		targets := []struct {
			c *CacheInfo
			p grdt.CacheProportion
		}{{c, d.Unified}}
		if data != nil {
			code, dat := d.Code, d.Data
			if code == "" {
				code, dat = d.Unified, d.Unified
			}
			targets = []struct {
				c *CacheInfo
				p grdt.CacheProportion
			}{{c, code}, {data, dat}}
		}
		for _, t := range targets {
			mask, err := cacheMask(string(t.p), t.c.CBMMask, uint64(t.c.MinCBMBits))
			if err != nil {
				return &InvalidError{Class: class, Resource: t.c.Resource, CacheID: id, Value: string(t.p), Reason: err.Error()}
			}
			if s[t.c.Resource] == nil {
				s[t.c.Resource] = map[int]uint64{}
			}
			s[t.c.Resource][id] = mask
		}
	}
	return nil
}

// cacheMask turns a goresctrl cache proportion into a mask within base.
func cacheMask(p string, base, minBits uint64) (uint64, error) {
	p = strings.TrimSpace(p)
	lsb := uint64(bits.TrailingZeros64(base))
	width := uint64(64-bits.LeadingZeros64(base)) - lsb
	switch {
	case strings.HasSuffix(p, "%"):
		lowS, highS, isRange := strings.Cut(strings.TrimSuffix(p, "%"), "-")
		if !isRange {
			lowS, highS = "0", lowS
		}
		low, err1 := strconv.ParseUint(lowS, 10, 8)
		high, err2 := strconv.ParseUint(highS, 10, 8)
		if err1 != nil || err2 != nil || low > high || high > 100 || high == 0 {
			return 0, fmt.Errorf("bad percentage; use \"N%%\" or \"LOW-HIGH%%\" with 0 <= LOW <= HIGH <= 100")
		}
		// goresctrl's arithmetic: percent 1..100 to way numbers.
		low = max(low, 1)
		first := (low - 1) * width / 100
		last := (high - 1) * width / 100
		if n := last - first + 1; n < minBits {
			gap := minBits - n
			take := min(gap, first)
			first, gap = first-take, gap-take
			if last+gap >= width {
				return 0, fmt.Errorf("the cache has %d ways, fewer than min_cbm_bits=%d", width, minBits)
			}
			last += gap
		}
		return ((uint64(1) << (last - first + 1)) - 1) << (first + lsb), nil
	case strings.HasPrefix(p, "0x"):
		v, err := strconv.ParseUint(p[2:], 16, 64)
		if err != nil || v == 0 {
			return 0, fmt.Errorf("bad hex mask; use e.g. \"0xff0\"")
		}
		if bits.Len64(v)+int(lsb) > 64 {
			return 0, fmt.Errorf("mask is wider than the cache: cbm_mask is %#x", base)
		}
		return v << lsb, nil
	default:
		set, err := parseList(p, 63)
		if err != nil || set.Size() == 0 {
			return 0, fmt.Errorf("bad cache share; use \"N%%\", \"LOW-HIGH%%\", way numbers like \"0-5\" or a hex mask like \"0xff0\"")
		}
		var v uint64
		for _, b := range set.List() {
			if b >= 64 {
				return 0, fmt.Errorf("way %d is beyond the cache: cbm_mask is %#x", b, base)
			}
			v |= 1 << b
		}
		if bits.Len64(v)+int(lsb) > 64 {
			return 0, fmt.Errorf("mask is wider than the cache: cbm_mask is %#x", base)
		}
		return v << lsb, nil
	}
}

// resolveMB fills s[MB] from a goresctrl bandwidth config.
func (r *Resctrl) resolveMB(class string, cfg grdt.MbaConfig, s Schemata) error {
	m := r.info.MB
	if m == nil {
		return &InvalidError{Class: class, Resource: MB, CacheID: -1,
			Reason: fmt.Sprintf("memory bandwidth allocation not offered by this host; it has %s", resourceList(&r.info))}
	}
	doms, err := perID(class, MB, cfg, m.CacheIDs, nil)
	if err != nil {
		return err
	}
	s[MB] = map[int]uint64{}
	for id, props := range doms {
		v, err := mbValue(m, props)
		if err != nil {
			return &InvalidError{Class: class, Resource: MB, CacheID: id, Value: fmt.Sprint(props), Reason: err.Error()}
		}
		s[MB][id] = v
	}
	return nil
}

// mbValue picks the first proportion in the host's unit and converts it.
// An empty list means unthrottled.
func mbValue(m *MBInfo, props grdt.CacheIdMbaConfig) (uint64, error) {
	if len(props) == 0 {
		return m.Max, nil
	}
	var pct, mbps string
	for _, p := range props {
		s := strings.TrimSpace(string(p))
		switch {
		case strings.HasSuffix(s, "MBps") && mbps == "":
			mbps = strings.TrimSuffix(s, "MBps")
		case strings.HasSuffix(s, "%") && pct == "":
			pct = strings.TrimSuffix(s, "%")
		case !strings.HasSuffix(s, "MBps") && !strings.HasSuffix(s, "%"):
			return 0, fmt.Errorf("bad bandwidth %q; use \"N%%\" or \"NMBps\"", s)
		}
	}
	parse := func(s string, limit uint64) (uint64, error) {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v > limit {
			return 0, fmt.Errorf("bad bandwidth %q; allowed 0..%d", s, limit)
		}
		return v, nil
	}
	switch m.Mode {
	case MBMBps:
		if mbps == "" {
			return 0, fmt.Errorf("the host allocates bandwidth in MBps (mba_MBps) and no MBps value is given")
		}
		return parse(mbps, m.Max)
	case MBAbsolute:
		if mbps != "" {
			v, err := parse(mbps, 1<<40)
			if err != nil {
				return 0, err
			}
			// 1 unit = 1/8 GB/s = 125 MB/s; round to nearest, at least 1.
			return max(1, min(m.Max, (v+62)/125)), nil
		}
		v, err := parse(pct, 100)
		if err != nil {
			return 0, err
		}
		return v * m.Max / 100, nil
	default:
		if pct == "" {
			return 0, fmt.Errorf("the host allocates bandwidth in percent and no percentage is given")
		}
		v, err := parse(pct, 100)
		if err != nil {
			return 0, err
		}
		// The kernel checks the range before it rounds up to the step.
		if v < m.Min {
			return 0, fmt.Errorf("%d%% is below min_bandwidth=%d%%", v, m.Min)
		}
		return (v + m.Granularity - 1) / m.Granularity * m.Granularity, nil
	}
}

// maxCacheID bounds cache ids in configuration lists (the kernel's are
// small: one per L3, L2 or memory controller).
const maxCacheID = 4095

// parseList parses a Linux list ("0-7,16-23") whose numbers are at most
// limit, so a configured "0-4000000000" is refused before it is expanded.
func parseList(s string, limit int) (cpuset.CPUSet, error) {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '-' }) {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > limit {
			return cpuset.CPUSet{}, fmt.Errorf("%d is beyond the largest allowed, %d", v, limit)
		}
	}
	return cpuset.Parse(s)
}
