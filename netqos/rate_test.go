package netqos

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"10M": 10 * Mbit, "1G": Gbit, "500k": 500 * Kbit, "1k": Kbit, "1P": Pbit,
		"1Mi": 1 << 20, "2e6": 2 * Mbit, "1.5G": 1500 * Mbit, "100000": 100 * Kbit,
	}
	for s, want := range good {
		got, err := ParseRate("rate", s)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	bad := []string{"10X", "-1M", "", "0", "999", "2P", "1E", "M", "10 M", "1e100", "500m"}
	for _, s := range bad {
		_, err := ParseRate("annotation kubernetes.io/egress-bandwidth", s)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRate(%q): %v, want ErrInvalid", s, err)
			continue
		}
		if !strings.Contains(err.Error(), "kubernetes.io/egress-bandwidth") || (s != "" && !strings.Contains(err.Error(), `"`+s+`"`)) {
			t.Errorf("ParseRate(%q): error %q does not name the field and the value", s, err)
		}
	}
}

func TestRateString(t *testing.T) {
	for r, want := range map[Rate]string{10 * Mbit: "10Mbit", 1500 * Mbit: "1.5Gbit", 800: "800bit", 9_477_126: "9.477Mbit"} {
		if got := r.String(); got != want {
			t.Errorf("Rate(%d).String() = %q, want %q", uint64(r), got, want)
		}
	}
}

func TestPodLimitsFromAnnotations(t *testing.T) {
	l, err := PodLimitsFromAnnotations(map[string]string{EgressBandwidthAnnotation: "10M", IngressBandwidthAnnotation: "1G", "other": "x"})
	if err != nil || l != (PodLimits{Egress: 10 * Mbit, Ingress: Gbit}) {
		t.Errorf("both annotations: %+v, %v", l, err)
	}
	l, err = PodLimitsFromAnnotations(map[string]string{IngressBandwidthAnnotation: "5M"})
	if err != nil || l != (PodLimits{Ingress: 5 * Mbit}) {
		t.Errorf("ingress only: %+v, %v", l, err)
	}
	if l, err := PodLimitsFromAnnotations(nil); err != nil || l != (PodLimits{}) {
		t.Errorf("no annotations: %+v, %v", l, err)
	}
	for _, v := range []string{"10X", "-1M", ""} {
		_, err := PodLimitsFromAnnotations(map[string]string{IngressBandwidthAnnotation: "5M", EgressBandwidthAnnotation: v})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), EgressBandwidthAnnotation) {
			t.Errorf("egress %q: %v, want ErrInvalid naming %s", v, err, EgressBandwidthAnnotation)
		}
	}
}

func TestTreeConfigValidation(t *testing.T) {
	ok := TreeConfig{Interface: "eth0", Link: 100 * Mbit, Default: 20, Classes: []ClassSpec{{ID: 10, Rate: 10 * Mbit, Ceil: 50 * Mbit}, {ID: 20, Rate: Mbit}}}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := map[string]struct {
		mut  func(*TreeConfig)
		want string
	}{
		"no interface":      {func(c *TreeConfig) { c.Interface = "" }, "interface name is empty"},
		"zero link":         {func(c *TreeConfig) { c.Link = 0 }, "link rate 0bit"},
		"zero rate":         {func(c *TreeConfig) { c.Classes[0].Rate = 0 }, "class 10: rate 0"},
		"ceil below rate":   {func(c *TreeConfig) { c.Classes[0].Ceil = 5 * Mbit }, "class 10: ceil 5Mbit below rate 10Mbit"},
		"ceil above link":   {func(c *TreeConfig) { c.Classes[0].Ceil = 200 * Mbit }, "ceil 200Mbit above the link 100Mbit"},
		"rates exceed link": {func(c *TreeConfig) { c.Classes[1].Rate = 95 * Mbit; c.Classes[1].Ceil = 95 * Mbit }, "add up to 105Mbit"},
		"root id":           {func(c *TreeConfig) { c.Classes[0].ID = 1 }, "class id 1"},
		"duplicate id":      {func(c *TreeConfig) { c.Classes[1].ID = 10; c.Default = 10 }, "class id 10 appears twice"},
		"unknown default":   {func(c *TreeConfig) { c.Default = 30 }, "default class 30"},
		"prio out of range": {func(c *TreeConfig) { c.Classes[0].Prio = 8 }, "prio 8"},
		"no classes":        {func(c *TreeConfig) { c.Classes = nil }, "0 classes"},
		"ingress major":     {func(c *TreeConfig) { c.Major = 0xffff }, "major ffff"},
		"unknown attach":    {func(c *TreeConfig) { c.Attach = 7 }, "attach mode 7"},
		"sub-kbit class":    {func(c *TreeConfig) { c.Classes[1].Rate = 10 }, "rate 10bit outside"},
	}
	for name, tc := range cases {
		cfg := ok
		cfg.Classes = append([]ClassSpec(nil), ok.Classes...)
		tc.mut(&cfg)
		err := cfg.validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalid containing %q", name, err, tc.want)
		}
		// NewTree refuses it before touching anything, without root.
		if _, err := NewTree(cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: NewTree: %v, want ErrInvalid", name, err)
		}
	}
}

func TestPodLimitsValidation(t *testing.T) {
	err := SetPodLimits(PodInterface{Interface: "veth0"}, PodLimits{Egress: 10})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "egress limit 10bit") {
		t.Errorf("egress 10 bit/s: %v", err)
	}
}
