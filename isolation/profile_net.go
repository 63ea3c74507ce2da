package isolation

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/strata-nri/strata/netqos"
)

// NetworkConfig is the node's network shaping (package netqos): an htb
// tree on the uplink with one class per pool that has a Net profile, and a
// default class for everything else (system traffic, pools without one).
// An empty Interface leaves the network alone.
type NetworkConfig struct {
	// Interface is the uplink whose egress is shaped, e.g. "eth0".
	Interface string `json:"interface,omitempty"`
	// Link is the uplink's capacity in bits per second, as a Kubernetes
	// quantity ("10G", "25G"): the base of percentage rates, and the
	// most any class may use.
	Link string `json:"link,omitempty"`
	// Netns is the path of the uplink's network namespace; "" is the
	// plugin's own (the host's). For tests and nested setups.
	Netns string `json:"netns,omitempty"`
	// Attach chooses how the classifier hooks the uplink: "auto"
	// (default: TCX where the kernel has it), "tcx" or "clsact".
	Attach string `json:"attach,omitempty"`
}

// NetProfile is a pool's class on the uplink. Rates are bits per second as
// a Kubernetes quantity ("500M", "1G") or a percentage of the link
// ("40%").
type NetProfile struct {
	// Rate is the pool's guaranteed rate. Empty: no class; the pool's
	// traffic goes to the default class.
	Rate string `json:"rate,omitempty"`
	// Ceil is the most the pool may use by borrowing idle bandwidth;
	// default the link.
	Ceil string `json:"ceil,omitempty"`
	// Prio orders borrowing, 0 (first) to 7; default the pool's priority
	// (at most 7).
	Prio *int `json:"prio,omitempty"`
	// Throttle, when set, lowers this pool's ceiling while the higher
	// pools' traffic passes a watermark share of the link, and restores it
	// with hysteresis. Usually only batch has it.
	Throttle *NetThrottle `json:"throttle,omitempty"`
}

// NetThrottle is the dynamic ceiling: while the pools above this one send
// at least Watermark percent of the link (summed, measured each period
// from their classes' counters), this pool's ceiling is Ceil; once they
// have stayed below Release percent for CalmPeriods periods in a row it
// returns to the profile's.
type NetThrottle struct {
	// Watermark: percent of the link, 1..100; default 30.
	Watermark int `json:"watermark,omitempty"`
	// Release: percent of the link below which a period counts as calm;
	// default half of Watermark. The gap is the hysteresis.
	Release int `json:"release,omitempty"`
	// Ceil while throttled, a rate or a percentage of the link; default
	// "10%". Never below the pool's guaranteed rate.
	Ceil string `json:"ceil,omitempty"`
	// CalmPeriods before the ceiling returns; default 3.
	CalmPeriods int `json:"calmPeriods,omitempty"`
}

func (t NetThrottle) withDefaults() NetThrottle {
	if t.Watermark == 0 {
		t.Watermark = 30
	}
	if t.Release == 0 {
		t.Release = t.Watermark / 2
	}
	if t.Ceil == "" {
		t.Ceil = "10%"
	}
	if t.CalmPeriods == 0 {
		t.CalmPeriods = 3
	}
	return t
}

// Enabled reports whether the pool has a class of its own.
func (p NetProfile) Enabled() bool { return p.Rate != "" }

// NetDefaultClass is the class id of unclassified traffic; a pool's class
// id is NetClassBase + its priority.
const (
	NetDefaultClass = 2
	NetClassBase    = 10
)

// parseNetRate reads "40%" (of link) or a quantity in bits per second.
func parseNetRate(field, s string, link netqos.Rate) (netqos.Rate, error) {
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil || v <= 0 || v > 100 {
			return 0, fmt.Errorf("%s %q: a percentage must be in (0, 100]", field, s)
		}
		return max(netqos.MinRate, netqos.Rate(float64(link)*v/100)), nil
	}
	r, err := netqos.ParseRate(field, s)
	if err != nil {
		return 0, err
	}
	if link != 0 && r > link {
		return 0, fmt.Errorf("%s %q: above the link (%s)", field, s, link)
	}
	return r, nil
}

// NetworkLink is the configured link capacity (0 with no network config).
func (c *Config) NetworkLink() (netqos.Rate, error) {
	if c.Network.Interface == "" {
		return 0, nil
	}
	return netqos.ParseRate("network.link", c.Network.Link)
}

// NetworkClasses is each pool's class before any throttle (pools without
// a Net profile are absent), and the default class's rate: what is left of
// the link after the pools' guaranteed rates. The plugin builds the tree
// from it; the decision step starts from it every period.
func (c *Config) NetworkClasses() (classes map[string]NetPlan, defaultRate netqos.Rate, err error) {
	link, err := c.NetworkLink()
	if err != nil || link == 0 {
		return nil, 0, err
	}
	classes = map[string]NetPlan{}
	var sum netqos.Rate
	for _, pc := range c.Pools {
		p := pc.Profile.Net
		if !p.Enabled() {
			continue
		}
		f := "pools[" + pc.Name + "].profile.net"
		np := NetPlan{Enabled: true, Class: uint16(NetClassBase + pc.Priority), Prio: min(pc.Priority, netqos.MaxPrio), Ceil: link}
		if p.Prio != nil {
			np.Prio = *p.Prio
		}
		if np.Rate, err = parseNetRate(f+".rate", p.Rate, link); err != nil {
			return nil, 0, err
		}
		if p.Ceil != "" {
			if np.Ceil, err = parseNetRate(f+".ceil", p.Ceil, link); err != nil {
				return nil, 0, err
			}
		}
		if np.Ceil < np.Rate {
			return nil, 0, fmt.Errorf("%s.ceil %s is below its rate %s", f, np.Ceil, np.Rate)
		}
		np.MaxCeil = np.Ceil
		if p.Throttle != nil {
			t := p.Throttle.withDefaults()
			if np.ThrottledCeil, err = parseNetRate(f+".throttle.ceil", t.Ceil, link); err != nil {
				return nil, 0, err
			}
			np.ThrottledCeil = max(np.Rate, min(np.ThrottledCeil, np.Ceil))
		}
		sum += np.Rate
		classes[pc.Name] = np
	}
	// The default class keeps at least 1 % of the link, so system traffic
	// is never starved.
	if sum > link-link/100 {
		return nil, 0, fmt.Errorf("pools' network rates add up to %s, above 99%% of the link %s", sum, link)
	}
	return classes, link - sum, nil
}

func (n NetworkConfig) validate(v *validator, c *Config) {
	if n.Interface == "" {
		for _, pc := range c.Pools {
			if pc.Profile.Net.Enabled() {
				v.add("network.interface", "", "must name the uplink: pool %s has a network profile", pc.Name)
				return
			}
		}
		return
	}
	switch n.Attach {
	case "", "auto", "tcx", "clsact":
	default:
		v.add("network.attach", n.Attach, "allowed: auto, tcx, clsact")
	}
	if _, err := netqos.ParseRate("network.link", n.Link); err != nil {
		v.add("network.link", n.Link, "%v", err)
		return
	}
	if _, _, err := c.NetworkClasses(); err != nil {
		v.add("network", n.Interface, "%v", err)
	}
}

func (p NetProfile) validate(v *validator, f string) {
	if !p.Enabled() && (p.Ceil != "" || p.Throttle != nil || p.Prio != nil) {
		v.add(f+".rate", "", "must be set when ceil, prio or throttle are")
	}
	if p.Prio != nil && (*p.Prio < 0 || *p.Prio > netqos.MaxPrio) {
		v.add(f+".prio", *p.Prio, "allowed 0..%d", netqos.MaxPrio)
	}
	if p.Throttle == nil {
		return
	}
	t, tf := *p.Throttle, f+".throttle"
	if t.Watermark < 0 || t.Watermark > 100 {
		v.add(tf+".watermark", t.Watermark, "must be a percentage of the link 1..100 (0: default 30)")
	}
	if t.Release < 0 || t.Release > 100 {
		v.add(tf+".release", t.Release, "must be a percentage of the link 1..100 (0: half the watermark)")
	}
	if w := t.withDefaults(); t.Release > 0 && w.Release > w.Watermark {
		v.add(tf+".release", t.Release, "must not exceed the watermark (%d): the ceiling would never return", w.Watermark)
	}
	if t.CalmPeriods < 0 || t.CalmPeriods > 3600 {
		v.add(tf+".calmPeriods", t.CalmPeriods, "allowed 0..3600 (0: default 3)")
	}
}
