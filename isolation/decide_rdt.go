package isolation

import "fmt"

// rdtDimension decides each pool's resctrl class: its L3 ways and memory
// bandwidth, laid out by priority, and for throttled pools (usually batch)
// a share that shrinks one step per period while a higher pool is under
// pressure and grows back one step per RecoverPeriods calm periods.
type rdtDimension struct {
	mem map[string]rdtMemory // by pool name
}

// rdtMemory is a pool's share as last applied.
type rdtMemory struct {
	ways, mb, calm int
}

func newRDTDimension(*Config) dimension { return &rdtDimension{mem: map[string]rdtMemory{}} }

// rdtHost is what the host offers, from any pool's observation.
func rdtHost(p *Plan, obs *Observations) RDTObservation {
	var h RDTObservation
	for k := range p.Pools {
		o := obs.Pools[p.Pools[k].Name].RDT
		if o.Ways > h.Ways {
			h.Ways, h.MinWays = o.Ways, o.MinWays
		}
		h.Bandwidth = h.Bandwidth || o.Bandwidth
	}
	return h
}

func (d *rdtDimension) decide(p *Plan, obs *Observations, st *State) {
	host := rdtHost(p, obs)
	minWays := max(1, host.MinWays)

	// Profiles' shares; exclusive pools placed from the top way down, in
	// priority order, keeping minWays for the shared pools and the default
	// group.
	top, avail := host.Ways, host.Ways-minWays
	for k := range p.Pools {
		prof := st.poolConfig(k).Profile.RDT
		rp := &p.Pools[k].RDT
		*rp = RDTPlan{}
		if !prof.Enabled() {
			continue
		}
		rp.Enabled, rp.Class = true, p.Pools[k].Name
		if host.Ways > 0 {
			switch {
			case prof.L3Ways > 0:
				rp.MaxWays = min(prof.L3Ways, host.Ways)
			case prof.L3Percent > 0:
				rp.MaxWays = min(host.Ways, max(minWays, (prof.L3Percent*host.Ways+50)/100))
			}
			if rp.MaxWays > 0 {
				rp.MaxWays = min(host.Ways, max(rp.MaxWays, minWays))
			}
		}
		if host.Bandwidth {
			rp.MaxMBPercent = prof.MBPercent
		}
		if rp.MaxWays > 0 && prof.exclusive(k) {
			w := min(rp.MaxWays, avail)
			if w < minWays {
				p.Warnings = append(p.Warnings, fmt.Sprintf("rdt: pool %s: no room for %d exclusive ways (%d of %d left); its ways are shared", rp.Class, rp.MaxWays, max(avail, 0), host.Ways))
			} else {
				rp.Exclusive, rp.MaxWays = true, w
				top, avail = top-w, avail-w
				rp.FirstWay = top
			}
		}
	}

	// Throttle pressure, then each pool's share this period.
	var totalBW float64
	var totalOcc uint64
	for k := range p.Pools {
		o := obs.Pools[p.Pools[k].Name].RDT
		if o.Measured {
			totalBW += o.BandwidthBytes
			totalOcc += o.OccupancyBytes
		}
	}
	for k := range p.Pools {
		rp := &p.Pools[k].RDT
		if !rp.Enabled {
			continue
		}
		prof := st.poolConfig(k).Profile.RDT
		regionEnd := rp.FirstWay + rp.MaxWays
		if !rp.Exclusive {
			rp.MaxWays = min(rp.MaxWays, top)
		}
		ways, mb := rp.MaxWays, rp.MaxMBPercent
		if prof.Throttle != nil {
			t := prof.throttle()
			cur, seen := d.mem[rp.Class]
			if !seen {
				cur = rdtMemory{ways: ways, mb: mb}
			}
			why := ""
			for j := 0; j < k; j++ {
				if p.Pools[j].Level >= 0 {
					why = fmt.Sprintf("pool %s at protection level %s", p.Pools[j].Name, p.Pools[j].LevelName)
					break
				}
			}
			if o := obs.Pools[rp.Class].RDT; why == "" && o.Measured {
				switch {
				case t.BandwidthShare > 0 && totalBW > 0 && o.BandwidthBytes*100 > float64(t.BandwidthShare)*totalBW:
					why = fmt.Sprintf("memory bandwidth %.0f%% of all pools' (threshold %d%%)", o.BandwidthBytes*100/totalBW, t.BandwidthShare)
				case t.OccupancyShare > 0 && totalOcc > 0 && o.OccupancyBytes*100 > uint64(t.OccupancyShare)*totalOcc:
					why = fmt.Sprintf("L3 occupancy %d%% of all pools' (threshold %d%%)", o.OccupancyBytes*100/totalOcc, t.OccupancyShare)
				}
			}
			floorWays := min(max(t.MinL3Ways, minWays), ways)
			floorMB := min(t.MinMBPercent, mb)
			rp.calm = 0
			switch {
			case why != "":
				rp.Pressured = true
				ways = max(floorWays, min(cur.ways, ways)-t.StepWays)
				mb = max(floorMB, min(cur.mb, mb)-t.StepMBPercent)
				rp.Reason = "shrinking: " + why
			case cur.ways < ways || cur.mb < mb:
				rp.calm = cur.calm + 1
				w, m := max(cur.ways, floorWays), max(cur.mb, floorMB)
				if rp.calm >= t.RecoverPeriods {
					w, m = min(ways, w+t.StepWays), min(mb, m+t.StepMBPercent)
					rp.calm = 0
				}
				ways, mb = w, m
				rp.Reason = fmt.Sprintf("recovering after %d calm periods", cur.calm+1)
			}
			rp.Throttled = ways < rp.MaxWays || mb < rp.MaxMBPercent
		}
		rp.Ways, rp.MBPercent = ways, mb
		if rp.Exclusive {
			rp.FirstWay = regionEnd - ways // stays at the top of its region
		}
	}
}

func (d *rdtDimension) commit(p *Plan) {
	clear(d.mem)
	for k := range p.Pools {
		if rp := &p.Pools[k].RDT; rp.Enabled {
			d.mem[rp.Class] = rdtMemory{ways: rp.Ways, mb: rp.MBPercent, calm: rp.calm}
		}
	}
}
