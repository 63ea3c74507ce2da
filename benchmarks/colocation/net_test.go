package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/internal/testutil"
)

// TestKernelColocationNetSmoke runs the -net topology with one scenario
// pair, briefly, so it cannot rot. It asserts sanity only — the LC service
// answered across the veth, the blaster's bytes were counted, the plain
// cap was on the link without Strata and netqos's htb classes and
// classifier with it, and nothing of the topology is left — never a
// performance goal (docs/benchmarks.md has the measured run).
func TestKernelColocationNetSmoke(t *testing.T) {
	testutil.RequireRoot(t)
	rep, err := Run(context.Background(), Options{Duration: time.Second, Warmup: 500 * time.Millisecond, Repeats: 1, Loads: []float64{0.3}, Work: 500,
		Net: true, NetLink: 200e6, Scenarios: []string{"no-isolation", "strata-1s"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Sent == 0 || r.Errors == r.Sent || r.P99 <= 0 {
			t.Errorf("%s: %d LC requests across the veth, %d errors, p99 %g ms", r.Scenario, r.Sent, r.Errors, r.P99)
		}
		// The blaster shares a 200 Mbit/s link with the LC responses: it
		// got something, and not more than the link.
		if r.NetWork <= 0 || r.NetWork > 200*1.05 {
			t.Errorf("%s: network blaster %g Mbit/s, want in (0, 210]", r.Scenario, r.NetWork)
		}
		sh := r.NetShape
		t.Logf("%s: link egress %+v", r.Scenario, sh)
		if scenarioByName(r.Scenario).Strata > 0 {
			// netqos: its htb with a root class, the default class and one
			// per pool with a net profile (latency-critical and batch), and
			// its classifier attached.
			if !strings.HasPrefix(sh.Root, "htb ") || sh.Classes < 4 || sh.Classifier == "" {
				t.Errorf("%s: link egress %+v; want netqos's htb with at least 4 classes and its classifier", r.Scenario, sh)
			}
		} else if sh.Root != "htb 1:" || sh.Classes != 1 || sh.Classifier != "" {
			t.Errorf("%s: link egress %+v; want the plain htb 1: with one class, no classifier", r.Scenario, sh)
		}
	}
	if _, err := os.Stat("/run/netns/" + netnsName(os.Getpid())); err == nil {
		t.Errorf("the benchmark's network namespace is left after the run")
	}
	if clientDial != nil {
		t.Errorf("the load generator still dials into the removed namespace")
	}
	if !strings.Contains(rep.Markdown(), "batch net Mbit/s") {
		t.Errorf("markdown lacks the network blaster's column")
	}
}

// TestOptionsValidateNet checks a -net link rate out of range is refused
// with the field named, before anything is built.
func TestOptionsValidateNet(t *testing.T) {
	o := Options{Duration: time.Second, Repeats: 1, Loads: []float64{0.5}, Work: 100, Net: true}
	for _, l := range []uint64{0, 999_999, 200e9} {
		o.NetLink = l
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), "net link") {
			t.Errorf("net link %d: got %v, want an error naming the net link", l, err)
		}
	}
	o.NetLink = 200e6
	if err := o.validate(); err != nil {
		t.Errorf("net link 200M refused: %v", err)
	}
}
