package isolation

import "fmt"

// IOProfile is a pool's block IO share (package iolimit applies it to each
// member's cgroup). Devices are named as the plugin resolves them: a path
// on the filesystem to limit ("/var/lib/containerd"), a device node
// ("/dev/sda") or "major:minor"; partitions resolve to their disks.
type IOProfile struct {
	// Weight is the members' proportional IO weight, 10..1000 (bfq, or
	// iocost on cgroup v2). 0: the lowest-priority pool (batch) gets
	// DefaultBatchIOWeight, the others keep the runtime's weight.
	Weight int `json:"weight,omitempty"`
	// Limits throttle each member per device.
	Limits []IODeviceLimit `json:"limits,omitempty"`
	// IOPriority, "idle" or "best-effort", sets the IO scheduling class of
	// every member's threads (ioprio_set; bfq honours it, other schedulers
	// do not). "idle" is what cgroup v1 offers against a batch pool's IO
	// that its limits cannot reach: the idle class is served only when no
	// other class wants the disk. "": the runtime's.
	IOPriority string `json:"ioPriority,omitempty"`
	// Protect, when set, throttles this pool's members further while a
	// higher pool feels IO pressure, and lifts it with hysteresis. Usually
	// only batch has it.
	Protect *IOProtect `json:"protect,omitempty"`
}

// DefaultBatchIOWeight is the weight of the lowest pool when its profile
// sets none: a quarter of the kernel default 100, so batch yields the disk
// to the online pools wherever weights act.
const DefaultBatchIOWeight = 25

// IODeviceLimit is a per-member limit on one device, in bytes or IOs per
// second (0: none). The *Percent fields give a limit as a share of the
// device's measured capacity (the highest throughput the plugin has seen
// on it), used when the absolute value is 0 and a capacity is known.
type IODeviceLimit struct {
	// Device: a block device path, a path on the filesystem to limit, or
	// major:minor.
	Device string `json:"device"`
	// ReadBPS: read bytes per second (0: no limit).
	ReadBPS uint64 `json:"readBPS,omitempty"`
	// WriteBPS: write bytes per second (0: no limit).
	WriteBPS uint64 `json:"writeBPS,omitempty"`
	// ReadIOPS: read operations per second (0: no limit).
	ReadIOPS uint64 `json:"readIOPS,omitempty"`
	// WriteIOPS: write operations per second (0: no limit).
	WriteIOPS uint64 `json:"writeIOPS,omitempty"`
	// ReadPercent and WritePercent: 1..100 of the measured read (write)
	// bandwidth capacity.
	ReadPercent int `json:"readPercent,omitempty"`
	// WritePercent: see ReadPercent.
	WritePercent int `json:"writePercent,omitempty"`
}

// IOProtect is the IO protection action: hold this pool back (the limits,
// weight and IO priority class below) while any higher pool's IO PSI
// "some" avg10 is at or above PSISome percent (or while a higher pool is
// at protection level AtLevel or above), and lift it once the pressure has
// been below ReleasePSISome for CalmPeriods periods in a row.
type IOProtect struct {
	// PSISome: IO PSI some avg10 of a higher pool, percent (1..100), that
	// engages the throttle. Default 10.
	PSISome float64 `json:"psiSome,omitempty"`
	// ReleasePSISome: below it the pool counts a calm period; default half
	// of PSISome. The gap between the two is the hysteresis.
	ReleasePSISome float64 `json:"releasePSISome,omitempty"`
	// CalmPeriods: calm periods before the throttle lifts (default 5).
	CalmPeriods int `json:"calmPeriods,omitempty"`
	// AtLevel, if set, also engages the throttle while a higher pool is
	// at that protection level or a higher one, placing IO protection in
	// the escalation order of the protection levels.
	AtLevel string `json:"atLevel,omitempty"`
	// IOPriority, "idle" or "best-effort": the IO scheduling class of
	// every member thread while engaged (ioprio_set; bfq honours it).
	// "idle" is what holds an online reader's latency where a bandwidth
	// limit cannot (docs/iolimit.md): bfq serves the idle class only
	// when no other class wants the disk. On lifting the members return
	// to the profile's ioPriority, or to class none (the kernel's
	// default, from the CPU nice value) when the profile sets none: the
	// pool's IO priority class is then Strata's. "": no switch.
	IOPriority string `json:"ioPriority,omitempty"`
	// Device and the limits applied to each member while engaged; the
	// weight drops to Weight (default 10, the minimum). Needed for limits
	// and for a per-device weight; optional with IOPriority alone.
	Device   string `json:"device,omitempty"`
	ReadBPS  uint64 `json:"readBPS,omitempty"`
	WriteBPS uint64 `json:"writeBPS,omitempty"`
	// ReadPercent / WritePercent: as in IODeviceLimit.
	ReadPercent  int `json:"readPercent,omitempty"`
	WritePercent int `json:"writePercent,omitempty"`
	// Weight: the members' IO weight while engaged (default 10, the
	// minimum).
	Weight int `json:"weight,omitempty"`
}

func (p IOProtect) withDefaults() IOProtect {
	if p.PSISome == 0 {
		p.PSISome = 10
	}
	if p.ReleasePSISome == 0 {
		p.ReleasePSISome = p.PSISome / 2
	}
	if p.CalmPeriods == 0 {
		p.CalmPeriods = 5
	}
	if p.Weight == 0 {
		p.Weight = 10
	}
	return p
}

func (p IOProfile) validate(v *validator, f string) {
	weight := func(field string, w int) {
		if w != 0 && (w < 10 || w > 1000) {
			v.add(field, w, "must be an IO weight 10..1000 (0: default)")
		}
	}
	pct := func(field string, x int) {
		if x < 0 || x > 100 {
			v.add(field, x, "must be a percentage 1..100 (0: unset)")
		}
	}
	weight(f+".weight", p.Weight)
	ioPriority := func(field, c, unset string) {
		if c != "" && c != "idle" && c != "best-effort" {
			v.add(field, c, `must be "idle" or "best-effort" ("": %s)`, unset)
		}
	}
	ioPriority(f+".ioPriority", p.IOPriority, "the runtime's")
	seen := map[string]bool{}
	for i, l := range p.Limits {
		lf := fmt.Sprintf("%s.limits[%d]", f, i)
		if l.Device == "" {
			v.add(lf+".device", "", "must name a device: a path, /dev/<name> or major:minor")
		}
		if seen[l.Device] {
			v.add(lf+".device", l.Device, "listed twice")
		}
		seen[l.Device] = true
		pct(lf+".readPercent", l.ReadPercent)
		pct(lf+".writePercent", l.WritePercent)
	}
	if p.Protect == nil {
		return
	}
	t, tf := *p.Protect, f+".protect"
	ioPriority(tf+".ioPriority", t.IOPriority, "no switch")
	limited := t.ReadBPS != 0 || t.WriteBPS != 0 || t.ReadPercent != 0 || t.WritePercent != 0
	switch {
	case t.Device == "" && limited:
		v.add(tf+".device", "", "must name the device the limits apply to: a path, /dev/<name> or major:minor")
	case t.Device == "" && t.IOPriority == "":
		v.add(tf+".device", "", `must name the device to throttle, or set ioPriority ("idle" or "best-effort") to switch the IO class only`)
	}
	for _, x := range []struct {
		name string
		val  float64
	}{{"psiSome", t.PSISome}, {"releasePSISome", t.ReleasePSISome}} {
		if !(x.val >= 0 && x.val <= 100) { // NaN fails too
			v.add(tf+"."+x.name, x.val, "must be a PSI avg10 percentage 0..100 (0: default)")
		}
	}
	if t.ReleasePSISome > 0 && t.PSISome > 0 && t.ReleasePSISome > t.PSISome {
		v.add(tf+".releasePSISome", t.ReleasePSISome, "must not exceed psiSome (%v): the throttle would never lift", t.PSISome)
	}
	if t.CalmPeriods < 0 || t.CalmPeriods > 3600 {
		v.add(tf+".calmPeriods", t.CalmPeriods, "allowed 0..3600 (0: default 5)")
	}
	pct(tf+".readPercent", t.ReadPercent)
	pct(tf+".writePercent", t.WritePercent)
	weight(tf+".weight", t.Weight)
}
