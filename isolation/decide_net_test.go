package isolation_test

import (
	"strings"
	"testing"

	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/netqos"
)

func netConfig() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.Network = isolation.NetworkConfig{Interface: "eth0", Link: "10G"}
	cfg.Pools[1].Profile.Net = isolation.NetProfile{Rate: "30%"}
	cfg.Pools[2].Profile.Net = isolation.NetProfile{Rate: "1G", Ceil: "40%", Throttle: &isolation.NetThrottle{}}
	return cfg
}

func TestNetworkClasses(t *testing.T) {
	cfg := netConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	classes, def, err := cfg.NetworkClasses()
	if err != nil {
		t.Fatal(err)
	}
	on, batch := classes[cfg.Pools[1].Name], classes[cfg.Pools[2].Name]
	if on.Rate != 3*netqos.Gbit || on.Ceil != 10*netqos.Gbit || batch.Rate != netqos.Gbit || batch.Ceil != 4*netqos.Gbit || batch.ThrottledCeil != netqos.Gbit {
		t.Errorf("classes: online %+v batch %+v", on, batch)
	}
	if def != 6*netqos.Gbit || len(classes) != 2 {
		t.Errorf("default class rate %s, %d classes", def, len(classes))
	}
}

func TestNetworkConfigInvalid(t *testing.T) {
	cases := map[string]struct {
		mut  func(*isolation.Config)
		want string
	}{
		"no interface":        {func(c *isolation.Config) { c.Network.Interface = "" }, "network.interface"},
		"bad link":            {func(c *isolation.Config) { c.Network.Link = "10X" }, `network.link`},
		"negative rate":       {func(c *isolation.Config) { c.Pools[1].Profile.Net.Rate = "-1M" }, `"-1M"`},
		"percent over 100":    {func(c *isolation.Config) { c.Pools[1].Profile.Net.Rate = "120%" }, `"120%"`},
		"ceil below rate":     {func(c *isolation.Config) { c.Pools[2].Profile.Net.Ceil = "500M" }, "below its rate"},
		"rates exceed link":   {func(c *isolation.Config) { c.Pools[1].Profile.Net.Rate = "95%" }, "above 99% of the link"},
		"release > watermark": {func(c *isolation.Config) { c.Pools[2].Profile.Net.Throttle.Release = 50 }, "release"},
		"bad attach":          {func(c *isolation.Config) { c.Network.Attach = "xdp" }, "network.attach"},
		"ceil without rate":   {func(c *isolation.Config) { c.Pools[0].Profile.Net.Ceil = "1G" }, ".net.rate"},
	}
	for name, tc := range cases {
		cfg := netConfig()
		tc.mut(cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %s", name, err, tc.want)
		}
	}
}
