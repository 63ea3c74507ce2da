package iolimit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	occgroups "github.com/opencontainers/cgroups"

	"github.com/strata-nri/strata/cgroup"
)

// Weight bounds, on the scale of OCI LinuxBlockIO weights and goresctrl
// blockio classes (10..1000, default 100). The layer writes it to bfq's
// weight as is and to v2 io.weight converted as runc converts it, so a
// weight Strata writes matches one the runtime wrote for the same class.
const (
	MinWeight     = 10
	MaxWeight     = 1000
	DefaultWeight = 100
)

// MaxRate bounds every limit (bytes or IOs per second): 1 PiB/s is beyond any
// device and keeps arithmetic on shares of capacity far from overflow.
const MaxRate = 1 << 50

// Limit is one device's throttling: bytes and IOs per second, zero for no
// limit.
type Limit = cgroup.IOLimit

// DeviceWeight overrides the weight on one device.
type DeviceWeight struct {
	Device cgroup.DevNum
	Weight uint64
}

// Settings is a cgroup's block IO settings. Apply makes the cgroup match
// them: devices it lists get exactly these limits and weights, devices it
// does not list lose theirs.
type Settings struct {
	// Weight is the default weight for every device (MinWeight..MaxWeight);
	// 0 leaves the cgroup's default weight as it is (the runtime's).
	Weight uint64
	// DeviceWeights override Weight per device.
	DeviceWeights []DeviceWeight
	// Limits throttle devices.
	Limits []Limit
}

// Limiter applies Settings to cgroups and reads them back. Devices are
// validated against sysfs through its Resolver.
type Limiter struct {
	res *Resolver
}

// New returns a Limiter over the given roots.
func New(opts Options) *Limiter { return &Limiter{res: NewResolver(opts)} }

// Resolver is the Limiter's device resolver.
func (l *Limiter) Resolver() *Resolver { return l.res }

// Report says what Apply could not make take effect. The settings were
// written anyway (a scheduler may be switched later), except per-device bfq
// weights, which the kernel refuses on a device not under bfq.
type Report struct {
	// Ineffective lists, per device named in the settings' weights, why a
	// weight does not act there (errors wrapping ErrWeightIneffective).
	Ineffective []error
}

// Validate checks s against the kernel's ranges and sysfs without writing
// anything. Every problem is reported, each naming the field and value.
func (l *Limiter) Validate(s Settings) error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("iolimit: "+format+": %w", append(a, ErrInvalid)...))
	}
	if s.Weight != 0 && (s.Weight < MinWeight || s.Weight > MaxWeight) {
		bad("weight %d out of range [%d, %d]", s.Weight, MinWeight, MaxWeight)
	}
	device := func(field string, d cgroup.DevNum) {
		dev, err := l.res.ByNumber(d)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("iolimit: %s: %w", field, err))
		case dev.Partition != "":
			bad("%s: %s is partition %s of %s; the kernel throttles and weighs whole disks, use %s", field, d, dev.Partition, dev.Name, dev.Num)
		}
	}
	seen := map[cgroup.DevNum]bool{}
	for i, w := range s.DeviceWeights {
		f := fmt.Sprintf("deviceWeights[%d]", i)
		if w.Weight < MinWeight || w.Weight > MaxWeight {
			bad("%s: weight %d for %s out of range [%d, %d]", f, w.Weight, w.Device, MinWeight, MaxWeight)
		}
		if seen[w.Device] {
			bad("%s: device %s listed twice", f, w.Device)
		}
		seen[w.Device] = true
		device(f, w.Device)
	}
	clear(seen)
	for i, lim := range s.Limits {
		f := fmt.Sprintf("limits[%d]", i)
		for _, r := range []struct {
			name string
			v    uint64
		}{{"readBPS", lim.ReadBPS}, {"writeBPS", lim.WriteBPS}, {"readIOPS", lim.ReadIOPS}, {"writeIOPS", lim.WriteIOPS}} {
			if r.v > MaxRate {
				bad("%s.%s: %d for %s above the maximum %d", f, r.name, r.v, lim.Device, uint64(MaxRate))
			}
		}
		if seen[lim.Device] {
			bad("%s: device %s listed twice", f, lim.Device)
		}
		seen[lim.Device] = true
		device(f, lim.Device)
	}
	return errors.Join(errs...)
}

// Apply validates s and, only if it is valid, writes it to cg: limits
// (v1 blkio.throttle.*, v2 io.max), the default weight to every weight knob
// the cgroup has (bfq's, and io.weight or blkio.weight where present), and
// per-device weights where the device's scheduler accepts them. If a write
// fails the cgroup gets back what it had, so nothing is left half-applied.
func (l *Limiter) Apply(cg *cgroup.Cgroup, s Settings) (Report, error) {
	var rep Report
	if err := l.Validate(s); err != nil {
		return rep, fmt.Errorf("cgroup %s: %w", cg.Path(), err)
	}
	before, err := l.Read(cg)
	if err != nil {
		return rep, err
	}
	rep, err = l.write(cg, s, before)
	if err != nil {
		if rerr := l.restore(cg, before); rerr != nil {
			return rep, fmt.Errorf("cgroup %s: %w (and restoring the earlier settings failed: %v)", cg.Path(), err, rerr)
		}
		return rep, fmt.Errorf("cgroup %s: %w", cg.Path(), err)
	}
	return rep, nil
}

func (l *Limiter) write(cg *cgroup.Cgroup, s Settings, before State) (Report, error) {
	var rep Report
	mode := cg.Hierarchy().Mode()
	want := map[cgroup.DevNum]bool{}
	for _, lim := range s.Limits {
		want[lim.Device] = true
		if err := cg.SetIOLimit(lim); err != nil {
			return rep, err
		}
	}
	for _, old := range before.Limits {
		if !want[old.Device] {
			if err := cg.SetIOLimit(cgroup.IOLimit{Device: old.Device}); err != nil {
				return rep, err
			}
		}
	}
	knobs := before.knobs()
	if s.Weight != 0 && len(knobs) == 0 {
		rep.Ineffective = append(rep.Ineffective, fmt.Errorf("iolimit: weight %d on cgroup %s (%s): %w: neither %s nor %s exists", s.Weight, cg.Path(), mode,
			ErrWeightIneffective, cgroup.IOWeightFile(mode, cgroup.IOWeightBFQ), cgroup.IOWeightFile(mode, cgroup.IOWeightCost)))
	}
	if s.Weight != 0 {
		for _, k := range knobs {
			if err := cg.SetIOWeight(k, toKnob(mode, k, s.Weight)); err != nil {
				return rep, err
			}
		}
	}
	for _, w := range s.DeviceWeights {
		dev, err := l.res.ByNumber(w.Device)
		if err != nil {
			return rep, err
		}
		knob, why := l.WeightEffect(cg, dev)
		if why != nil {
			rep.Ineffective = append(rep.Ineffective, why)
		}
		for _, k := range knobs {
			// The kernel refuses a device weight (EOPNOTSUPP) where the
			// knob's policy is not active on the device: bfq's unless bfq
			// is its scheduler, iocost's (v2 io.weight) unless iocost is
			// enabled for it. The weight is reported ineffective there.
			if k == cgroup.IOWeightBFQ && dev.Scheduler != "bfq" && knob != k {
				continue
			}
			if k == cgroup.IOWeightCost && mode == cgroup.V2 && knob != k {
				continue
			}
			if err := cg.SetIODeviceWeight(k, w.Device, toKnob(mode, k, w.Weight)); err != nil {
				return rep, err
			}
		}
	}
	for _, k := range knobs {
		for _, old := range before.weights(k).Devices {
			if !slices.ContainsFunc(s.DeviceWeights, func(w DeviceWeight) bool { return w.Device == old.Device }) {
				if err := cg.SetIODeviceWeight(k, old.Device, 0); err != nil {
					return rep, err
				}
			}
		}
	}
	return rep, nil
}

// restore writes back a State read before a failed Apply, best effort.
func (l *Limiter) restore(cg *cgroup.Cgroup, st State) error {
	var errs []error
	cur, err := cg.IOLimits()
	if err != nil {
		return err
	}
	for _, c := range cur {
		if !slices.ContainsFunc(st.Limits, func(o cgroup.IOLimit) bool { return o.Device == c.Device }) {
			errs = append(errs, cg.SetIOLimit(cgroup.IOLimit{Device: c.Device}))
		}
	}
	for _, o := range st.Limits {
		errs = append(errs, cg.SetIOLimit(o))
	}
	for _, k := range st.knobs() {
		w := st.weights(k)
		if w.Default != 0 {
			errs = append(errs, cg.SetIOWeight(k, w.Default))
		}
		for _, d := range w.Devices {
			errs = append(errs, cg.SetIODeviceWeight(k, d.Device, d.Weight))
		}
	}
	return errors.Join(errs...)
}

// toKnob converts a weight on the OCI scale to knob k's scale: bfq takes it
// as is, v2 io.weight as runc converts it (10..1000 → 1..10000).
func toKnob(m cgroup.Mode, k cgroup.IOWeightKnob, w uint64) uint64 {
	if k == cgroup.IOWeightCost && m == cgroup.V2 {
		return occgroups.ConvertBlkIOToIOWeightValue(uint16(w))
	}
	return w
}

// State is what a cgroup's block IO files say now.
type State struct {
	// Limits are the throttled devices.
	Limits []cgroup.IOLimit
	// BFQ is bfq's weights, nil where the cgroup has no bfq weight file.
	BFQ *cgroup.IOWeights
	// Cost is io.weight (v2) or blkio.weight (v1 with cfq), nil where
	// absent, in the knob's own scale.
	Cost *cgroup.IOWeights
}

func (st State) knobs() []cgroup.IOWeightKnob {
	var out []cgroup.IOWeightKnob
	if st.BFQ != nil {
		out = append(out, cgroup.IOWeightBFQ)
	}
	if st.Cost != nil {
		out = append(out, cgroup.IOWeightCost)
	}
	return out
}

func (st State) weights(k cgroup.IOWeightKnob) cgroup.IOWeights {
	var w *cgroup.IOWeights
	if k == cgroup.IOWeightBFQ {
		w = st.BFQ
	} else {
		w = st.Cost
	}
	if w == nil {
		return cgroup.IOWeights{}
	}
	return *w
}

// Read returns the cgroup's effective block IO settings as its files show
// them.
func (l *Limiter) Read(cg *cgroup.Cgroup) (State, error) {
	var st State
	var err error
	if st.Limits, err = cg.IOLimits(); err != nil {
		return st, fmt.Errorf("cgroup %s: %w", cg.Path(), err)
	}
	for _, k := range []cgroup.IOWeightKnob{cgroup.IOWeightBFQ, cgroup.IOWeightCost} {
		if !cg.HasIOWeight(k) {
			continue
		}
		w, err := cg.IOWeight(k)
		if err != nil {
			return st, fmt.Errorf("cgroup %s: %w", cg.Path(), err)
		}
		if k == cgroup.IOWeightBFQ {
			st.BFQ = &w
		} else {
			st.Cost = &w
		}
	}
	return st, nil
}

// WeightEffect says which knob makes a weight on cg act on dev, or, wrapping
// ErrWeightIneffective, why none does:
//
//   - cgroup v1: blkio.weight (cfq) is absent on Linux ≥ 5.0;
//     blkio.bfq.weight needs the bfq scheduler on the device;
//   - cgroup v2: io.weight needs iocost enabled for the device (the root's
//     io.cost.qos) or takes no effect; io.bfq.weight needs bfq.
func (l *Limiter) WeightEffect(cg *cgroup.Cgroup, dev Device) (cgroup.IOWeightKnob, error) {
	h := cg.Hierarchy()
	mode := h.Mode()
	hasBFQ := cg.HasIOWeight(cgroup.IOWeightBFQ)
	hasCost := cg.HasIOWeight(cgroup.IOWeightCost)
	bfqFile := cgroup.IOWeightFile(mode, cgroup.IOWeightBFQ)
	costFile := cgroup.IOWeightFile(mode, cgroup.IOWeightCost)
	if dev.Scheduler == "bfq" && hasBFQ {
		return cgroup.IOWeightBFQ, nil
	}
	var why []string
	if mode == cgroup.V2 {
		if hasCost {
			on, err := h.IOCostEnabled(dev.Num)
			if on {
				return cgroup.IOWeightCost, nil
			}
			if err != nil {
				why = append(why, fmt.Sprintf("%s needs iocost, and the root's iocost QoS settings are unreadable (%v)", costFile, err))
			} else {
				why = append(why, fmt.Sprintf("%s needs iocost enabled for %s in the root's iocost QoS settings (it is not)", costFile, dev.Num))
			}
		} else {
			why = append(why, costFile+" is absent (kernel without iocost)")
		}
	} else {
		if hasCost && dev.Scheduler == "cfq" {
			return cgroup.IOWeightCost, nil
		}
		if hasCost {
			why = append(why, fmt.Sprintf("%s needs the cfq scheduler (the device uses %s)", costFile, dev.Scheduler))
		} else {
			why = append(why, costFile+" is absent (cfq was removed in Linux 5.0)")
		}
	}
	switch {
	case dev.Scheduler == "bfq":
		why = append(why, fmt.Sprintf("%s is absent in this cgroup (the root cgroup has none)", bfqFile))
	case !hasBFQ:
		why = append(why, fmt.Sprintf("%s is absent (the bfq scheduler is not built or loaded)", bfqFile))
	case slices.Contains(dev.Schedulers, "bfq"):
		why = append(why, fmt.Sprintf("%s needs the bfq scheduler, the device uses %s (select it: echo bfq > /sys/block/%s/queue/scheduler)", bfqFile, dev.Scheduler, dev.Name))
	default:
		why = append(why, fmt.Sprintf("%s needs the bfq scheduler, which the device does not offer (it offers %v)", bfqFile, dev.Schedulers))
	}
	return 0, fmt.Errorf("iolimit: weight on %s in cgroup %s (%s): %w: %s", dev, cg.Path(), mode, ErrWeightIneffective, strings.Join(why, "; "))
}
