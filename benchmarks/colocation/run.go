package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
)

// Options sets one benchmark run.
type Options struct {
	Duration time.Duration // one scenario's measurement
	Repeats  int           // times every scenario runs, interleaved
	Load     float64       // LC offered load, fraction of capacity alone
	Work     int           // LC per-request work
	// Scenarios limits the run to these names (default: all).
	Scenarios []string
}

func (o *Options) validate() error {
	if o.Duration < 500*time.Millisecond || o.Duration > 10*time.Minute {
		return fmt.Errorf("duration %s: want 500ms..10m", o.Duration)
	}
	if o.Repeats < 1 || o.Repeats > 100 {
		return fmt.Errorf("repeats %d: want 1..100", o.Repeats)
	}
	if o.Load < 0.05 || o.Load > 0.95 {
		return fmt.Errorf("load %g: want 0.05..0.95", o.Load)
	}
	if o.Work < 1 || o.Work > 1<<20 {
		return fmt.Errorf("work %d: want 1..%d", o.Work, 1<<20)
	}
	for _, s := range o.Scenarios {
		if scenarioByName(s) == nil {
			return fmt.Errorf("scenario %q: unknown; allowed: %s", s, strings.Join(scenarioNames(), ", "))
		}
	}
	return nil
}

// scenario is one isolation scheme: which workloads run and how their
// cgroups are set before the measurement.
type scenario struct {
	Name  string
	LC    bool
	Batch bool
	setup func(e *env) error
}

func noSetup(*env) error { return nil }

var scenarios = []scenario{
	{Name: "lc-alone", LC: true, setup: noSetup},
	{Name: "batch-alone", Batch: true, setup: noSetup},
	{Name: "no-isolation", LC: true, Batch: true, setup: noSetup},
	{Name: "k8s-static", LC: true, Batch: true, setup: func(e *env) error {
		// As the kubelet does: BestEffort batch gets cpu.shares 2, the LC
		// pod shares by its request (here one CPU: 1024).
		if err := e.batch.SetCPUShares(2); err != nil {
			return err
		}
		return e.lc.SetCPUShares(1024)
	}},
	{Name: "static-pools", LC: true, Batch: true, setup: func(e *env) error {
		// Disjoint cpusets sized once: the LC pool gets the first half of
		// the CPUs (at least one), batch the rest; no feedback loop.
		all := e.cpus.List()
		if len(all) < 2 {
			return fmt.Errorf("static-pools needs 2 CPUs, have %s", e.cpus)
		}
		n := len(all) / 2
		if err := e.lc.SetCPUSetCPUs(cpuset.New(all[:n]...)); err != nil {
			return err
		}
		return e.batch.SetCPUSetCPUs(cpuset.New(all[n:]...))
	}},
}

func scenarioByName(n string) *scenario {
	for i := range scenarios {
		if scenarios[i].Name == n {
			return &scenarios[i]
		}
	}
	return nil
}

func scenarioNames() []string {
	var n []string
	for _, s := range scenarios {
		n = append(n, s.Name)
	}
	return n
}

// env is the benchmark's cgroups, recreated for every scenario run so no
// setting leaks from one scheme into the next.
type env struct {
	h         *cgroup.Hierarchy
	root      string
	lc, batch *cgroup.Cgroup
	cpus      cpuset.CPUSet
}

func (e *env) create() error {
	var err error
	if e.lc, err = e.h.Create(e.root + "/lc"); err != nil {
		return err
	}
	e.batch, err = e.h.Create(e.root + "/batch")
	return err
}

func (e *env) remove() error {
	var errs []error
	for _, c := range []*cgroup.Cgroup{e.lc, e.batch} {
		if c != nil {
			errs = append(errs, c.Remove())
		}
	}
	if top, err := e.h.Open(e.root); err == nil {
		errs = append(errs, top.Remove())
	}
	return errors.Join(errs...)
}

// child is one running child process of this binary.
type child struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

func startChild(cg *cgroup.Cgroup, role string, extra ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	c := &child{cmd: cmd, out: bufio.NewReader(pipe)}
	if err := cg.AddProc(cmd.Process.Pid); err != nil {
		c.kill()
		return nil, fmt.Errorf("place %s (pid %d) in %s: %w", role, cmd.Process.Pid, cg.Path(), err)
	}
	return c, nil
}

// stop ends the child with SIGTERM and returns its last stdout line.
func (c *child) stop() (string, error) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	line, _ := c.out.ReadString('\n')
	err := c.cmd.Wait()
	return strings.TrimSpace(line), err
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// Result is one scenario's figures, averaged over its repeats where it has
// several (latency quantiles are taken over the merged histogram).
type Result struct {
	Scenario     string  `json:"scenario"`
	Repeats      int     `json:"repeats"`
	Sent         int64   `json:"lc_requests,omitempty"`
	Errors       int64   `json:"lc_errors,omitempty"`
	P50          float64 `json:"lc_p50_ms,omitempty"`
	P99          float64 `json:"lc_p99_ms,omitempty"`
	P999         float64 `json:"lc_p999_ms,omitempty"`
	P99Ratio     float64 `json:"lc_p99_ratio_to_alone,omitempty"`
	CPUWork      float64 `json:"batch_cpu_ops_per_s,omitempty"`
	MemWork      float64 `json:"batch_mem_mib_per_s,omitempty"`
	CPUWorkRatio float64 `json:"batch_cpu_ratio_to_alone,omitempty"`
	MemWorkRatio float64 `json:"batch_mem_ratio_to_alone,omitempty"`
	NodeUtil     float64 `json:"node_cpu_utilisation"`
}

// Report is a whole run.
type Report struct {
	Started     time.Time `json:"started"`
	CPUs        int       `json:"cpus"`
	LoadAvg     string    `json:"loadavg_at_start"`
	Kernel      string    `json:"kernel"`
	CgroupMode  string    `json:"cgroup_mode"`
	CapacityRPS float64   `json:"lc_capacity_rps"`
	OfferedRPS  float64   `json:"lc_offered_rps"`
	Options     Options   `json:"options"`
	Results     []Result  `json:"results"`
}

// Run measures the LC service's capacity, then every scenario Repeats
// times, interleaved. It needs root and cgroups with the cpu and cpuset
// controllers.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	h, err := cgroup.Detect(cgroup.Options{})
	if err != nil {
		return nil, err
	}
	cpus := cpuset.New()
	for i := 0; i < runtime.NumCPU(); i++ {
		cpus = cpus.Union(cpuset.New(i))
	}
	e := &env{h: h, root: fmt.Sprintf("strata-colocation-%d", os.Getpid()), cpus: cpus}
	rep := &Report{Started: time.Now().UTC(), CPUs: cpus.Size(), CgroupMode: h.Mode().String(), Options: o}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadAvg = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rep.Kernel = strings.TrimSpace(string(b))
	}
	names := o.Scenarios
	if len(names) == 0 {
		names = scenarioNames()
	}

	// Capacity alone: a closed loop with one client per CPU.
	capDur := o.Duration / 2
	if capDur < 500*time.Millisecond {
		capDur = 500 * time.Millisecond
	}
	err = e.with(func() error {
		lc, addr, err := startLC(e.lc, o.Work)
		if err != nil {
			return err
		}
		defer lc.kill()
		rep.CapacityRPS = capacity(ctx, "http://"+addr+"/", cpus.Size(), capDur)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	if rep.CapacityRPS <= 0 {
		return nil, fmt.Errorf("capacity: the LC service answered no request in %s", capDur)
	}
	rep.OfferedRPS = rep.CapacityRPS * o.Load

	type acc struct {
		r    Result
		hist *LoadResult
		cpuS float64
		memS float64
		util float64
	}
	accs := map[string]*acc{}
	rng := rand.New(rand.NewPCG(1, 2))
	for rpt := 0; rpt < o.Repeats; rpt++ {
		for _, n := range names {
			s := scenarioByName(n)
			var m measurement
			err := e.with(func() error {
				var err error
				m, err = measure(ctx, e, s, o, rep.OfferedRPS, rng)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("scenario %s (repeat %d): %w", n, rpt+1, err)
			}
			a := accs[n]
			if a == nil {
				a = &acc{r: Result{Scenario: n}}
				accs[n] = a
			}
			a.r.Repeats++
			if m.lc != nil {
				if a.hist == nil {
					a.hist = m.lc
				} else {
					a.hist.Sent += m.lc.Sent
					a.hist.Errors += m.lc.Errors
					a.hist.Hist.Merge(m.lc.Hist)
				}
			}
			a.cpuS += m.cpuOps
			a.memS += m.memOps
			a.util += m.util
		}
	}
	for _, n := range names {
		a := accs[n]
		r := a.r
		k := float64(r.Repeats)
		r.CPUWork, r.MemWork, r.NodeUtil = a.cpuS/k, a.memS/k, a.util/k
		if a.hist != nil {
			r.Sent, r.Errors = a.hist.Sent, a.hist.Errors
			r.P50 = float64(a.hist.Hist.ValueAtQuantile(50)) / 1000
			r.P99 = float64(a.hist.Hist.ValueAtQuantile(99)) / 1000
			r.P999 = float64(a.hist.Hist.ValueAtQuantile(99.9)) / 1000
		}
		rep.Results = append(rep.Results, r)
	}
	var alone, batchAlone *Result
	for i := range rep.Results {
		switch rep.Results[i].Scenario {
		case "lc-alone":
			alone = &rep.Results[i]
		case "batch-alone":
			batchAlone = &rep.Results[i]
		}
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if alone != nil && alone.P99 > 0 && r.P99 > 0 {
			r.P99Ratio = r.P99 / alone.P99
		}
		if batchAlone != nil && batchAlone.CPUWork > 0 && r.CPUWork > 0 {
			r.CPUWorkRatio = r.CPUWork / batchAlone.CPUWork
			r.MemWorkRatio = r.MemWork / batchAlone.MemWork
		}
	}
	return rep, nil
}

// with creates the benchmark's cgroups, runs f, and removes them again
// whatever f returned.
func (e *env) with(f func() error) error {
	if err := e.create(); err != nil {
		_ = e.remove()
		return err
	}
	ferr := f()
	// Children are gone by now, but the kernel may take a moment to
	// empty a cgroup of an exited task.
	var rerr error
	for i := 0; i < 50; i++ {
		if rerr = e.remove(); rerr == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.Join(ferr, rerr)
}

func startLC(cg *cgroup.Cgroup, work int) (*child, string, error) {
	c, err := startChild(cg, "lc", workEnv+"="+strconv.Itoa(work))
	if err != nil {
		return nil, "", err
	}
	addr, err := c.out.ReadString('\n')
	if err != nil {
		c.kill()
		return nil, "", fmt.Errorf("lc service printed no address: %w", err)
	}
	return c, strings.TrimSpace(addr), nil
}

type measurement struct {
	lc             *LoadResult
	cpuOps, memOps float64 // per second
	util           float64 // node CPU busy fraction
}

func measure(ctx context.Context, e *env, s *scenario, o Options, rps float64, rng *rand.Rand) (m measurement, err error) {
	if err := s.setup(e); err != nil {
		return m, err
	}
	var lc, cpu, mem *child
	defer func() {
		for _, c := range []*child{lc, cpu, mem} {
			if c != nil && c.cmd.ProcessState == nil {
				c.kill()
			}
		}
	}()
	var addr string
	if s.LC {
		if lc, addr, err = startLC(e.lc, o.Work); err != nil {
			return m, err
		}
	}
	if s.Batch {
		if cpu, err = startChild(e.batch, "cpu"); err != nil {
			return m, err
		}
		if mem, err = startChild(e.batch, "mem"); err != nil {
			return m, err
		}
	}
	time.Sleep(200 * time.Millisecond) // let the antagonists reach steady state
	busy0, total0 := cpuTimes()
	if s.LC {
		r := openLoop(ctx, "http://"+addr+"/", rps, o.Duration, rng)
		m.lc = &r
	} else {
		time.Sleep(o.Duration)
	}
	busy1, total1 := cpuTimes()
	if total1 > total0 {
		m.util = float64(busy1-busy0) / float64(total1-total0)
	}
	if s.Batch {
		if m.cpuOps, err = antagonistRate(cpu); err != nil {
			return m, fmt.Errorf("cpu burner: %w", err)
		}
		if m.memOps, err = antagonistRate(mem); err != nil {
			return m, fmt.Errorf("memory thrasher: %w", err)
		}
	}
	if lc != nil {
		if _, err := lc.stop(); err != nil {
			return m, fmt.Errorf("lc service: %w", err)
		}
	}
	return m, nil
}

func antagonistRate(c *child) (float64, error) {
	line, err := c.stop()
	if err != nil {
		return 0, err
	}
	var ops, secs float64
	if _, err := fmt.Sscanf(line, "%f %f", &ops, &secs); err != nil || secs <= 0 {
		return 0, fmt.Errorf("report %q: want \"<ops> <seconds>\"", line)
	}
	return ops / secs, nil
}

// cpuTimes returns the node's busy and total jiffies from /proc/stat.
func cpuTimes() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
