package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
)

// OverheadOptions set the overhead benchmark: Strata's plugin managing N
// running containers (real cgroups, each holding a sleeping process) at
// each loop period, its own CPU time and memory measured from /proc.
type OverheadOptions struct {
	Containers []int
	Periods    []time.Duration
	// Window bounds how long the plugin's CPU time is measured, after
	// Settle: ten periods, at least Window/2, at most Window.
	Window, Settle time.Duration
}

// DefaultOverheadOptions are the overhead benchmark's defaults.
func DefaultOverheadOptions() OverheadOptions {
	return OverheadOptions{Containers: []int{10, 100, 1000}, Periods: []time.Duration{time.Second, 100 * time.Millisecond},
		Window: 10 * time.Second, Settle: 3 * time.Second}
}

func (o *OverheadOptions) validate() error {
	if len(o.Containers) == 0 || len(o.Periods) == 0 {
		return fmt.Errorf("overhead: containers %v, periods %v: want at least one of each", o.Containers, o.Periods)
	}
	for _, n := range o.Containers {
		if n < 1 || n > 2000 {
			return fmt.Errorf("overhead containers %d: want 1..2000", n)
		}
	}
	for _, p := range o.Periods {
		if p < 100*time.Millisecond || p > 10*time.Second {
			return fmt.Errorf("overhead period %s: want 100ms..10s", p)
		}
	}
	if o.Window < 2*time.Second || o.Window > 10*time.Minute || o.Settle < 0 || o.Settle > time.Minute {
		return fmt.Errorf("overhead window %s, settle %s: want window 2s..10m, settle 0..1m", o.Window, o.Settle)
	}
	return nil
}

// OverheadResult is the plugin's cost at one (containers, period) point.
type OverheadResult struct {
	Containers int     `json:"containers"`
	Period     string  `json:"period"`
	Periods    float64 `json:"periods_measured"`
	// CPUPerPeriodMs is the plugin process's CPU time (user + system) per
	// loop period; CPUPercent the same as a share of one CPU.
	CPUPerPeriodMs float64 `json:"cpu_ms_per_period"`
	CPUPercent     float64 `json:"cpu_percent_of_one_cpu"`
	RSSMiB         float64 `json:"rss_mib"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	AdmitSeconds   float64 `json:"admission_seconds"` // creating and starting all N through the plugin
	// UpdateFailures counts updates the runtime stand-in refused.
	UpdateFailures int `json:"runtime_update_failures,omitempty"`
}

// RunOverhead runs the overhead benchmark. It needs root.
func RunOverhead(ctx context.Context, o OverheadOptions) ([]OverheadResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return nil, fmt.Errorf("overhead: the containers' process: %w", err)
	}
	var out []OverheadResult
	for _, n := range o.Containers {
		for _, p := range o.Periods {
			var r OverheadResult
			err := locked(func() (err error) {
				r, err = overheadAt(ctx, o, n, p, sleep)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("overhead at %d containers, %s: %w", n, p, err)
			}
			progress("overhead at %d containers, %s: %.3f ms CPU per period, RSS %.1f MiB", n, p, r.CPUPerPeriodMs, r.RSSMiB)
			out = append(out, r)
		}
	}
	return out, nil
}

func overheadAt(ctx context.Context, o OverheadOptions, n int, period time.Duration, sleep string) (res OverheadResult, err error) {
	res = OverheadResult{Containers: n, Period: period.String()}
	h, err := cgroup.Detect(cgroup.Options{})
	if err != nil {
		return res, err
	}
	root := fmt.Sprintf("strata-colocation-overhead-%d", os.Getpid())
	var cgs []*cgroup.Cgroup
	var procs []*exec.Cmd
	defer func() {
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		var errs []error
		for _, cg := range cgs {
			errs = append(errs, removeRetry(cg))
		}
		if top, e := h.Open(root); e == nil {
			errs = append(errs, removeRetry(top))
		}
		if e := errors.Join(errs...); e != nil && err == nil {
			err = e
		}
	}()
	st, err := startStrata(ctx, benchConfig(period, 0), nil)
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := st.stop(ctx); serr != nil && err == nil {
			err = serr
		}
	}()
	ann := st.cfg.Classification.Annotation
	start := time.Now()
	for i := 0; i < n; i++ {
		cg, err := h.Create(fmt.Sprintf("%s/c%04d", root, i))
		if err != nil {
			return res, err
		}
		cgs = append(cgs, cg)
		// A node's mix: one LC member in ten, the rest half online, half
		// batch; every request a tenth of a CPU.
		spec := containerSpec{name: fmt.Sprintf("c%04d", i), cg: cg}
		switch {
		case i%10 == 0:
			spec.namespace, spec.cpuRequestMilli = lcNamespace, 100
			spec.annotations = map[string]string{ann: poolName(st.cfg, 0)}
		case i%2 == 0:
			spec.namespace, spec.cpuRequestMilli = "colocation-online", 100
			spec.annotations = map[string]string{ann: poolName(st.cfg, 1)}
		default:
			spec.namespace = batchNamespace
			spec.annotations = map[string]string{ann: poolName(st.cfg, 2)}
		}
		if err := st.create(ctx, spec); err != nil {
			return res, err
		}
		cmd := exec.Command(sleep, "3600")
		if err := cmd.Start(); err != nil {
			return res, err
		}
		procs = append(procs, cmd)
		if err := cg.AddProc(cmd.Process.Pid); err != nil {
			return res, err
		}
	}
	if err := st.startAll(ctx); err != nil {
		return res, err
	}
	res.AdmitSeconds = time.Since(start).Seconds()
	pid := st.plugin.Process.Pid
	time.Sleep(o.Settle + 2*period)
	// At least ten periods, and at least half the configured window.
	window := max(10*period, o.Window/2)
	if window > o.Window {
		window = o.Window
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	time.Sleep(window)
	cpu1, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	el := time.Since(t0)
	res.Periods = float64(el) / float64(period)
	res.CPUPerPeriodMs = float64(cpu1-cpu0) / float64(time.Millisecond) / res.Periods
	res.CPUPercent = 100 * float64(cpu1-cpu0) / float64(el)
	if res.RSSMiB, res.PeakRSSMiB, err = procRSS(pid); err != nil {
		return res, err
	}
	res.UpdateFailures, _ = st.rt.updateErrors()
	return res, nil
}

func removeRetry(cg *cgroup.Cgroup) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = cg.Remove(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// procCPU is a process's CPU time, all its threads, in nanoseconds: the
// process's CPU-time clock (clock_gettime on the clock id of pid, what
// clock_getcpuclockid(3) returns), the scheduler's sum of run time. The
// user + system figures of /proc/PID/stat count in 10 ms ticks, which over
// a 10 s window at about 12 ms a period was ±8 % of the figure; where the
// clock cannot be read it falls back to them.
func procCPU(pid int) (time.Duration, error) {
	var ts unix.Timespec
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) in the kernel's posix-timers.h.
	if err := unix.ClockGettime(int32(^pid<<3|2), &ts); err == nil {
		return time.Duration(ts.Nano()), nil
	}
	return procStatCPU(pid)
}

// procStatCPU is a process's user + system CPU time (all its threads),
// from /proc/PID/stat, in clock ticks.
func procStatCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name, want ≥ 13", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz, nil
}

// procRSS is a process's resident and peak resident memory, MiB, from
// /proc/PID/status.
func procRSS(pid int) (rss, peak float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[0], 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			peak = kb / 1024
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, peak, nil
}

func overheadMarkdown(rs []OverheadResult) string {
	var b strings.Builder
	b.WriteString("Overhead: Strata's plugin process (CPU time from its process CPU clock, RSS from /proc) managing N running containers on real cgroups.\n\n")
	b.WriteString("| containers | period | periods measured | CPU ms / period | % of one CPU | × vs fewest containers | RSS MiB | peak RSS MiB | admission s | updates refused |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	base := map[string]float64{}
	for _, r := range rs {
		if _, ok := base[r.Period]; !ok {
			base[r.Period] = r.CPUPerPeriodMs
		}
		ratio := "–"
		if b0 := base[r.Period]; b0 > 0 {
			ratio = fmt.Sprintf("%.1f", r.CPUPerPeriodMs/b0)
		}
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.3f | %.2f | %s | %.1f | %.1f | %.1f | %d |\n", r.Containers, r.Period, r.Periods,
			r.CPUPerPeriodMs, r.CPUPercent, ratio, r.RSSMiB, r.PeakRSSMiB, r.AdmitSeconds, r.UpdateFailures)
	}
	return b.String()
}
