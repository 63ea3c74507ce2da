package nriplugin

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/isolation"
)

// Status is what /status reports and `strata status` prints.
type Status struct {
	Time       time.Time         `json:"time"`
	Connected  bool              `json:"connected"`
	Synced     bool              `json:"synced"`
	Cgroup     string            `json:"cgroup"`
	Reserved   string            `json:"reservedCPUs"`
	Pools      []PoolStatus      `json:"pools"`
	Batch      string            `json:"batchCapacity,omitempty"`
	BatchCPUs  float64           `json:"batchCPUs"` // the batch capacity view's figure
	Actions    []string          `json:"actions,omitempty"`
	Containers []ContainerStatus `json:"containers"`
	// Sampler: "ebpf" (scheduler probe and cgroup files) or "files (why)".
	Sampler string `json:"sampler,omitempty"`
	// Dimensions: the pool-level dimensions' controllers.
	Dimensions []DimensionStatus `json:"dimensions,omitempty"`
	// Routes is what the routing table was resolved for (runtime, cgroup
	// mode, dimensions); NotApplied lists the settings that cannot be
	// applied on this host, each with the reason.
	Routes     string   `json:"routes,omitempty"`
	NotApplied []string `json:"notApplied,omitempty"`
}

// PoolStatus is one pool in Status.
type PoolStatus struct {
	Name      string  `json:"name"`
	Priority  int     `json:"priority"`
	CPUs      string  `json:"cpus"`
	Shared    string  `json:"shared"`
	Exclusive string  `json:"exclusive"`
	Size      int     `json:"size"`
	Load      float64 `json:"load"`
	BandLow   float64 `json:"bandLow"`
	BandHigh  float64 `json:"bandHigh"`
	RCF       float64 `json:"rcf"`
	Members   int     `json:"members"`
	// Borrowing: the pool has members but no CPUs of its own; they run on
	// another pool's CPUs and Load is not defined.
	Borrowing bool   `json:"borrowing,omitempty"`
	Level     string `json:"level,omitempty"`
	// Run-queue delay of the worst shared member, milliseconds.
	RunQueueP50Ms float64 `json:"runQueueDelayP50Ms,omitempty"`
	RunQueueP99Ms float64 `json:"runQueueDelayP99Ms,omitempty"`
	// Pressure is the PSI the protection levels read for the pool last
	// period and whose it was: its members' own, or the node's with the
	// reason the pool's is not measured.
	Pressure string `json:"pressure,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// ContainerStatus is one member in Status.
type ContainerStatus struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Pod       string `json:"pod"`
	Pool      string `json:"pool"`
	CPUs      string `json:"cpus"`
	Exclusive bool   `json:"exclusive"`
	// Evicting: an eviction of its pod is under way; Strata changes it no
	// more.
	Evicting bool `json:"evicting,omitempty"`
	// RunQueue: last period's run-queue delay (with the scheduler probe).
	RunQueue *RunQueueStatus `json:"runQueueDelay,omitempty"`
}

// RunQueueStatus is a container's run-queue delay in milliseconds.
type RunQueueStatus struct {
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
}

// Status reports the plugin's pools and members now.
func (p *Plugin) Status() *Status {
	dims := p.dims.status() // before mu: a controller's hook may be running
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &Status{Time: p.opts.Now(), Connected: p.connected.Load(), Synced: p.synced, Cgroup: p.cg.Mode().String(),
		Reserved: p.state.Reserved().String(), Dimensions: dims}
	st.Sampler = p.sampler.sched.state()
	rt := p.routes.Load()
	st.Routes, st.NotApplied = rt.cap.String(), rt.unapplied(fieldsAll)
	plan := p.lastPlan.Load()
	for _, pi := range p.state.Pools() {
		ps := PoolStatus{Name: pi.Name, Priority: pi.Priority, CPUs: pi.CPUs.String(), Shared: pi.Shared.String(),
			Exclusive: pi.Exclusive.String(), Size: pi.CPUs.Size(), RCF: pi.RCF, Members: pi.Members}
		for _, pc := range p.cfg.Pools {
			if pc.Name == pi.Name {
				ps.BandLow, ps.BandHigh = pc.Band.Low, pc.Band.High
			}
		}
		if plan != nil {
			for _, pp := range plan.Pools {
				if pp.Name == pi.Name {
					ps.Load, ps.Level, ps.Reason = pp.Load, pp.LevelName, pp.Reason
					ps.RunQueueP50Ms, ps.RunQueueP99Ms = millis(pp.RunQueueP50), millis(pp.RunQueueP99)
					ps.Borrowing = pp.SharedMembers > 0 && pi.Shared.Size() == 0
					ps.Pressure = p.pressureStatus(&pp)
				}
			}
		}
		if math.IsInf(ps.Load, 0) || math.IsNaN(ps.Load) {
			// Usage on no CPUs of its own: JSON has no infinity.
			ps.Load, ps.Borrowing = 0, true
		}
		st.Pools = append(st.Pools, ps)
	}
	if plan != nil {
		st.Batch, st.BatchCPUs = plan.Batch.String(), plan.Batch.CPUs
		for _, a := range plan.Actions {
			st.Actions = append(st.Actions, fmt.Sprintf("%s %s: %s", a.Kind, a.Container, a.Reason))
		}
	}
	evicting := map[string]bool{}
	for _, c := range p.state.Containers() {
		if c.Evicting {
			evicting[c.ID] = true
		}
	}
	for _, m := range p.ctrs {
		cs := ContainerStatus{ID: m.id, Name: m.name, Pod: joinPod(m.namespace, m.pod),
			Pool: m.pool, CPUs: m.cpus.String(), Exclusive: m.exclusive, Evicting: evicting[m.id]}
		if f, ok := p.sampler.sched.figures(m.id); ok {
			cs.RunQueue = &RunQueueStatus{MeanMs: millis(f.mean), P50Ms: millis(f.p50), P99Ms: millis(f.p99)}
		}
		st.Containers = append(st.Containers, cs)
	}
	sort.Slice(st.Containers, func(i, j int) bool {
		a, b := st.Containers[i], st.Containers[j]
		if a.Pool != b.Pool {
			return a.Pool < b.Pool
		}
		return a.Pod+a.Name < b.Pod+b.Name
	})
	return st
}

// pressureStatus says whose PSI a pool's protection read, with the figures.
func (p *Plugin) pressureStatus(pp *isolation.PoolPlan) string {
	figures := fmt.Sprintf("cpu some %.1f%%, memory some %.1f%% full %.1f%%",
		pp.Pressure.CPU.Some, pp.Pressure.Memory.Some, pp.Pressure.Memory.Full)
	switch pp.PressureFrom {
	case isolation.PressureFromMembers:
		return fmt.Sprintf("members (%d of %d measured, worst): %s", pp.PressureMembers, pp.Members, figures)
	case isolation.PressureFromObservation:
		return "pool: " + figures
	}
	why := "no members"
	switch {
	case pp.Members == 0:
	case p.cg.UnifiedRoot() == "":
		why = "cgroup v1 without a cgroup2 mount has no per-cgroup PSI"
	case p.cg.Mode() == cgroup.Hybrid:
		why = "no member has PSI files: the runtime placed none in the cgroup2 tree"
	default:
		why = "no member's pressure files could be read (kernel without PSI, or booted with psi=0)"
	}
	return fmt.Sprintf("node (%s): %s", why, figures)
}

func joinPod(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// Print writes a human-readable status.
func (s *Status) Print(w io.Writer) {
	state := "connected"
	if !s.Connected {
		state = "NOT connected to the runtime"
	}
	fmt.Fprintf(w, "strata: %s, cgroup %s, reserved CPUs %q, %s\n", state, s.Cgroup, s.Reserved, s.Time.Format(time.RFC3339))
	if s.Routes != "" {
		fmt.Fprintf(w, "routes: %s\n", s.Routes)
	}
	for _, na := range s.NotApplied {
		fmt.Fprintf(w, "not applied: %s\n", na)
	}
	if s.Sampler != "" {
		fmt.Fprintf(w, "sampler: %s\n", s.Sampler)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tPRIO\tCPUS\tSIZE\tEXCLUSIVE\tLOAD\tBAND\tRCF\tMEMBERS\tLEVEL\tRUNQ P50/P99\tPSI FROM")
	for _, p := range s.Pools {
		level := p.Level
		if level == "" {
			level = "-"
		}
		load := fmt.Sprintf("%.0f%%", p.Load*100)
		if p.Borrowing {
			load = "borrows"
		}
		runq := "-"
		if p.RunQueueP99Ms > 0 {
			runq = fmt.Sprintf("%.2f/%.2f ms", p.RunQueueP50Ms, p.RunQueueP99Ms)
		}
		psiFrom, _, _ := strings.Cut(p.Pressure, " ")
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%.0f–%.0f%%\t%.2f\t%d\t%s\t%s\t%s\n", p.Name, p.Priority, orDash(p.CPUs), p.Size,
			orDash(p.Exclusive), load, p.BandLow*100, p.BandHigh*100, p.RCF, p.Members, level, runq, orDash(psiFrom))
	}
	tw.Flush()
	if s.Batch != "" {
		fmt.Fprintln(w, s.Batch)
	}
	for _, a := range s.Actions {
		fmt.Fprintln(w, "action:", a)
	}
	if len(s.Dimensions) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DIMENSION\tSTATE\tDETAIL")
		for _, d := range s.Dimensions {
			detail := d.Summary
			if d.State != dimRunning {
				detail = d.Reason
			}
			if d.LastError != "" {
				detail = strings.TrimSpace(detail + " (error: " + d.LastError + ")")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, d.State, orDash(detail))
			for _, pool := range sortedKeys(d.Pools) {
				fmt.Fprintf(tw, "  %s\t\t%s\n", pool, d.Pools[pool])
			}
		}
		tw.Flush()
	}
	if len(s.Containers) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONTAINER\tPOD\tPOOL\tCPUS\tEXCLUSIVE")
		for _, c := range s.Containers {
			pool := c.Pool
			if c.Evicting {
				pool += " (evicting)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", shortID(c.ID, c.Name), c.Pod, pool, orDash(c.CPUs), c.Exclusive)
		}
		tw.Flush()
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func shortID(id, name string) string {
	if len(id) > 12 {
		id = id[:12]
	}
	if name != "" {
		return name + " (" + id + ")"
	}
	return id
}
