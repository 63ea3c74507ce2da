package isolation

import (
	"fmt"

	"github.com/strata-nri/strata/netqos"
)

// netDimension decides each pool's class on the uplink: the profile's rate
// and ceiling, and for throttled pools (batch) a lower ceiling while the
// higher pools' measured traffic passes the watermark, restored after
// CalmPeriods periods below the release mark.
type netDimension struct {
	link    netqos.Rate
	classes map[string]NetPlan // unthrottled, from the configuration
	mem     map[string]netMemory
}

type netMemory struct {
	throttled bool
	calm      int
}

func newNetDimension(cfg *Config) dimension {
	d := &netDimension{mem: map[string]netMemory{}}
	// A configuration that fails here fails Validate too; the dimension
	// then plans nothing.
	if link, err := cfg.NetworkLink(); err == nil {
		if classes, _, err := cfg.NetworkClasses(); err == nil {
			d.link, d.classes = link, classes
		}
	}
	return d
}

func (d *netDimension) decide(p *Plan, obs *Observations, st *State) {
	for k := range p.Pools {
		pp := &p.Pools[k]
		base, ok := d.classes[pp.Name]
		if !ok {
			pp.Net = NetPlan{}
			continue
		}
		pp.Net = base
		prof := st.poolConfig(k).Profile.Net
		if prof.Throttle == nil || d.link == 0 {
			continue
		}
		t := prof.Throttle.withDefaults()
		var higher float64
		measured := false
		for j := 0; j < k; j++ {
			if o := obs.Pools[p.Pools[j].Name].Net; o.Measured {
				higher += o.BitsPerSecond
				measured = true
			}
		}
		share := 100 * higher / float64(d.link)
		pp.Net.HigherShare = share
		m := d.mem[pp.Name]
		switch {
		case measured && share >= float64(t.Watermark):
			pp.Net.Throttled = true
			pp.Net.Reason = fmt.Sprintf("higher pools send %.0f%% of the link (watermark %d%%)", share, t.Watermark)
		case m.throttled:
			calm := 0
			if !measured || share < float64(t.Release) {
				calm = m.calm + 1
			}
			pp.Net.Calm = calm
			if calm >= t.CalmPeriods {
				pp.Net.Reason = fmt.Sprintf("ceiling restored after %d calm periods", calm)
			} else {
				pp.Net.Throttled = true
				pp.Net.Reason = fmt.Sprintf("holding: higher pools at %.0f%% of the link, %d of %d calm periods below %d%%", share, calm, t.CalmPeriods, t.Release)
			}
		}
		if pp.Net.Throttled {
			pp.Net.Ceil = base.ThrottledCeil
		}
	}
}

func (d *netDimension) commit(p *Plan) {
	clear(d.mem)
	for k := range p.Pools {
		if np := p.Pools[k].Net; np.Enabled && np.ThrottledCeil != 0 {
			d.mem[p.Pools[k].Name] = netMemory{throttled: np.Throttled, calm: np.Calm}
		}
	}
}
