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

	"github.com/strata-nri/strata/netqos"
)

func main() {
	if runRole() {
		return
	}
	var o Options
	flag.DurationVar(&o.Duration, "duration", 4*time.Second, "length of one scenario's measurement (each phase of the step level)")
	flag.DurationVar(&o.Warmup, "warmup", 2*time.Second, "load before each measurement, the same in every scenario")
	flag.IntVar(&o.Repeats, "repeats", 2, "times every scenario runs (interleaved)")
	loads := flag.String("loads", "0.2,0.5,0.8", "steady LC offered loads, fractions of its capacity alone (0.05..0.95), comma-separated")
	flag.BoolVar(&o.Step, "step", true, "add a time-varying level: 20 % → 80 % → 20 % of capacity")
	flag.IntVar(&o.Work, "work", 2000, "LC per-request work: hashed 64-byte chunks of its working set")
	flag.BoolVar(&o.Fsync, "fsync", false, "each LC request appends a 128-byte record to a log and fsyncs it (on an ext4 loop device of the benchmark's)")
	flag.BoolVar(&o.Disk, "disk", false, "add a disk-streaming batch antagonist (1 MiB direct writes on the same loop device)")
	flag.BoolVar(&o.Net, "net", false, "add a network-blast batch antagonist sharing a capped link (a veth into a network namespace of the benchmark's) with the LC service's responses")
	netLink := flag.String("net-link", "200M", "the -net link's rate in bit/s (a quantity: 200M, 1G), far below what the CPUs push through a veth")
	scen := flag.String("scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(scenarioNames(), ", ")+")")
	reaction := flag.Bool("reaction", true, "run the reaction benchmark (LC load steps under Strata at 1 s and 100 ms)")
	steps := flag.Int("reaction-steps", 20, "load steps per period in the reaction benchmark")
	rCompare := flag.Bool("reaction-compare", false, "alternate the reaction's steps between fixed 2.5 s / 2 s phases (as before) and phases sized from the period, where they differ")
	rPeriods := flag.String("reaction-periods", "1s,100ms", "loop periods of the reaction benchmark, comma-separated")
	rWaiting := flag.String("reaction-waiting", "on", "resize.waiting variants of the reaction benchmark, comma-separated: on (the default configuration), off (growth on usage above the band only), or off,on for both side by side")
	overhead := flag.Bool("overhead", true, "run the overhead benchmark (the plugin's CPU and RSS at N containers)")
	ovN := flag.String("overhead-containers", "10,100,1000", "container counts of the overhead benchmark")
	ovP := flag.String("overhead-periods", "1s,100ms", "loop periods of the overhead benchmark, comma-separated")
	ovW := flag.Duration("overhead-window", 10*time.Second, "longest CPU-time window per overhead point (at least ten periods, at least half of it)")
	colo := flag.Bool("colocation", true, "run the colocation scenarios")
	flag.StringVar(&measureLock, "lock", "", "hold an exclusive flock on this file during each measured section (e.g. /tmp/strata-measure.lock)")
	out := flag.String("out", "", "directory for colocation.md, .json and .svg (default: print Markdown only)")
	quiet := flag.Bool("quiet", false, "no progress lines on stderr")
	flag.Parse()
	if !*quiet {
		progress = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s colocation: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
		}
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "colocation:", err)
		os.Exit(1)
	}
	var err error
	if o.Loads, err = parseFloats(*loads); err != nil {
		fail(fmt.Errorf("-loads: %w", err))
	}
	if o.Net {
		r, err := netqos.ParseRate("-net-link", *netLink)
		if err != nil {
			fail(err)
		}
		o.NetLink = uint64(r)
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
	// Results are written after each phase, so a run cut short keeps
	// what it measured.
	write := func() {
		rep.LoadAvgEnd = loadavg()
		if *out != "" {
			if err := writeReport(rep, *out); err != nil {
				fail(err)
			}
		}
	}
	write()
	if *reaction {
		ro := DefaultReactionOptions()
		ro.Steps, ro.Work, ro.CapacityRPS = *steps, o.Work, rep.CapacityRPS
		ro.Compare = *rCompare
		if ro.Periods, err = parseDurations(*rPeriods); err != nil {
			fail(fmt.Errorf("-reaction-periods: %w", err))
		}
		ro.Waiting = nil
		for _, w := range strings.Split(*rWaiting, ",") {
			if w = strings.TrimSpace(w); w != "" {
				ro.Waiting = append(ro.Waiting, w)
			}
		}
		if rep.Reaction, err = RunReaction(ctx, ro); err != nil {
			fail(err)
		}
		write()
	}
	if *overhead {
		oo := DefaultOverheadOptions()
		if oo.Containers, err = parseInts(*ovN); err != nil {
			fail(fmt.Errorf("-overhead-containers: %w", err))
		}
		if oo.Periods, err = parseDurations(*ovP); err != nil {
			fail(fmt.Errorf("-overhead-periods: %w", err))
		}
		oo.Window = *ovW
		if rep.Overhead, err = RunOverhead(ctx, oo); err != nil {
			fail(err)
		}
		write()
	}
	fmt.Print(rep.Markdown())
}

// writeReport writes colocation.md, .json and (with colocation results)
// .svg into dir.
func writeReport(rep *Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{"colocation.md": []byte(rep.Markdown()), "colocation.json": js}
	if len(rep.Results) > 0 {
		var svg bytes.Buffer
		if err := rep.WriteSVG(&svg); err != nil {
			return err
		}
		files["colocation.svg"] = svg.Bytes()
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
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

func parseDurations(s string) ([]time.Duration, error) {
	var v []time.Duration
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, err
		}
		v = append(v, d)
	}
	return v, nil
}
