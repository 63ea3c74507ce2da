package isolation

import "fmt"

// ioDimension decides each pool's block IO: its profile's weight and limits
// and, for a pool with Protect, an extra throttle while a higher pool feels
// IO pressure, lifted after CalmPeriods calm periods (hysteresis). The
// throttle's IO priority class is a member setting: the members' changes
// take it from the pool's section (ioProtectedSettings), which is why this
// dimension decides before them.
type ioDimension struct {
	mem map[string]ioMemory // by pool name
}

type ioMemory struct {
	throttled bool
	calm      int
	// hold is the calm periods the throttle needs to lift now: CalmPeriods,
	// doubled (up to 32×) each time pressure returns within hold periods
	// of a lift, so a batch pool that would at once press the disk again
	// is not lifted every few periods; it decays back after 4 × hold calm
	// periods lifted. since counts periods since the last lift.
	hold, since int
}

func newIODimension(*Config) dimension { return &ioDimension{mem: map[string]ioMemory{}} }

// ioCapacity is the measured capacity of device dev, from any pool.
func ioCapacity(p *Plan, obs *Observations, dev string) IOCapacity {
	var c IOCapacity
	for k := range p.Pools {
		o := obs.Pools[p.Pools[k].Name].IO.Capacity[dev]
		c.ReadBPS, c.WriteBPS = max(c.ReadBPS, o.ReadBPS), max(c.WriteBPS, o.WriteBPS)
	}
	return c
}

func percentOf(abs uint64, pct int, capacity float64) uint64 {
	if abs != 0 || pct == 0 || capacity <= 0 {
		return abs
	}
	return max(1, uint64(capacity*float64(pct)/100))
}

func (d *ioDimension) decide(p *Plan, obs *Observations, st *State) {
	levelIndex := map[string]int{}
	for i, l := range st.cfg.Protection.Levels {
		levelIndex[l.Name] = i
	}
	last := len(p.Pools) - 1
	for k := range p.Pools {
		prof := st.poolConfig(k).Profile.IO
		ip := &p.Pools[k].IO
		*ip = IOPlan{Weight: prof.Weight, IOPriority: prof.IOPriority}
		if ip.Weight == 0 && k == last && last > 0 {
			ip.Weight = DefaultBatchIOWeight
		}
		for _, l := range prof.Limits {
			c := ioCapacity(p, obs, l.Device)
			ip.Limits = append(ip.Limits, IOPlanLimit{
				Device: l.Device, ReadBPS: percentOf(l.ReadBPS, l.ReadPercent, c.ReadBPS),
				WriteBPS: percentOf(l.WriteBPS, l.WritePercent, c.WriteBPS), ReadIOPS: l.ReadIOPS, WriteIOPS: l.WriteIOPS,
			})
		}
		if prof.Protect == nil {
			continue
		}
		t := prof.Protect.withDefaults()
		// The highest IO pressure among higher pools, and whether one is
		// at the configured protection level.
		why, calm := "", true
		for j := 0; j < k; j++ {
			o := obs.Pools[p.Pools[j].Name].IO
			if o.Measured && o.PSISome >= t.PSISome {
				why = fmt.Sprintf("pool %s IO PSI some %.1f%% ≥ %.1f%%", p.Pools[j].Name, o.PSISome, t.PSISome)
			}
			if o.Measured && o.PSISome >= t.ReleasePSISome {
				calm = false
			}
			if at, ok := levelIndex[t.AtLevel]; ok && t.AtLevel != "" && p.Pools[j].Level >= at {
				why = fmt.Sprintf("pool %s at protection level %s", p.Pools[j].Name, p.Pools[j].LevelName)
				calm = false
			}
			if why != "" {
				break
			}
		}
		mem, seen := d.mem[p.Pools[k].Name]
		if !seen || mem.hold == 0 {
			mem = ioMemory{hold: t.CalmPeriods, since: 1 << 30}
		}
		ip.Hold, ip.since = mem.hold, mem.since
		switch {
		case why != "":
			ip.Throttled, ip.Reason = true, "throttled: "+why
			if !mem.throttled && mem.since <= mem.hold {
				ip.Hold = min(2*mem.hold, 32*t.CalmPeriods) // pressure came straight back
			}
		case mem.throttled && calm:
			ip.Calm = mem.calm + 1
			ip.Throttled = ip.Calm < mem.hold
			if ip.Throttled {
				ip.Reason = fmt.Sprintf("lifting after %d of %d calm periods", ip.Calm, mem.hold)
			} else {
				ip.Reason, ip.Calm, ip.since = "lifted", 0, 0
			}
		case mem.throttled:
			ip.Throttled, ip.Reason = true, fmt.Sprintf("held: higher pools' IO PSI not yet below %.1f%%", t.ReleasePSISome)
		default:
			ip.since = mem.since + 1
			if ip.since > 4*mem.hold {
				ip.Hold = t.CalmPeriods
			}
		}
		if !ip.Throttled {
			continue
		}
		ip.Weight = t.Weight
		if t.IOPriority != "" {
			ip.IOPriority = t.IOPriority // the members' threads' class: ioProtectedSettings
		}
		if t.Device == "" {
			continue // the IO class alone
		}
		c := ioCapacity(p, obs, t.Device)
		lim := IOPlanLimit{Device: t.Device, ReadBPS: percentOf(t.ReadBPS, t.ReadPercent, c.ReadBPS), WriteBPS: percentOf(t.WriteBPS, t.WritePercent, c.WriteBPS)}
		replaced := false
		for i := range ip.Limits {
			if ip.Limits[i].Device == t.Device {
				// The tighter of the profile's limit and the throttle's.
				ip.Limits[i].ReadBPS = tighter(ip.Limits[i].ReadBPS, lim.ReadBPS)
				ip.Limits[i].WriteBPS = tighter(ip.Limits[i].WriteBPS, lim.WriteBPS)
				replaced = true
			}
		}
		if !replaced {
			ip.Limits = append(ip.Limits, lim)
		}
	}
}

// tighter is the smaller non-zero limit (0 is no limit).
func tighter(a, b uint64) uint64 {
	if a == 0 || b != 0 && b < a {
		return b
	}
	return a
}

func (d *ioDimension) commit(p *Plan) {
	clear(d.mem)
	for k := range p.Pools {
		if ip := p.Pools[k].IO; ip.Hold > 0 {
			d.mem[p.Pools[k].Name] = ioMemory{throttled: ip.Throttled, calm: ip.Calm, hold: ip.Hold, since: ip.since}
		}
	}
}
