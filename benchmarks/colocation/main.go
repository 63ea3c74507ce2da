package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if runRole() {
		return
	}
	var o Options
	flag.DurationVar(&o.Duration, "duration", 5*time.Second, "length of one scenario's measurement (each phase of the step level)")
	flag.DurationVar(&o.Warmup, "warmup", 2*time.Second, "load before each measurement, the same in every scenario")
	flag.IntVar(&o.Repeats, "repeats", 2, "times every scenario runs (interleaved)")
	loads := flag.String("loads", "0.2,0.5,0.8", "steady LC offered loads, fractions of its capacity alone (0.05..0.95), comma-separated")
	flag.BoolVar(&o.Step, "step", true, "add a time-varying level: 20 % → 80 % → 20 % of capacity")
	flag.IntVar(&o.Work, "work", 2000, "LC per-request work: hashed 64-byte chunks of its working set")
	scen := flag.String("scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(scenarioNames(), ", ")+")")
	reaction := flag.Bool("reaction", true, "run the reaction benchmark (LC load steps under Strata at 1 s and 100 ms)")
	steps := flag.Int("reaction-steps", 20, "load steps per period in the reaction benchmark")
	overhead := flag.Bool("overhead", true, "run the overhead benchmark (the plugin's CPU and RSS at N containers)")
	ovN := flag.String("overhead-containers", "10,100,1000", "container counts of the overhead benchmark")
	colo := flag.Bool("colocation", true, "run the colocation scenarios")
	out := flag.String("out", "", "directory for colocation.md, .json and .svg (default: print Markdown only)")
	flag.Parse()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "colocation:", err)
		os.Exit(1)
	}
	var err error
	if o.Loads, err = parseFloats(*loads); err != nil {
		fail(fmt.Errorf("-loads: %w", err))
	}
	if *scen != "" {
		o.Scenarios = strings.Split(*scen, ",")
	}
	ctx := context.Background()
	var rep *Report
	if *colo {
		if rep, err = Run(ctx, o); err != nil {
			fail(err)
		}
	} else {
		e, err := newEnv("run")
		if err != nil {
			fail(err)
		}
		rep = newReport(e, o)
	}
	if *reaction {
		ro := DefaultReactionOptions()
		ro.Steps, ro.Work, ro.CapacityRPS = *steps, o.Work, rep.CapacityRPS
		if rep.Reaction, err = RunReaction(ctx, ro); err != nil {
			fail(err)
		}
	}
	if *overhead {
		oo := DefaultOverheadOptions()
		if oo.Containers, err = parseInts(*ovN); err != nil {
			fail(fmt.Errorf("-overhead-containers: %w", err))
		}
		if rep.Overhead, err = RunOverhead(ctx, oo); err != nil {
			fail(err)
		}
	}
	rep.LoadAvgEnd = loadavg()
	md := rep.Markdown()
	fmt.Print(md)
	if *out == "" {
		return
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	files := map[string][]byte{"colocation.md": []byte(md), "colocation.json": js}
	if len(rep.Results) > 0 {
		var svg bytes.Buffer
		if err := rep.WriteSVG(&svg); err != nil {
			fail(err)
		}
		files["colocation.svg"] = svg.Bytes()
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			fail(err)
		}
	}
}

func parseFloats(s string) ([]float64, error) {
	var v []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		x, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, err
		}
		v = append(v, x)
	}
	return v, nil
}

func parseInts(s string) ([]int, error) {
	var v []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		x, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		v = append(v, x)
	}
	return v, nil
}
