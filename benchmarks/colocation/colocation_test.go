package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/internal/testutil"
)

func TestMain(m *testing.M) {
	runRole() // a child re-executed by the benchmark never returns from here
	os.Exit(m.Run())
}

// TestKernelColocationSmoke runs every scenario once, briefly, so the
// benchmark cannot rot. It asserts sanity only — every scenario ran and
// produced latencies, work rates and ratios — never a performance goal:
// those belong in docs/benchmarks.md.
func TestKernelColocationSmoke(t *testing.T) {
	testutil.RequireRoot(t)
	rep, err := Run(context.Background(), Options{Duration: 1 * time.Second, Repeats: 1, Load: 0.3, Work: 500})
	if err != nil {
		t.Fatal(err)
	}
	if rep.CapacityRPS <= 0 {
		t.Fatalf("capacity %g req/s", rep.CapacityRPS)
	}
	if len(rep.Results) != len(scenarios) {
		t.Fatalf("%d results, want one per scenario (%d)", len(rep.Results), len(scenarios))
	}
	for _, r := range rep.Results {
		s := scenarioByName(r.Scenario)
		if r.Repeats != 1 {
			t.Errorf("%s: %d repeats, want 1", r.Scenario, r.Repeats)
		}
		if s.LC {
			if r.Sent == 0 || r.Errors == r.Sent {
				t.Errorf("%s: %d LC requests, %d errors", r.Scenario, r.Sent, r.Errors)
			}
			if !(r.P50 > 0 && r.P50 <= r.P99 && r.P99 <= r.P999) {
				t.Errorf("%s: quantiles p50 %g p99 %g p99.9 %g ms not positive and ordered", r.Scenario, r.P50, r.P99, r.P999)
			}
			if r.P99Ratio <= 0 {
				t.Errorf("%s: p99 ratio to alone not computed", r.Scenario)
			}
		}
		if s.Batch {
			if r.CPUWork <= 0 || r.MemWork <= 0 || r.CPUWorkRatio <= 0 || r.MemWorkRatio <= 0 {
				t.Errorf("%s: batch work cpu %g/s (ratio %g), mem %g/s (ratio %g)", r.Scenario, r.CPUWork, r.CPUWorkRatio, r.MemWork, r.MemWorkRatio)
			}
		}
		if r.NodeUtil <= 0 || r.NodeUtil > 1 {
			t.Errorf("%s: node CPU utilisation %g, want in (0, 1]", r.Scenario, r.NodeUtil)
		}
	}
	md := rep.Markdown()
	for _, s := range scenarios {
		if !strings.Contains(md, "| "+s.Name+" |") {
			t.Errorf("markdown lacks a row for %s:\n%s", s.Name, md)
		}
	}
	var svg strings.Builder
	if err := rep.WriteSVG(&svg); err != nil || !strings.Contains(svg.String(), "<svg") {
		t.Errorf("svg plot: %v (%d bytes)", err, svg.Len())
	}
	t.Log("\n" + md)
}

// TestOptionsValidate checks bad options are refused with the field named.
func TestOptionsValidate(t *testing.T) {
	good := Options{Duration: time.Second, Repeats: 1, Load: 0.5, Work: 100}
	for _, c := range []struct {
		mut  func(*Options)
		want string
	}{
		{func(o *Options) { o.Duration = time.Millisecond }, "duration"},
		{func(o *Options) { o.Repeats = 0 }, "repeats"},
		{func(o *Options) { o.Load = 1.5 }, "load"},
		{func(o *Options) { o.Work = 0 }, "work"},
		{func(o *Options) { o.Scenarios = []string{"nope"} }, "scenario \"nope\""},
	} {
		o := good
		c.mut(&o)
		err := o.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("validate: got %v, want an error naming %s", err, c.want)
		}
	}
	if err := good.validate(); err != nil {
		t.Errorf("good options refused: %v", err)
	}
}

// TestWriteSVG draws a report and checks the chart names every scenario
// with a p99, and refuses a report with none.
func TestWriteSVG(t *testing.T) {
	rep := &Report{CPUs: 2, Options: Options{Load: 0.5}, Results: []Result{
		{Scenario: "lc-alone", P99: 2}, {Scenario: "batch-alone"}, {Scenario: "static-pools", P99: 40},
	}}
	var b strings.Builder
	if err := rep.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"<svg", "lc-alone", "static-pools"} {
		if !strings.Contains(b.String(), n) {
			t.Errorf("svg lacks %q", n)
		}
	}
	if strings.Contains(b.String(), "batch-alone") {
		t.Errorf("svg has a bar for batch-alone, which has no LC latency")
	}
	if err := (&Report{}).WriteSVG(&b); err == nil {
		t.Errorf("empty report drew a chart")
	}
}
