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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
)

// Options sets one benchmark run.
type Options struct {
	Duration time.Duration // one scenario's measurement (the step level's phases each last this long)
	Warmup   time.Duration // load before the measurement starts, the same in every scenario
	Repeats  int           // times every scenario runs, interleaved
	Loads    []float64     // steady LC offered loads, fractions of capacity alone
	// Step adds a time-varying level: 20 % → 80 % → 20 % of capacity,
	// each phase Duration long.
	Step bool
	Work int // LC per-request work
	// Fsync makes every LC request append a 128-byte record to a log and
	// fsync it; Disk adds a disk-streaming antagonist to batch. Either
	// puts the benchmark on a disk of its own (an ext4 loop device), and
	// Strata's batch profile then gets block IO isolation (idle IO
	// priority, the default batch IO weight; see benchConfig).
	Fsync, Disk bool
	// Net adds a network blaster to batch and puts the LC service's
	// responses and the blaster's stream through one link of NetLink bits
	// per second (a veth into a network namespace of the benchmark's; see
	// benchNet), shaped by Strata's netqos in its scenarios.
	Net     bool
	NetLink uint64 `json:",omitempty"`
	// Scenarios limits the run to these names (default: all).
	Scenarios []string
}

func (o *Options) validate() error {
	if o.Duration < 500*time.Millisecond || o.Duration > 10*time.Minute {
		return fmt.Errorf("duration %s: want 500ms..10m", o.Duration)
	}
	if o.Warmup < 0 || o.Warmup > time.Minute {
		return fmt.Errorf("warmup %s: want 0..1m", o.Warmup)
	}
	if o.Repeats < 1 || o.Repeats > 100 {
		return fmt.Errorf("repeats %d: want 1..100", o.Repeats)
	}
	if len(o.Loads) == 0 && !o.Step {
		return fmt.Errorf("loads: none given and no step level; want at least one")
	}
	if len(o.Loads) > 10 {
		return fmt.Errorf("loads: %d levels, want at most 10", len(o.Loads))
	}
	for _, l := range o.Loads {
		if l < 0.05 || l > 0.95 {
			return fmt.Errorf("load %g: want 0.05..0.95", l)
		}
	}
	if o.Work < 1 || o.Work > 1<<20 {
		return fmt.Errorf("work %d: want 1..%d", o.Work, 1<<20)
	}
	if o.Net && (o.NetLink < 1e6 || o.NetLink > 100e9) {
		return fmt.Errorf("net link %d bit/s: want 1M..100G", o.NetLink)
	}
	for _, s := range o.Scenarios {
		if scenarioByName(s) == nil {
			return fmt.Errorf("scenario %q: unknown; allowed: %s", s, strings.Join(scenarioNames(), ", "))
		}
	}
	return nil
}

// level is one offered-load shape: the fraction of capacity at each
// moment of the measured window.
type level struct {
	Name string
	// frac gives the load fraction at t into the measurement (t < 0 is
	// the warm-up).
	frac func(t time.Duration) float64
	// length of the measured window
	length time.Duration
}

func (o *Options) levels() []level {
	var ls []level
	for _, f := range o.Loads {
		f := f
		ls = append(ls, level{Name: fmt.Sprintf("%.0f %%", 100*f), frac: func(time.Duration) float64 { return f }, length: o.Duration})
	}
	if o.Step {
		d := o.Duration
		ls = append(ls, level{Name: "step 20→80→20 %", length: 3 * d, frac: func(t time.Duration) float64 {
			if t >= d && t < 2*d {
				return 0.8
			}
			return 0.2
		}})
	}
	return ls
}

// scenario is one isolation scheme: which workloads run and how their
// cgroups are set before the measurement.
type scenario struct {
	Name  string
	LC    bool
	Batch bool
	// Strata, when non-zero, is the loop period of Strata's plugin, which
	// then admits and manages the LC and batch containers.
	Strata time.Duration
	setup  func(e *env) error
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
	{Name: "strata-1s", LC: true, Batch: true, Strata: time.Second, setup: noSetup},
	{Name: "strata-100ms", LC: true, Batch: true, Strata: 100 * time.Millisecond, setup: noSetup},
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
	disk      *benchDisk // nil without -fsync and -disk
	net       *benchNet  // nil without -net
	fsync     bool
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

// Result is one scenario's figures at one load level, averaged over its
// repeats where it has several (latency quantiles are taken over the
// merged histogram).
type Result struct {
	Scenario   string  `json:"scenario"`
	Level      string  `json:"level"`
	Repeats    int     `json:"repeats"`
	OfferedRPS float64 `json:"lc_offered_rps,omitempty"`
	Sent       int64   `json:"lc_requests,omitempty"`
	Errors     int64   `json:"lc_errors,omitempty"`
	P50        float64 `json:"lc_p50_ms,omitempty"`
	P99        float64 `json:"lc_p99_ms,omitempty"`
	P999       float64 `json:"lc_p999_ms,omitempty"`
	P99Ratio   float64 `json:"lc_p99_ratio_to_alone,omitempty"`
	// P99Min and P99Max are the lowest and highest p99 of single repeats:
	// the noise between repeats.
	P99Min       float64 `json:"lc_p99_min_of_repeats_ms,omitempty"`
	P99Max       float64 `json:"lc_p99_max_of_repeats_ms,omitempty"`
	CPUWork      float64 `json:"batch_cpu_ops_per_s,omitempty"`
	MemWork      float64 `json:"batch_mem_mib_per_s,omitempty"`
	CPUWorkRatio float64 `json:"batch_cpu_ratio_to_alone,omitempty"`
	MemWorkRatio float64 `json:"batch_mem_ratio_to_alone,omitempty"`
	// DiskWork is the disk antagonist's MiB/s written (with -disk).
	DiskWork      float64 `json:"batch_disk_mib_per_s,omitempty"`
	DiskWorkRatio float64 `json:"batch_disk_ratio_to_alone,omitempty"`
	// NetWork is the network blaster's Mbit/s sent (with -net); NetShape
	// what was on the link's egress during the (last) window.
	NetWork      float64  `json:"batch_net_mbit_per_s,omitempty"`
	NetWorkRatio float64  `json:"batch_net_ratio_to_alone,omitempty"`
	NetShape     netShape `json:"net_shape,omitzero"`
	// LCCPUs is the mean size of the LC cgroup's effective cpuset over
	// the window (sampled every 50 ms): what the scheme gave the LC
	// service.
	LCCPUs float64 `json:"lc_cpuset_cpus_mean,omitempty"`
	// LCUsage and BatchUsage are the CPUs (cores) each cgroup used.
	LCUsage    float64 `json:"lc_cpu_cores,omitempty"`
	BatchUsage float64 `json:"batch_cpu_cores,omitempty"`
	NodeUtil   float64 `json:"node_cpu_utilisation"`
	// BatchShares and BatchIdle are the batch cgroup's cpu.shares and
	// cpu.idle at the end of the (last) window: what the scheme set.
	BatchShares uint64 `json:"batch_cpu_shares,omitempty"`
	BatchIdle   bool   `json:"batch_cpu_idle,omitempty"`
	// UpdateFailures counts the plugin's updates the runtime stand-in
	// (writing as runc does) could not apply, over all repeats.
	UpdateFailures int `json:"runtime_update_failures,omitempty"`
}

// Report is a whole run.
type Report struct {
	Started     time.Time `json:"started"`
	CPUs        int       `json:"cpus"`
	LoadAvg     string    `json:"loadavg_at_start"`
	LoadAvgEnd  string    `json:"loadavg_at_end"`
	Kernel      string    `json:"kernel"`
	CgroupMode  string    `json:"cgroup_mode"`
	CapacityRPS float64   `json:"lc_capacity_rps"`
	Options     Options   `json:"options"`
	Results     []Result  `json:"results"`
	// Reaction and Overhead are the reaction and overhead benchmarks'
	// figures, when they ran.
	Reaction []ReactionResult `json:"reaction,omitempty"`
	Overhead []OverheadResult `json:"overhead,omitempty"`
	// Notes are distinct errors the runtime stand-in met applying the
	// plugin's updates, as runc would report them.
	Notes []string `json:"notes,omitempty"`
}

// note records a runtime error message once.
func (r *Report) note(msgs []string) {
	for _, m := range msgs {
		if len(r.Notes) < 8 && !slices.Contains(r.Notes, m) {
			r.Notes = append(r.Notes, m)
		}
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func nodeCPUs() cpuset.CPUSet {
	cpus := cpuset.New()
	for i := 0; i < runtime.NumCPU(); i++ {
		cpus = cpus.Union(cpuset.New(i))
	}
	return cpus
}

func newEnv(name string) (*env, error) {
	h, err := cgroup.Detect(cgroup.Options{})
	if err != nil {
		return nil, err
	}
	return &env{h: h, root: fmt.Sprintf("strata-colocation-%s-%d", name, os.Getpid()), cpus: nodeCPUs()}, nil
}

func newReport(e *env, o Options) *Report {
	rep := &Report{Started: time.Now().UTC(), CPUs: e.cpus.Size(), CgroupMode: e.h.Mode().String(), Options: o, LoadAvg: loadavg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rep.Kernel = strings.TrimSpace(string(b))
	}
	return rep
}

// measureCapacity runs the LC service alone under a closed loop with one
// client per CPU.
func measureCapacity(ctx context.Context, e *env, work int, d time.Duration) (float64, error) {
	var rps float64
	err := e.with(func() error {
		lc, addr, err := e.startLC(work)
		if err != nil {
			return err
		}
		defer lc.kill()
		rps = capacity(ctx, "http://"+addr+"/", e.cpus.Size(), d)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("capacity: %w", err)
	}
	if rps <= 0 {
		return 0, fmt.Errorf("capacity: the LC service answered no request in %s", d)
	}
	return rps, nil
}

// Run measures the LC service's capacity, then every scenario at every
// load level Repeats times, interleaved. It needs root and cgroups with the
// cpu and cpuset controllers.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	e, err := newEnv("run")
	if err != nil {
		return nil, err
	}
	rep := newReport(e, o)
	if o.Fsync || o.Disk {
		if e.disk, err = setupDisk(2048); err != nil {
			return nil, fmt.Errorf("benchmark disk: %w", err)
		}
		defer e.disk.remove()
		e.fsync = o.Fsync
	}
	if o.Net {
		interrupted := func() {
			_ = e.remove()
			if e.disk != nil {
				_ = e.disk.remove()
			}
		}
		if e.net, err = setupNet(o.NetLink, interrupted); err != nil {
			return nil, fmt.Errorf("benchmark network: %w", err)
		}
		clientDial = e.net.dial
		defer func() { clientDial = nil; e.net.remove() }()
	}
	names := o.Scenarios
	if len(names) == 0 {
		names = scenarioNames()
	}
	capDur := o.Duration / 2
	if capDur < 500*time.Millisecond {
		capDur = 500 * time.Millisecond
	}
	if err := locked(func() (err error) {
		rep.CapacityRPS, err = measureCapacity(ctx, e, o.Work, capDur)
		return err
	}); err != nil {
		return nil, err
	}

	type acc struct {
		r                       Result
		hist                    *LoadResult
		cpuS, memS, diskS, util float64
		netS                    float64
		lcCPUs, lcUsage, bUsage float64
	}
	accs := map[string]*acc{}
	var order []string
	levels := o.levels()
	rng := rand.New(rand.NewPCG(1, 2))
	run := func(s *scenario, lv *level, rpt int) error {
		var m measurement
		err := e.with(func() error {
			var err error
			m, err = measure(ctx, e, s, o, lv, rep.CapacityRPS, rng)
			return err
		})
		lname := "–"
		if lv != nil {
			lname = lv.Name
		}
		if err != nil {
			return fmt.Errorf("scenario %s at %s (repeat %d): %w", s.Name, lname, rpt+1, err)
		}
		progress("scenario %s at %s (repeat %d): LC p99 %.2f ms, batch cpu %.0f ops/s", s.Name, lname, rpt+1, p99ms(m.lc), m.cpuOps)
		key := s.Name + "\x00" + lname
		a := accs[key]
		if a == nil {
			a = &acc{r: Result{Scenario: s.Name, Level: lname}}
			if lv != nil && s.LC {
				a.r.OfferedRPS = rep.CapacityRPS * meanFrac(lv)
			}
			accs[key] = a
			order = append(order, key)
		}
		a.r.Repeats++
		if m.lc != nil {
			if p := p99ms(m.lc); a.r.P99Min == 0 || p < a.r.P99Min {
				a.r.P99Min = p
			}
			if p := p99ms(m.lc); p > a.r.P99Max {
				a.r.P99Max = p
			}
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
		a.diskS += m.diskOps
		a.netS += m.netMbit
		a.r.NetShape = m.netShape
		a.util += m.util
		a.lcCPUs += m.lcCPUs
		a.lcUsage += m.lcUsage
		a.bUsage += m.batchUsage
		a.r.BatchShares, a.r.BatchIdle = m.batchShares, m.batchIdle
		a.r.UpdateFailures += m.updateFailures
		rep.note(m.updateErrors)
		return nil
	}
	for rpt := 0; rpt < o.Repeats; rpt++ {
		// Batch alone does not depend on the LC load: once per repeat.
		err := locked(func() error {
			for _, n := range names {
				if s := scenarioByName(n); !s.LC {
					if err := run(s, nil, rpt); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for li := range levels {
			err := locked(func() error {
				for _, n := range names {
					if s := scenarioByName(n); s.LC {
						if err := run(s, &levels[li], rpt); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	for _, key := range order {
		a := accs[key]
		r := a.r
		k := float64(r.Repeats)
		r.CPUWork, r.MemWork, r.DiskWork, r.NodeUtil = a.cpuS/k, a.memS/k, a.diskS/k, a.util/k
		r.LCCPUs, r.LCUsage, r.BatchUsage = a.lcCPUs/k, a.lcUsage/k, a.bUsage/k
		r.NetWork = a.netS / k
		if a.hist != nil {
			r.Sent, r.Errors = a.hist.Sent, a.hist.Errors
			r.P50 = float64(a.hist.Hist.ValueAtQuantile(50)) / 1000
			r.P99 = float64(a.hist.Hist.ValueAtQuantile(99)) / 1000
			r.P999 = float64(a.hist.Hist.ValueAtQuantile(99.9)) / 1000
		}
		rep.Results = append(rep.Results, r)
	}
	alone := map[string]*Result{}
	var batchAlone *Result
	for i := range rep.Results {
		switch rep.Results[i].Scenario {
		case "lc-alone":
			alone[rep.Results[i].Level] = &rep.Results[i]
		case "batch-alone":
			batchAlone = &rep.Results[i]
		}
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if a := alone[r.Level]; a != nil && a.P99 > 0 && r.P99 > 0 {
			r.P99Ratio = r.P99 / a.P99
		}
		if batchAlone != nil && batchAlone.CPUWork > 0 && r.CPUWork > 0 {
			r.CPUWorkRatio = r.CPUWork / batchAlone.CPUWork
			r.MemWorkRatio = r.MemWork / batchAlone.MemWork
			if batchAlone.DiskWork > 0 {
				r.DiskWorkRatio = r.DiskWork / batchAlone.DiskWork
			}
			if batchAlone.NetWork > 0 {
				r.NetWorkRatio = r.NetWork / batchAlone.NetWork
			}
		}
	}
	rep.LoadAvgEnd = loadavg()
	return rep, nil
}

// meanFrac is a level's mean load fraction over its measured window.
func meanFrac(lv *level) float64 {
	const n = 300
	var s float64
	for i := 0; i < n; i++ {
		s += lv.frac(time.Duration(float64(lv.length) * (float64(i) + 0.5) / n))
	}
	return s / n
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

// startAntagonist starts a batch antagonist in cg and waits until it can
// be asked for its counters.
func startAntagonist(cg *cgroup.Cgroup, role string, extra ...string) (*child, error) {
	c, err := startChild(cg, role, extra...)
	if err != nil {
		return nil, err
	}
	if line, err := c.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		c.kill()
		return nil, fmt.Errorf("antagonist %s: said %q (%v), want \"ready\"", role, line, err)
	}
	return c, nil
}

func (e *env) startLC(work int) (*child, string, error) {
	extra := []string{workEnv + "=" + strconv.Itoa(work)}
	if e.fsync {
		extra = append(extra, fsyncEnv+"=1", dirEnv+"="+e.disk.mnt)
	}
	if e.net != nil {
		extra = append(extra, lcListenEnv+"="+netHostIP+":0")
	}
	c, err := startChild(e.lc, "lc", extra...)
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
	lc                  *LoadResult
	cpuOps, memOps      float64 // per second
	diskOps             float64 // MiB/s
	netMbit             float64 // Mbit/s
	netShape            netShape
	util                float64 // node CPU busy fraction
	lcCPUs              float64 // mean cpuset size of the LC cgroup
	lcUsage, batchUsage float64 // cores
	batchShares         uint64
	batchIdle           bool
	updateFailures      int
	updateErrors        []string
}

func measure(ctx context.Context, e *env, s *scenario, o Options, lv *level, capRPS float64, rng *rand.Rand) (m measurement, err error) {
	if err := s.setup(e); err != nil {
		return m, err
	}
	if e.net != nil {
		undo, err := e.net.shape(s.Strata > 0)
		if err != nil {
			return m, err
		}
		defer func() {
			if uerr := undo(); uerr != nil && err == nil {
				err = uerr
			}
		}()
	}
	var st *strataSession
	if s.Strata > 0 {
		if st, err = startStrata(ctx, e.strataConfig(s.Strata, 0), nil); err != nil {
			return m, err
		}
		defer func() {
			if serr := st.stop(ctx); serr != nil && err == nil {
				err = serr
			}
		}()
		var lcCg, bCg *cgroup.Cgroup
		if s.LC {
			lcCg = e.lc
		}
		if s.Batch {
			bCg = e.batch
		}
		if err := st.createPair(ctx, lcCg, bCg, e.cpus.Size()); err != nil {
			return m, err
		}
	}
	var lc, cpu, mem, disk, blast *child
	defer func() {
		for _, c := range []*child{lc, cpu, mem, disk, blast} {
			if c != nil && c.cmd.ProcessState == nil {
				c.kill()
			}
		}
	}()
	var addr string
	if s.LC {
		if lc, addr, err = e.startLC(o.Work); err != nil {
			return m, err
		}
	}
	if s.Batch {
		if cpu, err = startAntagonist(e.batch, "cpu"); err != nil {
			return m, err
		}
		if mem, err = startAntagonist(e.batch, "mem"); err != nil {
			return m, err
		}
		if o.Disk {
			if disk, err = startAntagonist(e.batch, "disk", dirEnv+"="+e.disk.mnt); err != nil {
				return m, err
			}
		}
		if e.net != nil {
			if blast, err = startAntagonist(e.batch, "net", netSinkEnv+"="+e.net.sinkAddr); err != nil {
				return m, err
			}
		}
	}
	if st != nil {
		if err := st.startAll(ctx); err != nil {
			return m, err
		}
	}
	// The measured window opens after the warm-up: the antagonists reach
	// steady state and, under Strata, the loop sees the load.
	window := o.Duration
	if lv != nil {
		window = lv.length
	}
	var w windowStats
	begin := func(time.Time) {
		w.begin(e, cpu, mem, disk)
		if blast != nil {
			w.net0, _ = blast.mark()
		}
	}
	if s.LC {
		r := openLoop(ctx, loadSpec{url: "http://" + addr + "/", rate: func(t time.Duration) float64 { return capRPS * lv.frac(t) },
			warmup: o.Warmup, window: window, begin: begin}, rng)
		m.lc = &r
	} else {
		time.Sleep(o.Warmup)
		begin(time.Now())
		time.Sleep(window)
	}
	if err := w.end(e, &m); err != nil {
		return m, err
	}
	if e.net != nil {
		if m.netShape, err = e.net.inspect(); err != nil {
			return m, err
		}
	}
	if s.Batch {
		if m.cpuOps, err = antagonistRate(cpu, w.cpu0); err != nil {
			return m, fmt.Errorf("cpu burner: %w", err)
		}
		if m.memOps, err = antagonistRate(mem, w.mem0); err != nil {
			return m, fmt.Errorf("memory thrasher: %w", err)
		}
		if disk != nil {
			if m.diskOps, err = antagonistRate(disk, w.disk0); err != nil {
				return m, fmt.Errorf("disk streamer: %w", err)
			}
		}
		if blast != nil {
			bps, err := antagonistRate(blast, w.net0)
			if err != nil {
				return m, fmt.Errorf("network blaster: %w", err)
			}
			m.netMbit = bps * 8 / 1e6
		}
	}
	if lc != nil {
		if _, err := lc.stop(); err != nil {
			return m, fmt.Errorf("lc service: %w", err)
		}
	}
	if st != nil {
		m.updateFailures, m.updateErrors = st.rt.updateErrors()
	}
	return m, nil
}

// windowStats collects what is measured over the window besides the LC
// latencies: node and cgroup CPU time, the LC cpuset's size, the
// antagonists' counters at its start.
type windowStats struct {
	busy0, total0 uint64
	lc0, b0       time.Duration
	t0            time.Time
	cpu0, mem0    antagonistMark
	disk0, net0   antagonistMark
	stopSampling  chan struct{}
	samples       chan float64
}

func (w *windowStats) begin(e *env, cpu, mem, disk *child) {
	w.t0 = time.Now()
	w.busy0, w.total0 = cpuTimes()
	w.lc0, _ = e.lc.CPUUsage()
	w.b0, _ = e.batch.CPUUsage()
	if cpu != nil {
		w.cpu0, _ = cpu.mark()
		w.mem0, _ = mem.mark()
	}
	if disk != nil {
		w.disk0, _ = disk.mark()
	}
	w.stopSampling = make(chan struct{})
	w.samples = make(chan float64, 1)
	go func() {
		var sum, n float64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if c, err := e.lc.EffectiveCPUs(); err == nil {
				sum += float64(c.Size())
				n++
			}
			select {
			case <-w.stopSampling:
				if n > 0 {
					w.samples <- sum / n
				} else {
					w.samples <- 0
				}
				return
			case <-t.C:
			}
		}
	}()
}

func (w *windowStats) end(e *env, m *measurement) error {
	if w.stopSampling == nil {
		return fmt.Errorf("the measured window never opened")
	}
	busy1, total1 := cpuTimes()
	if total1 > w.total0 {
		m.util = float64(busy1-w.busy0) / float64(total1-w.total0)
	}
	secs := time.Since(w.t0).Seconds()
	if u, err := e.lc.CPUUsage(); err == nil {
		m.lcUsage = (u - w.lc0).Seconds() / secs
	}
	if u, err := e.batch.CPUUsage(); err == nil {
		m.batchUsage = (u - w.b0).Seconds() / secs
	}
	m.batchShares, _ = e.batch.CPUShares()
	m.batchIdle, _ = e.batch.CPUIdle()
	close(w.stopSampling)
	m.lcCPUs = <-w.samples
	return nil
}

// antagonistMark is an antagonist's operation count at a moment of its
// life.
type antagonistMark struct{ ops, secs float64 }

func parseMark(line string) (antagonistMark, error) {
	var a antagonistMark
	if _, err := fmt.Sscanf(line, "%f %f", &a.ops, &a.secs); err != nil || a.secs <= 0 {
		return a, fmt.Errorf("report %q: want \"<ops> <seconds>\"", line)
	}
	return a, nil
}

// mark asks an antagonist for its counters (SIGUSR1).
func (c *child) mark() (antagonistMark, error) {
	_ = c.cmd.Process.Signal(syscall.SIGUSR1)
	line, err := c.out.ReadString('\n')
	if err != nil {
		return antagonistMark{}, err
	}
	return parseMark(strings.TrimSpace(line))
}

// antagonistRate stops an antagonist and returns its operations per second
// since from.
func antagonistRate(c *child, from antagonistMark) (float64, error) {
	line, err := c.stop()
	if err != nil {
		return 0, err
	}
	a, err := parseMark(line)
	if err != nil {
		return 0, err
	}
	if a.secs <= from.secs {
		return 0, fmt.Errorf("report %q: not after the window opened at %.3f s", line, from.secs)
	}
	return (a.ops - from.ops) / (a.secs - from.secs), nil
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

// progress, when set (the command sets it), reports each finished
// measurement on stderr.
var progress = func(format string, args ...any) {}

func p99ms(r *LoadResult) float64 {
	if r == nil {
		return 0
	}
	return float64(r.Hist.ValueAtQuantile(99)) / 1000
}
