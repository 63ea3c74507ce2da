package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/iolimit"
	"github.com/strata-nri/strata/isolation"
)

// IOOptions aims the block IO controller at the host's trees.
type IOOptions struct {
	// DevRoot replaces "/dev" in device names of the profiles (default
	// "/dev"); sysfs and procfs are the plugin's.
	DevRoot string
	// RuntimeClasses is the runtime's blockio class file (containerd's
	// blockio_config_file, goresctrl's format), if it has one. A pool with
	// a class of its own name there gets it at creation: the container
	// starts with the class's weight and limits. Without it no class is
	// sent — containerd fails the creation of a container whose class it
	// does not know — and members get their settings after they started.
	RuntimeClasses string
}

// IOController carries each pool's block IO section (isolation.IOPlan)
// out through package iolimit: every member's cgroup gets its pool's
// weight and per-device limits, written directly to the cgroup files
// (NRI cannot update a running container's blockio class), and rewritten
// only when the pool's section changes. Every period it reads each
// member's IO statistics and io.pressure and gives the loop, per pool, the
// highest IO PSI among the members, their throughput, and each profile
// device's measured capacity (the highest throughput seen on it, the base
// of percentage limits).
//
// On cgroup v1 the kernel does not attribute buffered writeback to the
// writer's cgroup, so limits hold back reads and direct writes only;
// Status says so.
type IOController struct {
	opts IOOptions

	log *slog.Logger
	cfg func() *isolation.Config
	h   *cgroup.Hierarchy
	lim *iolimit.Limiter

	procRoot string
	// runtimeClasses: the classes the runtime's blockio file defines (nil
	// without one).
	runtimeClasses map[string]bool

	mu       sync.Mutex // guards the fields below for Status
	members  map[string]*ioMember
	devices  map[string]iolimit.Device // profile device name -> disk
	badDev   map[string]string         // profile device name -> why it does not resolve (logged once)
	capacity map[string]isolation.IOCapacity
	pools    map[string]isolation.IOPlan
	observed map[string]isolation.IOObservation
	noted    map[string]bool // ineffective-weight reasons logged

	weight, readBPS, writeBPS, psi, throttled *prometheus.GaugeVec
}

type ioMember struct {
	m       Member
	stats   *iolimit.Stats
	prev    iolimit.Reading
	cur     iolimit.Reading
	reads   int    // readings taken
	applied string // the settings last written, to skip unchanged writes
	weight  bool   // Strata wrote a weight, so a plan without one restores the default
}

// NewIOController returns the block IO dimension's controller.
func NewIOController(o IOOptions) *IOController {
	pool := []string{"pool"}
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "strata", Name: name, Help: help}, pool)
	}
	return &IOController{opts: o,
		weight:    g("io_pool_weight", "Block IO weight the pool's members get (0: the runtime's)."),
		readBPS:   g("io_pool_read_bytes_per_second", "Bytes per second the pool's members read from block devices over the last period."),
		writeBPS:  g("io_pool_write_bytes_per_second", "Bytes per second the pool's members wrote to block devices over the last period."),
		psi:       g("io_pool_psi_some_avg10", "Highest IO PSI some avg10 (percent) among the pool's members."),
		throttled: g("io_pool_throttled", "1 while the IO protection throttles the pool."),
	}
}

// Name implements Controller.
func (c *IOController) Name() string { return "blockio" }

// Start checks for the blkio (v1) or io (v2) controller.
func (c *IOController) Start(_ context.Context, env ControllerEnv) error {
	if env.Cgroups == nil || !env.Cgroups.HasController(cgroup.BlkIO) {
		return fmt.Errorf("%w: no blkio (cgroup v1) or io (cgroup v2) controller", ErrNotSupported)
	}
	c.log, c.cfg, c.h, c.procRoot = env.Logger, env.Config, env.Cgroups, env.ProcRoot
	c.lim = iolimit.New(iolimit.Options{SysRoot: env.SysfsRoot, ProcRoot: env.ProcRoot, DevRoot: c.opts.DevRoot})
	c.members, c.devices, c.badDev = map[string]*ioMember{}, map[string]iolimit.Device{}, map[string]string{}
	c.capacity, c.pools, c.observed, c.noted = map[string]isolation.IOCapacity{}, map[string]isolation.IOPlan{}, map[string]isolation.IOObservation{}, map[string]bool{}
	if c.h.Mode() != cgroup.V2 {
		c.log.Info("cgroup v1 does not attribute buffered writeback to containers: IO limits hold back reads and direct writes only")
	}
	if c.opts.RuntimeClasses != "" {
		// A file the runtime cannot have loaded either (it fails to start
		// then) must not make us send classes: refuse it here.
		b, err := os.ReadFile(c.opts.RuntimeClasses)
		if err != nil {
			return fmt.Errorf("runtime blockio classes: %w", err)
		}
		cfg, err := iolimit.ParseConfig(b)
		if err != nil {
			return fmt.Errorf("runtime blockio classes %s: %w", c.opts.RuntimeClasses, err)
		}
		c.runtimeClasses = map[string]bool{}
		for name := range cfg.Classes {
			c.runtimeClasses[name] = true
		}
		c.log.Info("the runtime's blockio classes", "file", c.opts.RuntimeClasses, "classes", len(c.runtimeClasses))
	}
	return nil
}

// BlockIOClasses maps each pool to the runtime's class of the same name,
// for the pools that have one; nil without the runtime's class file.
func (c *IOController) BlockIOClasses() map[string]string {
	if c.runtimeClasses == nil {
		return nil
	}
	out := map[string]string{}
	if cfg := c.cfg(); cfg != nil {
		for _, pc := range cfg.Pools {
			if c.runtimeClasses[pc.Name] {
				out[pc.Name] = pc.Name
			}
		}
	}
	return out
}

// Stop closes the members' statistics files; the settings stay.
func (c *IOController) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, im := range c.members {
		if im.stats != nil {
			im.stats.Close()
		}
	}
}

// ContainerAdmitted opens the container's IO statistics and gives it its
// pool's settings if the pool has a section already.
func (c *IOController) ContainerAdmitted(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	im := c.members[m.ID]
	if im == nil {
		im = &ioMember{}
		c.members[m.ID] = im
	}
	if im.m.Pool != m.Pool {
		im.applied = "" // a new pool's settings
	}
	im.m = m
	if m.Cgroup == nil {
		return nil
	}
	if im.stats == nil {
		s, err := iolimit.OpenStats(m.Cgroup)
		if err != nil {
			if errors.Is(err, cgroup.ErrVanished) {
				delete(c.members, m.ID)
				return nil
			}
			return fmt.Errorf("container %s: %w", m.Name, err)
		}
		im.stats = s
	}
	if ip, ok := c.pools[m.Pool]; ok {
		return c.apply(im, ip)
	}
	return nil
}

// ContainerRemoved closes the container's files.
func (c *IOController) ContainerRemoved(m Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if im := c.members[m.ID]; im != nil && im.stats != nil {
		im.stats.Close()
	}
	delete(c.members, m.ID)
	return nil
}

// resolve turns a profile's device name into its disk: "major:minor", a
// device node or any path (the filesystem it is on). Failures are logged
// once per name and the name is skipped. Caller holds mu.
func (c *IOController) resolve(name string) (iolimit.Device, bool) {
	if d, ok := c.devices[name]; ok {
		return d, true
	}
	if _, bad := c.badDev[name]; bad {
		return iolimit.Device{}, false
	}
	var d iolimit.Device
	var err error
	if num, perr := cgroup.ParseDevNum(name); perr == nil {
		d, err = c.lim.Resolver().ByNumber(num)
	} else {
		d, err = c.lim.Resolver().ByPath(name)
	}
	if err != nil {
		c.badDev[name] = err.Error()
		c.log.Warn("IO profile device does not resolve; its limits are not applied", "device", name, "err", err)
		return iolimit.Device{}, false
	}
	c.devices[name] = d
	// A v1 kernel counts a device's IO in the members' statistics only
	// once throttling is configured for it somewhere: without this a
	// device's capacity, and so every percentage limit on it, would stay
	// unmeasured until an absolute limit happened to be written.
	if root, err := c.h.Open("/"); err == nil {
		if err := root.CountIOThrottleStats(d.Num); err != nil {
			c.log.Warn("IO statistics of the device may stay empty (cgroup v1)", "device", name, "err", err)
		}
	}
	return d, true
}

// profileDevices lists every device name the pool profiles use.
func profileDevices(cfg *isolation.Config) []string {
	seen := map[string]bool{}
	var out []string
	add := func(d string) {
		if d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	if cfg == nil {
		return nil
	}
	for _, p := range cfg.Pools {
		for _, l := range p.Profile.IO.Limits {
			add(l.Device)
		}
		if t := p.Profile.IO.Protect; t != nil {
			add(t.Device)
		}
	}
	return out
}

// Observe reads every member's IO and fills obs.Pools[pool].IO.
func (c *IOController) Observe(obs *isolation.Observations) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var devs []iolimit.Device
	var names []string
	for _, name := range profileDevices(c.cfg()) {
		if d, ok := c.resolve(name); ok {
			devs, names = append(devs, d), append(names, name)
		}
	}
	perDev := make([]isolation.IOCapacity, len(devs)) // all members' throughput this period
	pools := map[string]isolation.IOObservation{}
	var errs []error
	for id, im := range c.members {
		if im.stats == nil {
			continue
		}
		im.prev, im.cur = im.cur, im.prev
		if err := im.stats.Read(&im.cur); err != nil {
			if errors.Is(err, cgroup.ErrVanished) {
				im.stats.Close()
				delete(c.members, id)
				continue
			}
			errs = append(errs, fmt.Errorf("container %s: %w", im.m.Name, err))
			continue
		}
		im.reads++
		po := pools[im.m.Pool]
		po.Measured = true
		if im.cur.HasPSI {
			po.PSISome = max(po.PSISome, im.cur.PSI.Some.Avg10)
			po.PSIFull = max(po.PSIFull, im.cur.PSI.Full.Avg10)
		}
		if im.reads > 1 {
			r := iolimit.RatesBetween(&im.prev, &im.cur, cgroup.DevNum{}, true)
			po.ReadBPS += r.ReadBPS
			po.WriteBPS += r.WriteBPS
			for i, d := range devs {
				r := iolimit.RatesBetween(&im.prev, &im.cur, d.Num, false)
				perDev[i].ReadBPS += r.ReadBPS
				perDev[i].WriteBPS += r.WriteBPS
			}
		}
		pools[im.m.Pool] = po
	}
	for i, name := range names {
		cp := c.capacity[name]
		cp.ReadBPS, cp.WriteBPS = max(cp.ReadBPS, perDev[i].ReadBPS), max(cp.WriteBPS, perDev[i].WriteBPS)
		c.capacity[name] = cp
	}
	capacity := make(map[string]isolation.IOCapacity, len(c.capacity))
	for k, v := range c.capacity {
		capacity[k] = v
	}
	clear(c.observed)
	for pool, po := range pools {
		po.Capacity = capacity
		c.observed[pool] = po
		o := obs.Pools[pool]
		o.IO = po
		obs.Pools[pool] = o
		c.readBPS.WithLabelValues(pool).Set(po.ReadBPS)
		c.writeBPS.WithLabelValues(pool).Set(po.WriteBPS)
		c.psi.WithLabelValues(pool).Set(po.PSISome)
	}
	return errors.Join(errs...)
}

// ApplyPools writes each pool's section to its members whose settings
// differ from what they last got.
func (c *IOController) ApplyPools(plan *isolation.Plan) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range plan.Pools {
		pp := &plan.Pools[k]
		c.pools[pp.Name] = pp.IO
		c.weight.WithLabelValues(pp.Name).Set(float64(pp.IO.Weight))
		t := 0.0
		if pp.IO.Throttled {
			t = 1
		}
		c.throttled.WithLabelValues(pp.Name).Set(t)
	}
	var errs []error
	for _, im := range c.members {
		ip, ok := c.pools[im.m.Pool]
		if !ok || im.m.Cgroup == nil {
			continue
		}
		if err := c.apply(im, ip); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// settings turns a pool's section into iolimit settings for this host.
// Caller holds mu.
func (c *IOController) settings(ip isolation.IOPlan, restoreWeight bool) iolimit.Settings {
	s := iolimit.Settings{Weight: uint64(ip.Weight)}
	if s.Weight == 0 && restoreWeight {
		s.Weight = iolimit.DefaultWeight
	}
	byDev := map[cgroup.DevNum]int{}
	for _, l := range ip.Limits {
		d, ok := c.resolve(l.Device)
		if !ok {
			continue
		}
		nl := iolimit.Limit{Device: d.Num, ReadBPS: l.ReadBPS, WriteBPS: l.WriteBPS, ReadIOPS: l.ReadIOPS, WriteIOPS: l.WriteIOPS}
		if i, seen := byDev[d.Num]; seen { // two names of one disk: the tighter of each
			o := &s.Limits[i]
			o.ReadBPS, o.WriteBPS = tighterRate(o.ReadBPS, nl.ReadBPS), tighterRate(o.WriteBPS, nl.WriteBPS)
			o.ReadIOPS, o.WriteIOPS = tighterRate(o.ReadIOPS, nl.ReadIOPS), tighterRate(o.WriteIOPS, nl.WriteIOPS)
			continue
		}
		byDev[d.Num] = len(s.Limits)
		if !nl.Unlimited() {
			s.Limits = append(s.Limits, nl)
		}
	}
	if s.Weight != 0 { // the same weight on the profile's devices, where bfq needs it per device
		for num := range byDev {
			s.DeviceWeights = append(s.DeviceWeights, iolimit.DeviceWeight{Device: num, Weight: s.Weight})
		}
		sort.Slice(s.DeviceWeights, func(i, j int) bool {
			a, b := s.DeviceWeights[i].Device, s.DeviceWeights[j].Device
			return a.Major < b.Major || a.Major == b.Major && a.Minor < b.Minor
		})
	}
	return s
}

func tighterRate(a, b uint64) uint64 {
	if a == 0 || b != 0 && b < a {
		return b
	}
	return a
}

// apply writes a pool's settings to one member. Caller holds mu.
func (c *IOController) apply(im *ioMember, ip isolation.IOPlan) error {
	s := c.settings(ip, im.weight)
	key := fmt.Sprintf("%+v", s)
	if key == im.applied {
		return nil
	}
	rep, err := c.lim.Apply(im.m.Cgroup, s)
	if err != nil {
		if errors.Is(err, cgroup.ErrVanished) {
			return nil // the loop learns of the removal separately
		}
		return fmt.Errorf("container %s (pool %s): %w", im.m.Name, im.m.Pool, err)
	}
	// The pool's IO priority is a container setting of the applier's
	// (isolation.Settings.IOPriority: at creation, at start, drift).
	im.applied, im.weight = key, s.Weight != 0
	for _, why := range rep.Ineffective {
		// Once per pool and reason, not per member: the reason names
		// the cgroup, which differs per member.
		key := im.m.Pool + "\x00" + strings.ReplaceAll(why.Error(), im.m.Cgroup.Path(), "")
		if !c.noted[key] {
			c.noted[key] = true
			c.log.Warn("IO weight written but not effective", "pool", im.m.Pool, "reason", why)
		}
	}
	return nil
}

// Status implements Controller: per pool its weight, limits, protection
// state, throughput and IO pressure.
func (c *IOController) Status() ControllerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := fmt.Sprintf("cgroup %s", c.h.Mode())
	if c.h.Mode() != cgroup.V2 {
		sum += ": buffered writeback is not attributed to containers on cgroup v1, so limits hold back reads and direct writes only"
	}
	var devs []string
	for name, d := range c.devices {
		devs = append(devs, fmt.Sprintf("%s=%s scheduler %s", name, d.Name, d.Scheduler))
	}
	sort.Strings(devs)
	if len(devs) > 0 {
		sum += "; devices " + strings.Join(devs, ", ")
	}
	st := ControllerStatus{Summary: sum, Pools: map[string]string{}}
	for pool, ip := range c.pools {
		var parts []string
		if ip.Weight != 0 {
			parts = append(parts, fmt.Sprintf("weight %d", ip.Weight))
		}
		if ip.IOPriority != "" {
			parts = append(parts, "IO priority "+ip.IOPriority)
		}
		for _, l := range ip.Limits {
			var r []string
			for _, x := range []struct {
				name string
				v    uint64
				unit string
			}{{"read", l.ReadBPS, "B/s"}, {"write", l.WriteBPS, "B/s"}, {"read", l.ReadIOPS, "IOPS"}, {"write", l.WriteIOPS, "IOPS"}} {
				if x.v != 0 {
					if x.unit == "B/s" {
						r = append(r, fmt.Sprintf("%s ≤ %s", x.name, ioRate(float64(x.v))))
					} else {
						r = append(r, fmt.Sprintf("%s ≤ %d IOPS", x.name, x.v))
					}
				}
			}
			if len(r) > 0 {
				parts = append(parts, l.Device+" "+strings.Join(r, ", "))
			}
		}
		if ip.Reason != "" {
			parts = append(parts, ip.Reason)
		}
		if o, ok := c.observed[pool]; ok {
			parts = append(parts, fmt.Sprintf("read %s, write %s, IO PSI some %.1f%%", ioRate(o.ReadBPS), ioRate(o.WriteBPS), o.PSISome))
		}
		if len(parts) > 0 {
			st.Pools[pool] = strings.Join(parts, "; ")
		}
	}
	return st
}

func ioRate(bps float64) string {
	switch {
	case bps >= 1<<30:
		return fmt.Sprintf("%.1f GiB/s", bps/(1<<30))
	case bps >= 1<<20:
		return fmt.Sprintf("%.1f MiB/s", bps/(1<<20))
	case bps >= 1<<10:
		return fmt.Sprintf("%.1f KiB/s", bps/(1<<10))
	}
	return fmt.Sprintf("%.0f B/s", bps)
}

// Collectors implements Controller.
func (c *IOController) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.weight, c.readBPS, c.writeBPS, c.psi, c.throttled}
}
