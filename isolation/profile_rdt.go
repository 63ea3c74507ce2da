package isolation

// RDTProfile is a pool's share of the L3 cache and of memory bandwidth
// through resctrl (package rdt). A pool with an empty profile gets no
// class: its members stay in resctrl's default group. On a host without
// RDT the section is ignored.
//
// Ways are laid out by priority: exclusive pools take the top ways, the
// highest pool highest; shared pools take ways from the bottom, so a pool
// with fewer ways uses a subset of what a pool with more ways uses, and the
// default group (system tasks) keeps every way no exclusive pool holds.
type RDTProfile struct {
	// L3Percent is the pool's share of the L3 ways, 1..100 (rounded to
	// ways, at least one); L3Ways the same as a number of ways. Set one of
	// them, or neither for no cache allocation.
	L3Percent int `json:"l3Percent,omitempty"`
	// L3Ways: see L3Percent; 1..64.
	L3Ways int `json:"l3Ways,omitempty"`
	// Exclusive keeps every other pool and the default group off the
	// pool's ways. Default: true for the highest-priority pool, false for
	// the others.
	Exclusive *bool `json:"exclusive,omitempty"`
	// MBPercent is the pool's memory bandwidth ceiling as a percentage of
	// the unthrottled bandwidth, 1..100 (0: no bandwidth allocation). The
	// plugin rounds it to the host's step and minimum.
	MBPercent int `json:"mbPercent,omitempty"`
	// Throttle, when set, makes the loop shrink this pool's ways and
	// bandwidth step by step while a higher pool is under pressure, and grow
	// them back with hysteresis when it is not. Usually only batch has it.
	Throttle *RDTThrottle `json:"throttle,omitempty"`
}

// RDTThrottle says when and how far the loop shrinks a pool's RDT share.
type RDTThrottle struct {
	// The pool is under pressure this period when any higher pool is at a
	// protection level or, where resctrl monitoring exists, when the
	// pool's measured memory bandwidth (or L3 occupancy) exceeds
	// BandwidthShare (OccupancyShare) percent of all pools' together.
	// 0 disables that trigger; 1..100.
	BandwidthShare int `json:"bandwidthShare,omitempty"`
	// OccupancyShare: see BandwidthShare.
	OccupancyShare int `json:"occupancyShare,omitempty"`
	// MinL3Ways and MinMBPercent are the floors the pool never goes below
	// (defaults 1 way and 10 %).
	MinL3Ways    int `json:"minL3Ways,omitempty"`
	MinMBPercent int `json:"minMBPercent,omitempty"`
	// StepWays and StepMBPercent are taken away per period under pressure
	// and given back per RecoverPeriods calm periods (defaults 1 way, 10 %).
	StepWays      int `json:"stepWays,omitempty"`
	StepMBPercent int `json:"stepMBPercent,omitempty"`
	// RecoverPeriods: calm periods before each step back (default 3): the
	// hysteresis that keeps a share from flapping.
	RecoverPeriods int `json:"recoverPeriods,omitempty"`
}

// Enabled reports whether the profile asks for a class.
func (p RDTProfile) Enabled() bool { return p.L3Percent > 0 || p.L3Ways > 0 || p.MBPercent > 0 }

// exclusive is the profile's exclusivity with its default: the highest
// pool (priority rank 0) is exclusive unless it says otherwise.
func (p RDTProfile) exclusive(rank int) bool {
	if p.Exclusive != nil {
		return *p.Exclusive
	}
	return rank == 0 && (p.L3Percent > 0 || p.L3Ways > 0)
}

// throttle returns the throttle with defaults filled in.
func (p RDTProfile) throttle() RDTThrottle {
	t := *p.Throttle
	if t.MinL3Ways == 0 {
		t.MinL3Ways = 1
	}
	if t.MinMBPercent == 0 {
		t.MinMBPercent = 10
	}
	if t.StepWays == 0 {
		t.StepWays = 1
	}
	if t.StepMBPercent == 0 {
		t.StepMBPercent = 10
	}
	if t.RecoverPeriods == 0 {
		t.RecoverPeriods = 3
	}
	return t
}

func (p RDTProfile) validate(v *validator, f string) {
	pct := func(field string, x int) {
		if x < 0 || x > 100 {
			v.add(f+"."+field, x, "must be a percentage 1..100 (0: unset)")
		}
	}
	pct("l3Percent", p.L3Percent)
	pct("mbPercent", p.MBPercent)
	if p.L3Ways < 0 || p.L3Ways > 64 {
		v.add(f+".l3Ways", p.L3Ways, "must be a number of ways 1..64 (0: unset)")
	}
	if p.L3Percent > 0 && p.L3Ways > 0 {
		v.add(f+".l3Ways", p.L3Ways, "set l3Percent or l3Ways, not both (l3Percent is %d)", p.L3Percent)
	}
	if p.Exclusive != nil && *p.Exclusive && p.L3Percent == 0 && p.L3Ways == 0 {
		v.add(f+".exclusive", true, "needs l3Percent or l3Ways: exclusive applies to cache ways")
	}
	t := p.Throttle
	if t == nil {
		return
	}
	if !p.Enabled() {
		v.add(f+".throttle", "set", "needs l3Percent, l3Ways or mbPercent to throttle")
	}
	tf := f + ".throttle"
	for _, x := range []struct {
		name     string
		val, max int
	}{
		{"bandwidthShare", t.BandwidthShare, 100}, {"occupancyShare", t.OccupancyShare, 100},
		{"minL3Ways", t.MinL3Ways, 64}, {"minMBPercent", t.MinMBPercent, 100},
		{"stepWays", t.StepWays, 64}, {"stepMBPercent", t.StepMBPercent, 100},
		{"recoverPeriods", t.RecoverPeriods, 3600},
	} {
		if x.val < 0 || x.val > x.max {
			v.add(tf+"."+x.name, x.val, "allowed 0..%d (0: default)", x.max)
		}
	}
	if p.L3Ways > 0 && t.MinL3Ways > p.L3Ways {
		v.add(tf+".minL3Ways", t.MinL3Ways, "must not exceed l3Ways (%d)", p.L3Ways)
	}
	if p.MBPercent > 0 && t.MinMBPercent > p.MBPercent {
		v.add(tf+".minMBPercent", t.MinMBPercent, "must not exceed mbPercent (%d)", p.MBPercent)
	}
}
