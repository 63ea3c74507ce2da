package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	grdt "github.com/intel/goresctrl/pkg/rdt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/rdt"
)

// RDTOptions aims the RDT controller at a resctrl tree.
type RDTOptions struct {
	// Root is the resctrl mount point ("": where /proc/mounts shows it,
	// else /sys/fs/resctrl). ProcRoot defaults to the plugin's.
	Root, ProcRoot string
	// Prefix of the classes' group names (default rdt.DefaultPrefix).
	Prefix string
}

// RDTController carries each pool's RDT section (isolation.RDTPlan) out
// through package rdt: one resctrl class per pool with an RDT profile,
// named Prefix+pool, holding its L3 ways and bandwidth; the default group
// gives up the exclusive pools' ways. Admitted containers' threads are
// moved into their pool's class directly (NRI cannot change a running
// container's class), each into a monitoring group of its own where the
// host monitors; the classes' counters feed the loop every period.
//
// On a host without resctrl Start reports ErrNotSupported and the plugin
// runs without the dimension. When the plugin exits the classes stay, so
// a restart does not churn them; removing the strata-* directories under
// the resctrl root undoes them.
type RDTController struct {
	opts RDTOptions
	now  func() time.Time

	log *slog.Logger
	cfg func() *isolation.Config
	r   *rdt.Resctrl

	mu      sync.Mutex // guards the fields below for Status
	members map[string]*rdtMember
	classes map[string]*rdt.Class        // pool -> its class, once applied
	applied map[string]string            // class -> applied schemata and mode, to skip unchanged writes
	pools   map[string]isolation.RDTPlan // last applied plan section per pool
	mon     map[string]rdtReading        // pool -> last counters
	periods int                          // ApplyPools calls, for the sweep

	ways, mb, occupancy, bandwidth *prometheus.GaugeVec
}

type rdtMember struct {
	m     Member
	class string // pool whose class holds it, "" if none yet
	mon   *rdt.MonGroup
}

type rdtReading struct {
	at        time.Time
	sum       rdt.Counters
	bandwidth float64
	measured  bool
}

// NewRDTController returns the RDT dimension's controller.
func NewRDTController(o RDTOptions) *RDTController {
	pool := []string{"pool"}
	return &RDTController{opts: o, now: time.Now,
		ways:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "rdt_pool_l3_ways", Help: "L3 ways of the pool's resctrl class."}, pool),
		mb:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "rdt_pool_mb_percent", Help: "Memory bandwidth ceiling of the pool's resctrl class, percent of unthrottled."}, pool),
		occupancy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "rdt_pool_llc_occupancy_bytes", Help: "L3 occupancy of the pool's class (resctrl monitoring)."}, pool),
		bandwidth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: "rdt_pool_memory_bandwidth_bytes_per_second", Help: "Memory bandwidth of the pool's class over the last period (resctrl monitoring)."}, pool),
	}
}

// Name implements Controller.
func (c *RDTController) Name() string { return "rdt" }

// Start opens resctrl; without it the dimension is not supported.
func (c *RDTController) Start(_ context.Context, env ControllerEnv) error {
	proc := c.opts.ProcRoot
	if proc == "" {
		proc = env.ProcRoot
	}
	r, err := rdt.Open(rdt.Options{Root: c.opts.Root, ProcRoot: proc, Prefix: c.opts.Prefix})
	if errors.Is(err, rdt.ErrNotSupported) {
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	if err != nil {
		return err
	}
	if !r.Info().Allocation() {
		return fmt.Errorf("%w: resctrl at %s offers monitoring only; pool classes need cache or bandwidth allocation", ErrNotSupported, r.Root())
	}
	c.log, c.cfg, c.r = env.Logger, env.Config, r
	c.members, c.classes, c.applied = map[string]*rdtMember{}, map[string]*rdt.Class{}, map[string]string{}
	c.pools, c.mon = map[string]isolation.RDTPlan{}, map[string]rdtReading{}
	if mb := r.Info().MB; mb != nil && mb.Mode == rdt.MBMBps {
		c.log.Warn("resctrl is mounted with mba_MBps: pool bandwidth shares are percentages and are not applied", "root", r.Root())
	}
	return nil
}

// Stop implements Controller; the classes stay (see RDTController).
func (c *RDTController) Stop() {}

// ContainerAdmitted moves the container into its pool's class, or
// remembers it until the class exists.
func (c *RDTController) ContainerAdmitted(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rm := c.members[m.ID]
	if rm == nil {
		rm = &rdtMember{}
		c.members[m.ID] = rm
	}
	rm.m = m
	return c.place(rm)
}

// ContainerRemoved releases the container's monitoring group (its RMID).
func (c *RDTController) ContainerRemoved(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rm := c.members[m.ID]
	delete(c.members, m.ID)
	if rm != nil && rm.mon != nil {
		return rm.mon.Delete()
	}
	return nil
}

// place moves a member's threads into its pool's class (or back to the
// default group when its pool has none) and into a monitoring group of
// its own. Caller holds mu.
func (c *RDTController) place(rm *rdtMember) error {
	class := c.classes[rm.m.Pool]
	if class == nil && rm.class == "" {
		return nil // its pool has no class (yet): it stays in the default group
	}
	if rm.class == rm.m.Pool && class != nil {
		return nil
	}
	if rm.mon != nil {
		_ = rm.mon.Delete()
		rm.mon = nil
	}
	target := class
	if target == nil {
		target = c.r.Default()
	}
	pids, err := rm.m.Pids()
	if err != nil {
		return fmt.Errorf("container %s (%s): %w", rm.m.Name, rm.m.ID, err)
	}
	gone, err := target.AddProcesses(pids...)
	if err != nil {
		return fmt.Errorf("container %s (%s) into class %q: %w", rm.m.Name, rm.m.ID, target.Name(), err)
	}
	if len(gone) > 0 {
		c.log.Debug("processes exited while moving to their class", "container", rm.m.ID, "pids", gone)
	}
	rm.class = ""
	if class != nil {
		rm.class = rm.m.Pool
		if c.r.Info().Mon != nil {
			mg, err := class.CreateMonGroup("c-" + monName(rm.m.ID))
			if err != nil {
				// Monitoring one container is a nicety: RMIDs may run out.
				c.log.Debug("no monitoring group for container", "container", rm.m.ID, "err", err)
				return nil
			}
			rm.mon = mg
			if _, err := mg.AddProcesses(pids...); err != nil {
				return fmt.Errorf("container %s (%s) into monitoring group %s: %w", rm.m.Name, rm.m.ID, mg.Name(), err)
			}
		}
	}
	return nil
}

// Observe gives every pool the host's RDT facts and its class's counters.
func (c *RDTController) Observe(obs *isolation.Observations) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	info := c.r.Info()
	host := isolation.RDTObservation{}
	if l3 := info.L3Info(); l3 != nil {
		host.Ways, host.MinWays = l3.Ways(), l3.MinCBMBits
	}
	host.Bandwidth = info.MB != nil && info.MB.Mode != rdt.MBMBps
	now := c.now()
	var errs []error
	for _, pc := range c.cfg().Pools {
		o := host
		if class := c.classes[pc.Name]; class != nil && info.Mon != nil {
			md, err := class.MonData()
			if err != nil {
				errs = append(errs, err)
			} else {
				sum := md.Sum()
				prev, ok := c.mon[pc.Name]
				rd := rdtReading{at: now, sum: sum}
				if ok && now.After(prev.at) {
					rd.bandwidth, rd.measured = sum.Bandwidth(prev.sum, now.Sub(prev.at)), true
				}
				c.mon[pc.Name] = rd
				o.Measured, o.OccupancyBytes, o.BandwidthBytes = rd.measured, sum.LLCOccupancy, rd.bandwidth
				c.occupancy.WithLabelValues(pc.Name).Set(float64(sum.LLCOccupancy))
				c.bandwidth.WithLabelValues(pc.Name).Set(rd.bandwidth)
			}
		}
		po := obs.Pools[pc.Name]
		po.RDT = o
		obs.Pools[pc.Name] = po
	}
	return errors.Join(errs...)
}

// ApplyPools writes the pools' classes (and the default group's ways) when
// they changed, removes classes of pools that no longer have one, and
// moves waiting members into their new classes.
func (c *RDTController) ApplyPools(plan *isolation.Plan) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	info := c.r.Info()
	l3 := info.L3Info()
	cfgs := map[string]rdt.ClassConfig{}
	var exclusive uint64
	for k := range plan.Pools {
		rp := plan.Pools[k].RDT
		if !rp.Enabled {
			continue
		}
		s := rdt.Schemata{}
		if rp.Ways > 0 && l3 != nil {
			mask := l3.Mask(rp.FirstWay, rp.Ways)
			c.setCache(s, mask)
			if rp.Exclusive {
				exclusive |= mask
			}
		}
		if rp.MBPercent > 0 && info.MB != nil && info.MB.Mode != rdt.MBMBps {
			pct := uint64(rp.MBPercent)
			if info.MB.Mode == rdt.MBPercent {
				pct = max(pct, info.MB.Min)
			}
			mbs, err := c.r.Resolve(rp.Class, rdt.ClassSpec{MB: grdt.MbaConfig{grdt.CacheIdAll: {grdt.MbProportion(fmt.Sprintf("%d%%", pct))}}})
			if err != nil {
				return err
			}
			s[rdt.MB] = mbs[rdt.MB]
		}
		cfgs[rp.Class] = rdt.ClassConfig{Schemata: s, Exclusive: rp.Exclusive && rp.Ways > 0 && l3 != nil}
	}
	// Classes of pools that lost their RDT profile (or of an earlier
	// configuration) go first: an exclusive one would block the default
	// group's ways coming back.
	existing, err := c.r.Classes()
	if err != nil {
		return err
	}
	removed := false
	for _, class := range existing {
		if _, keep := cfgs[class.Name()]; !keep {
			if err := class.Delete(); err != nil {
				return err
			}
			delete(c.applied, class.Name())
			removed = true
		}
	}
	if l3 != nil && (len(cfgs) > 0 || removed || c.applied[""] != "") {
		s := rdt.Schemata{}
		c.setCache(s, l3.CBMMask&^exclusive)
		cfgs[""] = rdt.ClassConfig{Schemata: s}
	}
	changed := map[string]rdt.ClassConfig{}
	for name, cfg := range cfgs {
		key := fmt.Sprintf("%s|%v", cfg.Schemata, cfg.Exclusive)
		if c.applied[name] != key {
			changed[name] = cfg
		}
	}
	if len(changed) > 0 {
		if err := c.r.Apply(changed); err != nil {
			return err
		}
		for name, cfg := range changed {
			c.applied[name] = fmt.Sprintf("%s|%v", cfg.Schemata, cfg.Exclusive)
		}
	}
	clear(c.classes)
	clear(c.pools)
	for k := range plan.Pools {
		rp := plan.Pools[k].RDT
		if !rp.Enabled {
			c.ways.DeleteLabelValues(plan.Pools[k].Name)
			c.mb.DeleteLabelValues(plan.Pools[k].Name)
			continue
		}
		class, err := c.r.Class(rp.Class)
		if err != nil {
			return err
		}
		c.classes[plan.Pools[k].Name] = class
		c.pools[plan.Pools[k].Name] = rp
		c.ways.WithLabelValues(plan.Pools[k].Name).Set(float64(rp.Ways))
		c.mb.WithLabelValues(plan.Pools[k].Name).Set(float64(rp.MBPercent))
	}
	var errs []error
	ids := make([]string, 0, len(c.members))
	for id := range c.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := c.place(c.members[id]); err != nil {
			errs = append(errs, err)
		}
	}
	if c.periods++; c.periods%rdtSweepEvery == 0 {
		errs = append(errs, c.sweep(ids))
	}
	return errors.Join(errs...)
}

// rdtSweepEvery: every this many periods the controller looks for threads
// of its members outside their class — a thread created while its process
// was being moved keeps the group it was cloned in.
const rdtSweepEvery = 10

// sweep moves members' stray threads into their class and monitoring
// group. Caller holds mu.
func (c *RDTController) sweep(ids []string) error {
	inClass := map[string]map[int]bool{}
	var errs []error
	for _, id := range ids {
		rm := c.members[id]
		class := c.classes[rm.class]
		if rm.class == "" || class == nil {
			continue
		}
		if inClass[rm.class] == nil {
			tasks, err := class.Tasks()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			inClass[rm.class] = map[int]bool{}
			for _, t := range tasks {
				inClass[rm.class][t] = true
			}
		}
		pids, err := rm.m.Pids()
		if err != nil {
			continue // the container is going; ContainerRemoved follows
		}
		var stray []int
		for _, pid := range pids {
			tids, err := c.r.Threads(pid)
			if err != nil {
				continue
			}
			for _, tid := range tids {
				if !inClass[rm.class][tid] {
					stray = append(stray, tid)
				}
			}
		}
		if len(stray) == 0 {
			continue
		}
		c.log.Debug("moving threads created during the container's move", "container", rm.m.ID, "tids", stray)
		if _, err := class.AddTasks(stray...); err != nil {
			errs = append(errs, err)
		}
		if rm.mon != nil {
			if _, err := rm.mon.AddTasks(stray...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ClassOf returns the resctrl class (group name, as NRI's LinuxRdt ClosID
// wants it) of a pool, "" while the pool has none.
func (c *RDTController) ClassOf(pool string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if class := c.classes[pool]; class != nil {
		return class.Group()
	}
	return ""
}

// RDTClasses maps each pool whose class exists to it, so a container of
// the pool is created in its class (see the routing table's rdt class).
func (c *RDTController) RDTClasses() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.classes))
	for pool, class := range c.classes {
		out[pool] = class.Group()
	}
	return out
}

// setCache writes mask for every cache id of the L3 resource, on both CDP
// halves when CDP is on.
func (c *RDTController) setCache(s rdt.Schemata, mask uint64) {
	info := c.r.Info()
	res := []rdt.Resource{rdt.L3}
	if info.CDP() {
		res = []rdt.Resource{rdt.L3Code, rdt.L3Data}
	}
	for _, r := range res {
		ci := info.Caches[r]
		if ci == nil {
			continue
		}
		s[r] = map[int]uint64{}
		for _, id := range ci.CacheIDs {
			s[r][id] = mask
		}
	}
}

// Status implements Controller: per pool the class, ways, bandwidth and
// what monitoring measured.
func (c *RDTController) Status() ControllerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	info := c.r.Info()
	var parts []string
	if l3 := info.L3Info(); l3 != nil {
		cdp := ""
		if info.CDP() {
			cdp = ", CDP"
		}
		parts = append(parts, fmt.Sprintf("L3 %d ways on %d caches%s", l3.Ways(), len(l3.CacheIDs), cdp))
	}
	if info.MB != nil {
		parts = append(parts, "MBA "+info.MB.Mode.String())
	}
	if info.Mon != nil {
		parts = append(parts, "monitoring "+strings.Join(info.Mon.Features, ","))
	}
	st := ControllerStatus{Summary: fmt.Sprintf("resctrl at %s: %s; %d classes", c.r.Root(), strings.Join(parts, ", "), len(c.classes)),
		Pools: map[string]string{}}
	for pool, rp := range c.pools {
		var b strings.Builder
		fmt.Fprintf(&b, "class %s%s", c.r.Prefix(), rp.Class)
		if rp.Ways > 0 {
			fmt.Fprintf(&b, ", ways %d-%d (%d", rp.FirstWay, rp.FirstWay+rp.Ways-1, rp.Ways)
			if rp.Ways < rp.MaxWays {
				fmt.Fprintf(&b, " of %d", rp.MaxWays)
			}
			b.WriteString(")")
			if rp.Exclusive {
				b.WriteString(" exclusive")
			}
		}
		if rp.MBPercent > 0 {
			fmt.Fprintf(&b, ", MB %d%%", rp.MBPercent)
			if rp.MBPercent < rp.MaxMBPercent {
				fmt.Fprintf(&b, " of %d%%", rp.MaxMBPercent)
			}
		}
		if rd, ok := c.mon[pool]; ok {
			fmt.Fprintf(&b, ", occupancy %.1f MiB", float64(rd.sum.LLCOccupancy)/(1<<20))
			if rd.measured {
				fmt.Fprintf(&b, ", bandwidth %.2f GB/s", rd.bandwidth/1e9)
			}
		}
		if rp.Reason != "" {
			b.WriteString("; " + rp.Reason)
		}
		st.Pools[pool] = b.String()
	}
	return st
}

// Collectors implements Controller.
func (c *RDTController) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.ways, c.mb, c.occupancy, c.bandwidth}
}

// monName is a container's monitoring group name: its ID's first 12
// characters, as container tools show it.
func monName(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
