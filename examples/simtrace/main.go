// Command simtrace runs Strata's pool controller in simulation on a CPU
// utilisation trace of your own, and prints how each pool kept its band,
// how much CPU the node used and how much batch got.
//
//	go run ./examples/simtrace --trace trace.csv --pools web=online,db=latency-critical,etl=batch
//
// The trace is CSV with a header and three columns:
//
//	timestamp  seconds since the trace began (a number), or RFC 3339
//	group      a container or group of containers ("web", "c_1234")
//	cores      CPU cores the group used at that time
//
// Each group becomes one simulated container that requests its peak usage
// times --request-factor and demands, each period, its latest sample. Groups not named in --pools
// go to --default-pool. The machine is a named shape (--machine, e.g.
// intel-2s-20c-2t, epyc-nps1, vm2) or this host's real topology
// (--machine host).
//
// An Alibaba cluster-trace-v2018 machine converts with (cpu_request is in
// hundredths of a core, cpu_util_percent a percentage of it):
//
//	awk -F, 'NR==FNR {req[$1]=$6/100; next} $2==M && ($1 in req) {printf "%s,%s,%.3f\n", $3, $1, $4/100*req[$1]}' \
//	    M=m_1932 container_meta.csv container_usage.csv | sort -t, -k1,1n | sed '1i timestamp,group,cores' > trace.csv
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/isolation/sim"
)

// Bounds on the input, so a mistaken file fails clearly instead of
// exhausting memory.
const (
	maxRows   = 5_000_000
	maxGroups = 10_000
	maxCores  = 4096
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "simtrace:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("simtrace", flag.ContinueOnError)
	tracePath := fs.String("trace", "", "CSV trace: timestamp,group,cores (required)")
	pools := fs.String("pools", "", "group=pool,... (pools: those of the configuration)")
	defaultPool := fs.String("default-pool", isolation.PoolOnline, "pool of groups not named in --pools")
	machine := fs.String("machine", cpusettest.Intel2S20C2T.Name, "named machine shape, or \"host\"")
	configPath := fs.String("config", "", "Strata configuration (default: the built-in one)")
	period := fs.Duration("period", 0, "loop period (default: the configuration's)")
	requestFactor := fs.Float64("request-factor", 2, "each group requests its peak usage × this (services request headroom above their peak), 1..10")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *requestFactor < 1 || *requestFactor > 10 || math.IsNaN(*requestFactor) {
		return fmt.Errorf("--request-factor %v: want 1..10", *requestFactor)
	}
	if *tracePath == "" {
		return errors.New("--trace is required")
	}
	cfg := isolation.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = isolation.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if *period > 0 {
		cfg.Period = isolation.Duration{Duration: *period}
	}
	poolOf, err := parsePools(*pools, cfg)
	if err != nil {
		return err
	}
	if !hasPool(cfg, *defaultPool) {
		return fmt.Errorf("--default-pool %q: not a pool of the configuration (%s)", *defaultPool, poolNames(cfg))
	}
	f, err := os.Open(*tracePath)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, err := readTrace(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *tracePath, err)
	}
	topo, cleanup, err := topology(*machine)
	if err != nil {
		return err
	}
	defer cleanup()

	// Every group's namespace is its pool's name, and every pool admits
	// its namespace, so the trace's own assignment is what the simulation
	// sees (the default configuration's allow-lists stay closed otherwise).
	for i := range cfg.Pools {
		cfg.Pools[i].Allow = isolation.AllowList{Namespaces: []string{cfg.Pools[i].Name}}
	}
	sc := sim.Scenario{Name: "trace", Config: cfg, Topology: topo, Start: sim.Day0,
		Duration: tr.length + cfg.Period.Duration, Seed: 1, Record: true}
	for _, g := range tr.groupNames() {
		pool := poolOf[g]
		if pool == "" {
			pool = *defaultPool
		}
		s := tr.groups[g]
		sc.Workloads = append(sc.Workloads, sim.Workload{
			Name: g, Namespace: pool, Pool: pool, Replicas: 1,
			CPURequestMilli: int64(math.Ceil(s.peak * *requestFactor * 1000)),
			CPU:             s.trace(),
		})
	}
	res, err := sim.Run(sc)
	if err != nil {
		return err
	}
	report(out, tr, topo, res)
	return nil
}

type series struct {
	t     []time.Duration
	cores []float64
	peak  float64
}

// trace is a step function: the latest sample at or before t.
func (s *series) trace() sim.Trace {
	return func(t, _ time.Duration) float64 {
		i := sort.Search(len(s.t), func(i int) bool { return s.t[i] > t }) - 1
		if i < 0 {
			return 0
		}
		return s.cores[i]
	}
}

type traceData struct {
	groups map[string]*series
	length time.Duration
	rows   int
}

func (t *traceData) groupNames() []string {
	names := make([]string, 0, len(t.groups))
	for g := range t.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}

func readTrace(r io.Reader) (*traceData, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if strings.Join(head, ",") != "timestamp,group,cores" {
		return nil, fmt.Errorf("header %q: want timestamp,group,cores", strings.Join(head, ","))
	}
	tr := &traceData{groups: map[string]*series{}}
	var first time.Time
	var firstNum float64
	started := false
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if tr.rows++; tr.rows > maxRows {
			return nil, fmt.Errorf("more than %d rows", maxRows)
		}
		var at time.Duration
		if v, err := strconv.ParseFloat(rec[0], 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			if !started {
				firstNum, started = v, true
			}
			at = time.Duration((v - firstNum) * float64(time.Second))
		} else if ts, err := time.Parse(time.RFC3339, rec[0]); err == nil {
			if !started {
				first, started = ts, true
			}
			at = ts.Sub(first)
		} else {
			return nil, fmt.Errorf("line %d: timestamp %q: want seconds or RFC 3339", line, rec[0])
		}
		if at < 0 {
			return nil, fmt.Errorf("line %d: timestamp %q before the first row's: sort the trace by time", line, rec[0])
		}
		cores, err := strconv.ParseFloat(rec[2], 64)
		if err != nil || math.IsNaN(cores) || cores < 0 || cores > maxCores {
			return nil, fmt.Errorf("line %d: cores %q: want a number in 0..%d", line, rec[2], maxCores)
		}
		g := tr.groups[rec[1]]
		if g == nil {
			if len(tr.groups) >= maxGroups {
				return nil, fmt.Errorf("line %d: more than %d groups", line, maxGroups)
			}
			if rec[1] == "" {
				return nil, fmt.Errorf("line %d: empty group", line)
			}
			g = &series{}
			tr.groups[strings.Clone(rec[1])] = g
		}
		g.t = append(g.t, at)
		g.cores = append(g.cores, cores)
		g.peak = max(g.peak, cores)
		tr.length = max(tr.length, at)
	}
	if len(tr.groups) == 0 {
		return nil, errors.New("no rows")
	}
	return tr, nil
}

func parsePools(s string, cfg *isolation.Config) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		g, p, ok := strings.Cut(kv, "=")
		if !ok || g == "" {
			return nil, fmt.Errorf("--pools %q: want group=pool[,group=pool]", kv)
		}
		if !hasPool(cfg, p) {
			return nil, fmt.Errorf("--pools %q: pool %q is not one of %s", kv, p, poolNames(cfg))
		}
		m[g] = p
	}
	return m, nil
}

func hasPool(cfg *isolation.Config, name string) bool {
	for _, p := range cfg.Pools {
		if p.Name == name {
			return true
		}
	}
	return false
}

func poolNames(cfg *isolation.Config) string {
	var n []string
	for _, p := range cfg.Pools {
		n = append(n, strconv.Quote(p.Name))
	}
	return strings.Join(n, ", ")
}

func topology(name string) (*strcpuset.Topology, func(), error) {
	if name == "host" {
		t, err := strcpuset.Discover("/sys")
		return t, func() {}, err
	}
	shape, ok := cpusettest.All()[name]
	if !ok {
		var names []string
		for n := range cpusettest.All() {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, nil, fmt.Errorf("--machine %q: want host or one of %s", name, strings.Join(names, ", "))
	}
	dir, err := os.MkdirTemp("", "simtrace-sysfs-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := cpusettest.WriteSysfs(dir, shape); err != nil {
		cleanup()
		return nil, nil, err
	}
	t, err := strcpuset.Discover(dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return t, cleanup, nil
}

func report(w io.Writer, tr *traceData, topo *strcpuset.Topology, r *sim.Result) {
	fmt.Fprintf(w, "trace: %d rows, %d groups, %s; machine: %d CPUs (%d usable), %d periods\n\n",
		tr.rows, len(tr.groups), tr.length, topo.Online().Size(), r.UsableCPUs, r.Periods)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tBAND\tIN BAND\tSHARED CPUS\tEXCLUSIVE\tMEAN LOAD\tRESIZES\tEXCURSIONS\tMEAN/MAX REACTION")
	for i, p := range r.Pools {
		var excl float64
		for _, s := range r.Samples {
			excl += float64(s.Pools[i].Exclusive)
		}
		if len(r.Samples) > 0 {
			excl /= float64(len(r.Samples))
		}
		fmt.Fprintf(tw, "%s\t%.0f–%.0f%%\t%.1f%%\t%.1f\t%.1f\t%.0f%%\t%d\t%d\t%.1f/%d periods\n", p.Name, p.Band.Low*100, p.Band.High*100,
			p.TimeInBand*100, p.MeanSize, excl, p.MeanLoad*100, p.Resizes, p.Excursions, p.MeanReaction, p.MaxReaction)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nnode CPU utilisation %.1f%%, batch share %.1f%%, batch used %.1f%% of the CPUs left to it\n",
		r.NodeUtilisation*100, r.BatchShare*100, r.BatchUseOfFree*100)
	if len(r.Evicted) > 0 {
		fmt.Fprintf(w, "evicted: %s\n", strings.Join(r.Evicted, ", "))
	}
}
