package nriplugin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/iolimit"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/pressure"
)

// The applier: one routing table says, for every isolation setting field
// and every runtime capability, how the field reaches a container — in the
// creation adjustment, in an NRI update, written directly through a
// primitive, or not at all (with the reason). Every path builds from it:
// the CreateContainer adjustment, StartContainer's writes, the updates of
// Synchronize, UpdateContainer, the updater and drift repair, and the
// loop's direct writes.

// runtimeGen is what a runtime's NRI carries, by containerd release.
type runtimeGen uint8

const (
	// genContainerd17: containerd 1.7 (NRI v0.3–v0.8, off by default), and
	// any runtime Strata cannot identify: the base adjustment set.
	genContainerd17 runtimeGen = iota
	// genContainerd20: containerd 2.0–2.1 (NRI v0.8): adds oom_score_adj
	// and the pids limit at creation.
	genContainerd20
	// genContainerd22: containerd 2.2 (NRI v0.10–v0.11): adds io priority,
	// scheduling policy, sysctls and RDT schemata at creation.
	genContainerd22
	// genContainerd23: containerd 2.3 and later (NRI ≥ v0.12).
	genContainerd23
	numGens
)

func (g runtimeGen) String() string {
	return [...]string{"containerd 1.7 or unknown", "containerd 2.0–2.1", "containerd 2.2", "containerd 2.3+"}[g]
}

// detectGen derives the runtime generation from the NRI version the
// runtime reports (NRI ≥ v0.10 does), else from its name and version as
// given at Configure.
func detectGen(nriVersion, runtime, version string) runtimeGen {
	if ma, mi, ok := semver(nriVersion); ok {
		switch {
		case ma > 0 || mi >= 12:
			return genContainerd23
		case mi >= 10:
			return genContainerd22
		case mi >= 8:
			return genContainerd20
		}
		return genContainerd17
	}
	if ma, mi, ok := semver(version); ok && runtime == "containerd" {
		switch {
		case ma >= 3 || ma == 2 && mi >= 3:
			return genContainerd23
		case ma == 2 && mi == 2:
			return genContainerd22
		case ma == 2:
			return genContainerd20
		}
	}
	return genContainerd17
}

// semver reads the major and minor number of "v1.7.35" or "2.1.4".
func semver(v string) (major, minor int, ok bool) {
	_, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor)
	return major, minor, err == nil
}

// capability is what the routes depend on: the runtime's generation,
// whether the host runs cgroup v2 (whose OCI unified map reaches the
// cgroup files), and which pool-level dimensions run and can name a class
// the runtime resolves at creation.
type capability struct {
	gen     runtimeGen
	unified bool
	// blockIO: the blockio dimension runs (it writes members' cgroups);
	// blockIOClasses: and the runtime has a blockio class file
	// (containerd's blockio_config_file) naming the pools' classes.
	blockIO, blockIOClasses bool
	// rdt: the rdt dimension runs (resctrl is there and allocates), so
	// the pools' classes exist before a container is created in one.
	rdt bool
}

func (c capability) String() string {
	mode := "cgroup v1"
	if c.unified {
		mode = "cgroup v2"
	}
	out := c.gen.String() + ", " + mode
	switch {
	case c.blockIOClasses:
		out += ", blockio classes"
	case c.blockIO:
		out += ", blockio"
	}
	if c.rdt {
		out += ", rdt"
	}
	return out
}

// allCapabilities lists every capability, for tests and status.
func allCapabilities() []capability {
	var out []capability
	for g := range numGens {
		for _, unified := range []bool{false, true} {
			for _, bio := range [][2]bool{{false, false}, {true, false}, {true, true}} {
				for _, rdt := range []bool{false, true} {
					out = append(out, capability{gen: g, unified: unified, blockIO: bio[0], blockIOClasses: bio[1], rdt: rdt})
				}
			}
		}
	}
	return out
}

// route is how a field reaches a container.
type route uint8

const (
	// routeAdjust: in the CreateContainer adjustment.
	routeAdjust route = iota + 1
	// routeAtStart: written directly when the container starts; the
	// runtime has no creation field for it.
	routeAtStart
	// routeUpdate: in an NRI ContainerUpdate, which the runtime turns into
	// a CRI UpdateContainerResources.
	routeUpdate
	// routeDirect: written directly through a primitive (package cgroup or
	// pressure) on a running container.
	routeDirect
	// routeNone: cannot be applied on this host; the reason is logged and
	// shown in status.
	routeNone
	// routeDimension: written directly by the pool-level dimension's
	// Controller (ContainerAdmitted, ApplyPools) once the container
	// started: a container's class in a dimension, which NRI cannot
	// change on a running container.
	routeDimension
	numRoutes
)

func (r route) String() string {
	return [...]string{"?", "creation adjustment", "direct at start", "NRI update", "direct write", "not applied",
		"direct write by its dimension"}[r]
}

// Pool classes: a container's class in a pool-level dimension (its pool's
// blockio class, its pool's RDT class). They are not isolation settings —
// the dimension's controller names the class, and only at creation can it
// travel through NRI — so their bits are the plugin's, above isolation's.
const (
	fieldBlockIOClass isolation.Fields = (isolation.FieldsAll + 1) << iota
	fieldRDTClass

	// fieldsAll is every field of the routing table.
	fieldsAll = fieldRDTClass<<1 - 1
)

// poolClasses names, per pool-class field and pool, the class a new
// container of the pool is created in; a pool without one gets none.
// Built from the running controllers outside the NRI handlers
// (controllers.classes), read by CreateContainer.
type poolClasses map[isolation.Fields]map[string]string

func (pc poolClasses) of(f isolation.Fields, pool string) string { return pc[f][pool] }

// nriResources is what an adjustment and an update have in common: one
// translation serves both.
type nriResources interface {
	SetLinuxCPUSetCPUs(string)
	SetLinuxCPUSetMems(string)
	SetLinuxCPUShares(uint64)
	SetLinuxCPUQuota(int64)
	SetLinuxCPUPeriod(int64)
	SetLinuxMemoryLimit(int64)
	SetLinuxMemoryReservation(int64)
	AddLinuxUnified(key, value string)
}

var (
	_ nriResources = (*api.ContainerAdjustment)(nil)
	_ nriResources = (*api.ContainerUpdate)(nil)
)

// setting is one row of the routing table.
type setting struct {
	field isolation.Fields
	name  string
	// create and running give the route at creation and on a running
	// container, with the reason when it is routeNone.
	create, running func(capability) (route, string)
	// toNRI puts the value into an adjustment or an update. At creation
	// (creating) values that only restate the default are left out, so
	// Strata does not claim fields it does not change (two plugins setting
	// one field fail the creation).
	toNRI func(r nriResources, ch *isolation.ContainerChange, creating bool, cpus *setStrings)
	// toAdjust, for a pool class, puts the pool's class (never "") into
	// the creation adjustment.
	toAdjust func(a *api.ContainerAdjustment, class string)
	// slow: drift repair reads it back only every slowEvery periods per
	// member (staggered), not every period: memory nodes, memory,
	// process attributes and the quota, which nothing on a node rewrites
	// routinely, while the CPU placement (cpuset.cpus, shares, idle) is
	// read every period.
	slow bool
	// process: a process attribute (oom_score_adj, IO priority), read
	// per process through procfs: drift repair reads it back only every
	// driftProcessFactor slow reads of the member (10 s at periods up to
	// 2 s). No runtime or kubelet rewrites them on a running container,
	// and opening /proc/PID/oom_score_adj for every process was the
	// costliest read of a slow pass.
	process bool
	// verify: the runtime may accept the field in the adjustment and
	// still drop it (an OCI runtime older than the field); StartContainer
	// reads it back and writes it when it did not take.
	verify bool
	// write writes the value directly.
	write func(p *Plugin, m *member) error
	// same reads the value back and says whether it is still Strata's
	// (drift repair); nil when the field is not checked.
	same func(p *Plugin, m *member) (bool, error)
}

func always(r route) func(capability) (route, string) {
	return func(capability) (route, string) { return r, "" }
}

// adjustFrom routes a field that runtimes of generation g and later take
// in the creation adjustment; older ones get it written at start.
func adjustFrom(g runtimeGen) func(capability) (route, string) {
	return func(c capability) (route, string) {
		if c.gen >= g {
			return routeAdjust, ""
		}
		return routeAtStart, ""
	}
}

// v2Only routes a field that only cgroup v2 has.
func v2Only(r route, what string) func(capability) (route, string) {
	return func(c capability) (route, string) {
		if c.unified {
			return r, ""
		}
		return routeNone, "cgroup v1 has no " + what
	}
}

// settings is the routing table: one row per isolation setting field.
var settings = []setting{
	{
		field: isolation.FieldCPUs, name: "cpuset cpus",
		create: always(routeAdjust), running: always(routeUpdate),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, _ bool, cpus *setStrings) {
			if ch.CPUs.Size() > 0 {
				r.SetLinuxCPUSetCPUs(cpus.of(ch.CPUs))
			}
		},
		same: func(_ *Plugin, m *member) (bool, error) {
			got, err := m.readBack().CPUSetCPUs()
			return m.cpus.Size() == 0 || got.Equals(m.cpus), err
		},
	},
	{
		field: isolation.FieldMems, name: "cpuset mems", slow: true,
		create: always(routeAdjust), running: always(routeUpdate),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, _ bool, _ *setStrings) {
			if ch.Mems.Size() > 0 {
				r.SetLinuxCPUSetMems(ch.Mems.String())
			}
		},
		same: func(_ *Plugin, m *member) (bool, error) {
			got, err := m.readBack().CPUSetMems()
			return m.mems.Size() == 0 || got.Equals(m.mems), err
		},
	},
	{
		// An idle group's weight is the kernel's: cpu.idle=1 sets it to
		// WEIGHT_IDLEPRIO (cpu.shares reads 3, cpu.weight 1) and refuses
		// writes of it with EINVAL, on v1 and v2 alike. containerd hands
		// runc a container's whole spec resources in every update (an
		// update without shares keeps the spec's), so shares in an idle
		// member's spec made every update of it fail: on v2 before its
		// cpuset (runc writes cpu.weight first), on v1 after it (the cpuset
		// moved, the quota behind the shares never did, and containerd
		// kept its record of the old resources). So an idle member gets 0
		// shares — runc writes no weight — at creation, which keeps them
		// out of its spec, and in every update, which keeps a kubelet's
		// shares out of it (the reply overrides its request; containerd
		// ignores 0). Nor are its shares checked for drift: reading 3 where
		// the profile says 2 made drift repair resend every idle member's
		// shares every period, which kept containerd busy (runc update per
		// container) and slowed stopping 100 pods to 135 s. An idle profile
		// needs cpu.idle (Linux 5.15): without it the member runs with the
		// kernel's default weight.
		field: isolation.FieldCPUShares, name: "cpu shares",
		create: always(routeAdjust), running: always(routeUpdate),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, _ bool, _ *setStrings) {
			switch {
			case ch.Settings.CPUIdle:
				r.SetLinuxCPUShares(0)
			case ch.Settings.CPUShares > 0:
				r.SetLinuxCPUShares(ch.Settings.CPUShares)
			}
		},
		same: func(p *Plugin, m *member) (bool, error) {
			if m.settings.CPUShares == 0 || m.settings.CPUIdle {
				return true, nil
			}
			got, err := m.readBack().CPUShares()
			return p.cg.SameShares(got, m.settings.CPUShares), err
		},
	},
	{
		field: isolation.FieldCPUQuota, name: "cpu quota", slow: true,
		create: always(routeAdjust), running: always(routeUpdate),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, creating bool, _ *setStrings) {
			s := &ch.Settings
			if s.CPUPeriod > 0 {
				r.SetLinuxCPUPeriod(int64(s.CPUPeriod))
			}
			if s.CPUQuota != 0 {
				r.SetLinuxCPUQuota(s.CPUQuota)
			}
		},
		same: func(_ *Plugin, m *member) (bool, error) {
			q, period, err := m.readBack().CPUQuota()
			s := &m.settings
			sameQuota := q == s.CPUQuota || q < 0 && s.CPUQuota < 0
			return sameQuota && (s.CPUPeriod == 0 || period == s.CPUPeriod), err
		},
	},
	{
		// cpu.idle: the unified map carries it at creation on v2; v1 has
		// no NRI field for it. A running container's is written directly
		// on both (one file, no runtime round trip).
		field: isolation.FieldCPUIdle, name: "cpu idle",
		create: func(c capability) (route, string) {
			if c.unified {
				return routeAdjust, ""
			}
			return routeAtStart, ""
		},
		running: always(routeDirect),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, creating bool, _ *setStrings) {
			if ch.Settings.CPUIdle || !creating {
				r.AddLinuxUnified(cgroup.UnifiedCPUIdle, cgroup.UnifiedBool(ch.Settings.CPUIdle))
			}
		},
		write: func(_ *Plugin, m *member) error { return m.cg.SetCPUIdle(m.settings.CPUIdle) },
		same: func(_ *Plugin, m *member) (bool, error) {
			got, err := m.readBack().CPUIdle()
			return got == m.settings.CPUIdle, err
		},
	},
	{
		// The memory limit is the kubelet's (it resizes it in place);
		// Strata passes it on and does not repair it.
		field: isolation.FieldMemoryLimit, name: "memory limit",
		create: always(routeAdjust), running: always(routeUpdate),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, _ bool, _ *setStrings) {
			if ch.Settings.MemoryLimit > 0 {
				r.SetLinuxMemoryLimit(ch.Settings.MemoryLimit)
			}
		},
	},
	unifiedMemoryRow(isolation.FieldMemoryMin, "memory min", cgroup.UnifiedMemoryMin,
		func(s *isolation.Settings) int64 { return s.MemoryMin }, settingsReader.MemoryMin),
	unifiedMemoryRow(isolation.FieldMemoryLow, "memory low", cgroup.UnifiedMemoryLow,
		func(s *isolation.Settings) int64 { return s.MemoryLow }, settingsReader.MemoryLow),
	unifiedMemoryRow(isolation.FieldMemoryHigh, "memory high", cgroup.UnifiedMemoryHigh,
		func(s *isolation.Settings) int64 { return s.MemoryHigh }, settingsReader.MemoryHigh),
	{
		// The soft limit travels as the OCI memory reservation. On a
		// running container the CRI update has no reservation: v1 writes
		// it directly; v2 maps a reservation to memory.low, which the
		// memory low row owns.
		field: isolation.FieldMemorySoftLimit, name: "memory soft limit", slow: true,
		create: always(routeAdjust),
		running: func(c capability) (route, string) {
			if c.unified {
				return routeNone, "on cgroup v2 the reservation is the low-memory protection, which profile.memory.low sets"
			}
			return routeDirect, ""
		},
		toNRI: func(r nriResources, ch *isolation.ContainerChange, _ bool, _ *setStrings) {
			if ch.Settings.MemorySoftLimit > 0 {
				r.SetLinuxMemoryReservation(ch.Settings.MemorySoftLimit)
			}
		},
		write: func(_ *Plugin, m *member) error { return m.cg.SetMemorySoftLimit(m.settings.MemorySoftLimit) },
		same: func(_ *Plugin, m *member) (bool, error) {
			got, err := m.readBack().MemorySoftLimit()
			return cgroup.SameBytes(got, m.settings.MemorySoftLimit), err
		},
	},
	{
		// oom_score_adj: an adjustment field from NRI v0.7 (containerd
		// 2.0); no runtime changes it on a running container.
		field: isolation.FieldOOMScoreAdj, name: "oom_score_adj", slow: true, process: true,
		create:  adjustFrom(genContainerd20),
		running: always(routeDirect),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, _ bool, _ *setStrings) {
			if a, ok := r.(*api.ContainerAdjustment); ok {
				v := ch.Settings.OOMScoreAdj
				a.SetLinuxOomScoreAdj(&v)
			}
		},
		write: func(p *Plugin, m *member) error {
			return pressure.SetOOMScoreAdj(m.cg, m.settings.OOMScoreAdj, p.opts.ProcRoot)
		},
		same: func(p *Plugin, m *member) (bool, error) {
			pids, err := m.readBack().Procs()
			if err != nil {
				return true, err
			}
			for _, pid := range pids {
				v, err := pressure.ProcessOOMScoreAdj(p.opts.ProcRoot, pid)
				switch {
				case pressure.ProcessGone(err):
				case err != nil:
					return true, fmt.Errorf("container cgroup %s: %w", m.cg.Path(), err)
				case v != m.settings.OOMScoreAdj:
					return false, nil
				}
			}
			return true, nil
		},
	},
	{
		// The IO priority class: an adjustment field from NRI v0.10
		// (containerd 2.2), which containerd puts into the OCI
		// process.ioPriority. runc applies that only from 1.2 — Debian
		// 12's runc 1.1.5 drops it without a word (measured on 2.4.2) —
		// so StartContainer reads it back and sets it when it did not
		// take. Older runtimes: ioprio_set on the container's processes
		// at start (runc's init, blocked before exec; the program inherits
		// it). A running container's threads are set directly: the IO
		// protection switches a pool's members to its class and back
		// (isolation.IOPriorityNone: class none, written).
		field: isolation.FieldIOPriority, name: "io priority", slow: true, process: true,
		create:  adjustFrom(genContainerd22),
		running: always(routeDirect),
		verify:  true,
		toNRI: func(r nriResources, ch *isolation.ContainerChange, _ bool, _ *setStrings) {
			a, ok := r.(*api.ContainerAdjustment)
			if class, level := ioPriority(ch.Settings.IOPriority); ok && class != iolimit.IOPriorityNone {
				a.SetLinuxIOPriority(&api.LinuxIOPriority{Class: api.IOPrioClass(class), Priority: int32(level)})
			}
		},
		write: func(p *Plugin, m *member) error {
			if m.settings.IOPriority == "" {
				return nil // the runtime's: not Strata's to write
			}
			class, level := ioPriority(m.settings.IOPriority)
			pids, err := m.cg.Procs()
			if err != nil {
				return err
			}
			for _, pid := range pids {
				if err := iolimit.SetIOPriority(p.opts.ProcRoot, pid, class, level); err != nil {
					return err
				}
			}
			return nil
		},
		same: func(p *Plugin, m *member) (bool, error) {
			if m.settings.IOPriority == "" {
				return true, nil
			}
			class, _ := ioPriority(m.settings.IOPriority)
			pids, err := m.readBack().Procs()
			if err != nil {
				return true, err
			}
			// The main thread of each process stands for its threads: new
			// ones inherit it, and a sweep sets them all.
			for _, pid := range pids {
				if !processUnder(p.opts.ProcRoot, pid) {
					continue // not this procfs's (a fixture's): not readable here
				}
				if got, _, err := iolimit.IOPriority(pid); err == nil && got != class {
					return false, nil
				}
			}
			return true, nil
		},
	},
	// The pool's blockio class (goresctrl's, which containerd turns into
	// OCI LinuxBlockIO) — sent only when the runtime has the class:
	// containerd 1.7, 2.1 and 2.4 all fail the creation on a class their
	// blockio config does not define ("no OCI BlockIO parameters for
	// class"), and on any class when they have no config. Else, and on a
	// running container (NRI cannot update a blockio class), the blockio
	// controller writes the cgroup.
	poolClassRow(fieldBlockIOClass, "blockio class",
		func(c capability) bool { return c.blockIOClasses },
		func(c capability) bool { return c.blockIO },
		"the blockio dimension does not run (no blkio or io cgroup controller)",
		func(a *api.ContainerAdjustment, class string) { a.SetLinuxBlockIOClass(class) }),
	// The pool's RDT class, which containerd (1.7 to 2.4) turns into the
	// OCI intelRdt closID; runc then fails the creation unless resctrl is
	// mounted and the group exists. So it is sent only while the rdt
	// dimension runs and its pool's class exists (RDTController.ClassOf).
	// NRI ≥ v0.11 also has closID and schemata fields; containerd resolves
	// the class to the same closID, and the controller owns the schemata,
	// so the class field, which every NRI version carries, is the one
	// used. A running container's tasks are moved by the rdt controller.
	poolClassRow(fieldRDTClass, "rdt class",
		func(c capability) bool { return c.rdt },
		func(c capability) bool { return c.rdt },
		"RDT is not enabled on this host (no resctrl allocation); the runtime would refuse a container with an RDT class",
		func(a *api.ContainerAdjustment, class string) { a.SetLinuxRDTClass(class) }),
}

// ioPriority is the kernel class and level of a member's IO priority
// (isolation.Settings.IOPriority): isolation.IOPriorityNone, like "", is
// class none, but written.
func ioPriority(p string) (iolimit.IOPriorityClass, int) {
	switch p {
	case "idle":
		return iolimit.IOPriorityIdle, 0
	case "best-effort":
		return iolimit.IOPriorityBestEffort, 4 // the kernel's default level
	}
	return iolimit.IOPriorityNone, 0
}

// processUnder reports whether procRoot lists process pid.
func processUnder(procRoot string, pid int) bool {
	_, err := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid), "task"))
	return err == nil
}

// poolClassRow is a pool class (blockio, RDT) that a dimension
// controller owns: at creation it goes into the adjustment when the
// runtime can take it (sendable), else the dimension writes it once the
// container runs, as on a running container, whose class NRI cannot
// change. Without the dimension (runs false) it is routeNone, for absent.
func poolClassRow(f isolation.Fields, name string, sendable, runs func(capability) bool, absent string,
	toAdjust func(a *api.ContainerAdjustment, class string)) setting {
	return setting{
		field: f, name: name,
		create: func(c capability) (route, string) {
			switch {
			case sendable(c):
				return routeAdjust, ""
			case runs(c):
				return routeDimension, ""
			}
			return routeNone, absent
		},
		running: func(c capability) (route, string) {
			if runs(c) {
				return routeDimension, ""
			}
			return routeNone, absent
		},
		toAdjust: toAdjust,
	}
}

// unifiedMemoryRow is a v2 memory protection field, carried by the OCI
// unified map at creation and in updates.
func unifiedMemoryRow(f isolation.Fields, name, key string, value func(*isolation.Settings) int64,
	read func(settingsReader) (int64, error)) setting {
	return setting{
		field: f, name: name, slow: true,
		create: v2Only(routeAdjust, name), running: v2Only(routeUpdate, name),
		toNRI: func(r nriResources, ch *isolation.ContainerChange, creating bool, _ *setStrings) {
			// memory.min and memory.low are off at 0, memory.high at -1.
			if v := value(&ch.Settings); v > 0 || !creating {
				r.AddLinuxUnified(key, cgroup.UnifiedBytes(v))
			}
		},
		same: func(_ *Plugin, m *member) (bool, error) {
			got, err := read(m.readBack())
			return cgroup.SameBytes(got, value(&m.settings)), err
		},
	}
}

// routing is the table resolved for one capability.
type routing struct {
	cap capability
	// create and running: the fields on each route.
	create, running [numRoutes]isolation.Fields
	// reasons: why a field cannot be applied, by route phase.
	reasons map[isolation.Fields]string
}

func newRouting(c capability) *routing {
	rt := &routing{cap: c, reasons: map[isolation.Fields]string{}}
	for i := range settings {
		s := &settings[i]
		r, why := s.create(c)
		rt.create[r] |= s.field
		if r == routeNone {
			rt.reasons[s.field] = why
		}
		r, why = s.running(c)
		rt.running[r] |= s.field
		if r == routeNone {
			rt.reasons[s.field] = why
		}
	}
	return rt
}

// unapplied lists the fields among f that cannot be applied, with reasons.
func (rt *routing) unapplied(f isolation.Fields) []string {
	var out []string
	for i := range settings {
		s := &settings[i]
		if f&s.field != 0 && (rt.create[routeNone]|rt.running[routeNone])&s.field != 0 {
			out = append(out, s.name+": "+rt.reasons[s.field])
		}
	}
	return out
}

// toNRI writes the fields of ch that take route r (of the creation or the
// running phase) into dst; it reports whether it wrote any.
func (rt *routing) toNRI(dst nriResources, ch *isolation.ContainerChange, creating bool, cpus *setStrings) bool {
	routes := &rt.running
	r := routeUpdate
	if creating {
		routes, r = &rt.create, routeAdjust
	}
	f := ch.Fields & routes[r]
	if f == 0 {
		return false
	}
	for i := range settings {
		if s := &settings[i]; f&s.field != 0 && s.toNRI != nil {
			s.toNRI(dst, ch, creating, cpus)
		}
	}
	return true
}

// adjustment builds the CreateContainer adjustment for an admission: the
// pool annotations, every field whose creation route is the adjustment,
// and the pool's classes that travel in it.
func (rt *routing) adjustment(adm isolation.Admission, classes poolClasses) *api.ContainerAdjustment {
	a := &api.ContainerAdjustment{}
	a.AddAnnotation(AnnotationAssignedPool, adm.Pool)
	if adm.Exclusive {
		a.AddAnnotation(AnnotationExclusiveCPUs, adm.CPUs.String())
	}
	ch := isolation.ContainerChange{ID: adm.ID, Pool: adm.Pool, CPUs: adm.CPUs, Mems: adm.Mems, Settings: adm.Settings,
		Fields: isolation.FieldsAll}
	rt.toNRI(a, &ch, true, nil)
	for i := range settings {
		s := &settings[i]
		if s.toAdjust == nil || rt.create[routeAdjust]&s.field == 0 {
			continue
		}
		if class := classes.of(s.field, adm.Pool); class != "" {
			s.toAdjust(a, class)
		}
	}
	return a
}

// update builds the NRI update carrying the fields of ch whose running
// route is an update; nil when there are none.
func (rt *routing) update(ch *isolation.ContainerChange, cpus *setStrings) *api.ContainerUpdate {
	u := &api.ContainerUpdate{}
	if !rt.toNRI(u, ch, false, cpus) {
		return nil
	}
	u.SetContainerId(ch.ID)
	// A container that exits between planning and applying must not fail
	// the whole batch.
	u.IgnoreFailure = true
	return u
}

// updates turns changes into NRI updates, skipping container skip and
// changes with nothing for the runtime.
func (rt *routing) updates(changes []isolation.ContainerChange, skip string) []*api.ContainerUpdate {
	var out []*api.ContainerUpdate
	var cpus setStrings
	for i := range changes {
		if changes[i].ID == skip {
			continue
		}
		if u := rt.update(&changes[i], &cpus); u != nil {
			out = append(out, u)
		}
	}
	return out
}

// direct is the set of fields written directly on a running container.
func (rt *routing) direct() isolation.Fields { return rt.running[routeDirect] }

// atStart is the set of fields written directly when a container starts.
func (rt *routing) atStart() isolation.Fields { return rt.create[routeAtStart] }

// verified is the set of adjustment fields StartContainer reads back (and
// writes when the runtime dropped them).
func (rt *routing) verified() isolation.Fields {
	var f isolation.Fields
	for i := range settings {
		if settings[i].verify {
			f |= settings[i].field
		}
	}
	return f & rt.create[routeAdjust]
}

// dropped returns the fields among f whose value m's cgroup does not hold.
func (p *Plugin) dropped(m *member, f isolation.Fields) isolation.Fields {
	var out isolation.Fields
	for i := range settings {
		s := &settings[i]
		if f&s.field == 0 || s.same == nil || m.cg == nil {
			continue
		}
		if ok, err := s.same(p, m); err == nil && !ok {
			out |= s.field
		}
	}
	return out
}

// write writes fields of m directly, row by row, and returns the fields
// that failed. A container that vanished is skipped (gone is true).
func (p *Plugin) write(m *member, fields isolation.Fields) (failed isolation.Fields, gone bool) {
	if m.cg == nil || fields == 0 {
		return 0, false
	}
	for i := range settings {
		s := &settings[i]
		if fields&s.field == 0 || s.write == nil {
			continue
		}
		err := s.write(p, m)
		switch {
		case err == nil:
			p.writeErrs.clear(m.id, s.field)
		case errors.Is(err, cgroup.ErrVanished):
			p.log.Info("container vanished before its settings were written; skipped", "container", m.id)
			return 0, true
		default:
			failed |= s.field
			if p.writeErrs.note(m.id, s.field, err) {
				p.log.Warn("direct write failed; retried next period", "container", m.id, "pool", m.pool, "setting", s.name, "err", err)
			}
		}
	}
	return failed, false
}

// drifted reads back every field Strata owns on m (those with a reader,
// routed to an update or a direct write; the slow ones only when slow is
// set) and returns those that no longer hold Strata's value. Unreadable
// fields (a file this kernel lacks) are not counted; gone reports that the
// cgroup vanished.
func (p *Plugin) drifted(m *member, rt *routing, slow, process bool) (f isolation.Fields, gone bool) {
	if m.cg == nil {
		return 0, false
	}
	owned := rt.running[routeUpdate] | rt.running[routeDirect]
	var out isolation.Fields
	for i := range settings {
		s := &settings[i]
		if owned&s.field == 0 || s.same == nil || s.process && !process || !s.process && s.slow && !slow {
			continue
		}
		ok, err := s.same(p, m)
		if errors.Is(err, cgroup.ErrVanished) {
			return 0, true // gone: nothing to repair
		}
		if err == nil && !ok {
			out |= s.field
		}
	}
	return out, false
}

// change is the change that re-asserts fields of a member's recorded
// settings.
func (m *member) change(fields isolation.Fields, reason string) isolation.ContainerChange {
	return isolation.ContainerChange{ID: m.id, Pool: m.pool, CPUs: m.cpus, Mems: m.mems, Settings: m.settings,
		Fields: fields, Reason: reason}
}

// setStrings memoizes CPUSet.String within one batch of updates: every
// member of a resized pool gets the same set, and formatting it (a sort)
// dominated the CreateContainer handler on large nodes. Changes of several
// pools interleave, so it keeps a few sets; Equals returns early on sets of
// different sizes, which different pools usually have.
type setStrings struct {
	sets []cpuset.CPUSet
	strs []string
}

func (m *setStrings) of(set cpuset.CPUSet) string {
	if m == nil {
		return set.String()
	}
	for i := range m.sets {
		if m.sets[i].Equals(set) {
			return m.strs[i]
		}
	}
	str := set.String()
	if len(m.sets) < 8 {
		m.sets, m.strs = append(m.sets, set), append(m.strs, str)
	}
	return str
}

// writeErrors remembers the last direct-write error per container and
// field, so a write that fails every period is logged once, and again
// only when the error changes.
type writeErrors struct {
	mu   sync.Mutex
	last map[string]map[isolation.Fields]string
}

// note records err and reports whether it is new for (id, f).
func (w *writeErrors) note(id string, f isolation.Fields, err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string]map[isolation.Fields]string{}
	}
	byField := w.last[id]
	if byField == nil {
		byField = map[isolation.Fields]string{}
		w.last[id] = byField
	}
	if byField[f] == err.Error() {
		return false
	}
	byField[f] = err.Error()
	return true
}

func (w *writeErrors) clear(id string, f isolation.Fields) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last[id], f)
}

func (w *writeErrors) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, id)
}
