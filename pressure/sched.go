package pressure

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/pressure/internal/schedbpf"
)

// ErrSchedNotSupported reports that the scheduler probe cannot run here:
// no BPF, no BTF, no BTF-typed tracepoints, or not allowed (EPERM). The
// wrapped cause says which. Callers fall back to the file Sampler.
var ErrSchedNotSupported = errors.New("scheduler probe not supported")

// SchedHistSlots is the number of run-queue delay histogram buckets: slot 0
// holds waits under 1 µs, slot i (1 ≤ i < SchedHistSlots-1) waits in
// [2^(i-1), 2^i) µs, the last slot everything from 2^(SchedHistSlots-2) µs
// (about 0.5 s) on.
const SchedHistSlots = len(schedbpf.SchedCgStats{}.Hist)

// Bounds of SchedProbeOptions.MaxCgroups.
const (
	DefaultSchedMaxCgroups = 4096
	MaxSchedMaxCgroups     = 65536
)

// SchedProbeOptions configures a SchedProbe.
type SchedProbeOptions struct {
	// MaxCgroups bounds the cgroups that can be registered (the BPF hash
	// map's size). Default DefaultSchedMaxCgroups, at most
	// MaxSchedMaxCgroups.
	MaxCgroups int
	// Clock stamps passes; default time.Now.
	Clock func() time.Time
}

// SchedProbe measures, per registered cgroup, CPU time, wake-ups and
// run-queue delay (the time from a task becoming runnable — woken or
// preempted — to it running) with BPF programs on the sched_switch,
// sched_wakeup and sched_wakeup_new tracepoints. Only cgroups registered
// with Add are counted. Sample reads every registered cgroup with a fixed
// number of batched map lookups, whatever their number, and allocates
// nothing once warm.
//
// A SchedProbe is safe for concurrent use. Close detaches the programs and
// frees the maps; nothing is pinned, so a process that exits (or restarts)
// leaves nothing behind and a new probe never adds to an old one.
type SchedProbe struct {
	mu     sync.Mutex
	opts   SchedProbeOptions
	coll   *ebpf.Collection
	links  []link.Link
	stats  *ebpf.Map
	oncpu  *ebpf.Map
	byID   map[string]*schedTracked
	byCG   map[uint64]*schedTracked
	list   []*schedTracked
	keys   []uint64
	vals   []schedbpf.SchedCgStats
	cpuKey []uint32
	cpus   []schedbpf.SchedOnCpu
	pass   SchedPass
	reader batchReader
	closed bool
}

type schedTracked struct {
	id       string
	cgroupID uint64
	seen     bool // found in this pass's batch
	cur      schedCounters
	havePrev bool
	prev     schedCounters
	prevTime time.Time
}

type schedCounters struct {
	cpu, wakeups, delay, delays uint64
	hist                        [SchedHistSlots]uint64
}

// SchedPass is the result of one Sample call, reused by the next.
type SchedPass struct {
	Time time.Time
	// Samples: one per registered cgroup, in Add order.
	Samples []SchedSample
	// Missing lists ids whose map entry was gone (removed behind the
	// probe's back); they stay registered and are re-inserted by Add.
	Missing []string
}

// SchedSample is one cgroup's reading. Cumulative values count from Add;
// per-period values are set when HasRates.
type SchedSample struct {
	ID       string
	CgroupID uint64
	Time     time.Time

	// Cumulative. CPUTime includes the running slice of a task still on
	// a CPU at the time of the pass.
	CPUTime       time.Duration
	Wakeups       uint64
	RunQueueDelay time.Duration // summed over all waits
	RunQueueWaits uint64

	// HasRates: the cgroup was read in an earlier pass.
	HasRates bool
	Interval time.Duration
	// CPUCores is CPU time per wall time.
	CPUCores float64
	// WakeupsPerSec and Waits (run-queue waits ended) in the interval.
	WakeupsPerSec float64
	Waits         uint64
	// Run-queue delay of the waits that ended in the interval: the mean
	// (exact) and quantiles interpolated within the log2 histogram's
	// buckets (so within a factor of two). Zero without waits.
	DelayMean, DelayP50, DelayP99 time.Duration
	// Hist is the interval's run-queue delay histogram (see
	// SchedHistSlots).
	Hist [SchedHistSlots]uint64
}

// NewSchedProbe loads and attaches the scheduler programs. It returns an
// error wrapping ErrSchedNotSupported when the kernel lacks BTF or BPF
// tracing, or refuses the load or the attach (EPERM without CAP_BPF and
// CAP_PERFMON, or CAP_SYS_ADMIN).
func NewSchedProbe(opts SchedProbeOptions) (*SchedProbe, error) {
	if opts.MaxCgroups == 0 {
		opts.MaxCgroups = DefaultSchedMaxCgroups
	}
	if opts.MaxCgroups < 1 || opts.MaxCgroups > MaxSchedMaxCgroups {
		return nil, fmt.Errorf("pressure: scheduler probe: MaxCgroups %d outside [1, %d]", opts.MaxCgroups, MaxSchedMaxCgroups)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if _, err := btf.LoadKernelSpec(); err != nil {
		return nil, fmt.Errorf("pressure: %w: no kernel BTF (/sys/kernel/btf/vmlinux): %w", ErrSchedNotSupported, err)
	}
	spec, err := schedbpf.LoadSched()
	if err != nil {
		return nil, fmt.Errorf("pressure: %w: %w", ErrSchedNotSupported, err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("pressure: scheduler probe: possible CPUs: %w", err)
	}
	spec.Maps[schedbpf.SchedMapStats].MaxEntries = uint32(opts.MaxCgroups)
	spec.Maps[schedbpf.SchedMapOncpu].MaxEntries = uint32(ncpu)
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones
	// ignore it and this is a no-op.
	_ = rlimit.RemoveMemlock()
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("pressure: %w: load: %w", ErrSchedNotSupported, err)
	}
	p := &SchedProbe{
		opts:   opts,
		coll:   coll,
		stats:  coll.Maps[schedbpf.SchedMapStats],
		oncpu:  coll.Maps[schedbpf.SchedMapOncpu],
		byID:   map[string]*schedTracked{},
		byCG:   map[uint64]*schedTracked{},
		keys:   make([]uint64, opts.MaxCgroups),
		vals:   make([]schedbpf.SchedCgStats, opts.MaxCgroups),
		cpuKey: make([]uint32, ncpu),
		cpus:   make([]schedbpf.SchedOnCpu, ncpu),
	}
	for _, name := range []string{schedbpf.SchedProgStrataWakeup, schedbpf.SchedProgStrataWakeupNew, schedbpf.SchedProgStrataSwitch} {
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[name]})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("pressure: %w: attach %s: %w", ErrSchedNotSupported, name, err)
		}
		p.links = append(p.links, l)
	}
	return p, nil
}

// ProgramIDs returns the kernel ids of the attached programs, for tests
// and diagnostics.
func (p *SchedProbe) ProgramIDs() []ebpf.ProgramID {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []ebpf.ProgramID
	for _, prog := range p.coll.Programs {
		if info, err := prog.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Add starts measuring cg under id. The cgroup is identified by its
// cgroup2 id (cgroup.Cgroup.ID), so on a hybrid host only tasks placed in
// its unified directory are counted, as runc places containers. Adding an
// id again replaces its cgroup; counters of a cgroup already registered
// continue. It fails when MaxCgroups are registered.
func (p *SchedProbe) Add(id string, cg *cgroup.Cgroup) error {
	cgid, err := cg.ID()
	if err != nil {
		return fmt.Errorf("pressure: scheduler probe: add %s: %w", id, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("pressure: scheduler probe: add %s: probe closed", id)
	}
	if old, ok := p.byID[id]; ok {
		if old.cgroupID == cgid {
			return nil
		}
		p.removeLocked(old)
	}
	if other, ok := p.byCG[cgid]; ok {
		return fmt.Errorf("pressure: scheduler probe: add %s: cgroup %s (id %d) is already measured as %s", id, cg.Path(), cgid, other.id)
	}
	if len(p.list) >= p.opts.MaxCgroups {
		return fmt.Errorf("pressure: scheduler probe: add %s: %d cgroups registered, the most SchedProbeOptions.MaxCgroups allows", id, len(p.list))
	}
	var zero schedbpf.SchedCgStats
	if err := p.stats.Update(cgid, &zero, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("pressure: scheduler probe: add %s: register cgroup id %d: %w", id, cgid, err)
	}
	t := &schedTracked{id: id, cgroupID: cgid}
	p.byID[id] = t
	p.byCG[cgid] = t
	p.list = append(p.list, t)
	return nil
}

// Remove stops measuring id and deletes its map entry. Unknown ids are
// ignored.
func (p *SchedProbe) Remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.byID[id]; ok {
		p.removeLocked(t)
	}
}

func (p *SchedProbe) removeLocked(t *schedTracked) {
	if !p.closed {
		_ = p.stats.Delete(t.cgroupID)
	}
	delete(p.byID, t.id)
	delete(p.byCG, t.cgroupID)
	for i, x := range p.list {
		if x == t {
			p.list = append(p.list[:i], p.list[i+1:]...)
			break
		}
	}
}

// Len is the number of registered cgroups.
func (p *SchedProbe) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.list)
}

// Close detaches the programs and frees the maps.
func (p *SchedProbe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	p.links = nil
	p.coll.Close()
	p.list, p.byID, p.byCG = nil, map[string]*schedTracked{}, map[uint64]*schedTracked{}
	return errors.Join(errs...)
}

// Sample reads every registered cgroup with two batched lookups, whatever
// their number: one of the cgroups' counters (the batch is the map's size)
// and one of what each CPU runs. The returned pass is reused by the next
// call.
func (p *SchedProbe) Sample() (*SchedPass, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := &p.pass
	ps.Samples = ps.Samples[:0]
	ps.Missing = ps.Missing[:0]
	if p.closed {
		return ps, errors.New("pressure: scheduler probe closed")
	}
	ps.Time = p.opts.Clock()
	for _, t := range p.list {
		t.seen = false
	}
	n, err := p.reader.read(p.stats.FD(), unsafe.Pointer(&p.keys[0]), unsafe.Pointer(&p.vals[0]),
		unsafe.Sizeof(p.keys[0]), unsafe.Sizeof(p.vals[0]), len(p.keys))
	if err != nil {
		return ps, fmt.Errorf("pressure: scheduler probe: read counters: %w", err)
	}
	for i := 0; i < n; i++ {
		if t := p.byCG[p.keys[i]]; t != nil {
			v := &p.vals[i]
			t.seen = true
			t.cur = schedCounters{cpu: v.CpuNs, wakeups: v.Wakeups, delay: v.DelayNs, delays: v.Delays, hist: v.Hist}
		}
	}
	// The slice of tasks still running: charged to their cgroup up to now.
	// Read after the counters, so a switch in between moves time from
	// this pass to the next, never counts it twice.
	n, err = p.reader.read(p.oncpu.FD(), unsafe.Pointer(&p.cpuKey[0]), unsafe.Pointer(&p.cpus[0]),
		unsafe.Sizeof(p.cpuKey[0]), unsafe.Sizeof(p.cpus[0]), len(p.cpus))
	if err != nil {
		return ps, fmt.Errorf("pressure: scheduler probe: read CPUs: %w", err)
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // bpf_ktime_get_ns's clock
	mono := uint64(ts.Nano())
	for i := 0; i < n; i++ {
		c := &p.cpus[i]
		if c.CgroupId == 0 || c.SinceNs == 0 || mono <= c.SinceNs {
			continue
		}
		if t := p.byCG[c.CgroupId]; t != nil && t.seen {
			t.cur.cpu += mono - c.SinceNs
		}
	}
	for _, t := range p.list {
		if !t.seen {
			ps.Missing = append(ps.Missing, t.id)
			continue
		}
		ps.Samples = append(ps.Samples, SchedSample{})
		t.fill(&ps.Samples[len(ps.Samples)-1], ps.Time)
	}
	return ps, nil
}

func (t *schedTracked) fill(s *SchedSample, now time.Time) {
	s.ID, s.CgroupID, s.Time = t.id, t.cgroupID, now
	c := &t.cur
	if t.havePrev && c.cpu < t.prev.cpu {
		// The in-flight slice of the previous pass may exceed what was
		// charged by now only if the clocks disagree; never go back.
		c.cpu = t.prev.cpu
	}
	s.CPUTime = time.Duration(c.cpu)
	s.Wakeups = c.wakeups
	s.RunQueueDelay = time.Duration(c.delay)
	s.RunQueueWaits = c.delays
	if t.havePrev {
		if dt := now.Sub(t.prevTime); dt > 0 {
			s.HasRates = true
			s.Interval = dt
			s.CPUCores = float64(c.cpu-t.prev.cpu) / float64(dt)
			s.WakeupsPerSec = float64(c.wakeups-t.prev.wakeups) / dt.Seconds()
			s.Waits = c.delays - t.prev.delays
			for i := range s.Hist {
				s.Hist[i] = c.hist[i] - t.prev.hist[i]
			}
			if s.Waits > 0 {
				s.DelayMean = time.Duration((c.delay - t.prev.delay) / s.Waits)
				s.DelayP50 = HistQuantile(&s.Hist, 0.50)
				s.DelayP99 = HistQuantile(&s.Hist, 0.99)
			}
		}
	}
	t.havePrev = true
	t.prev = *c
	t.prevTime = now
}

// HistQuantile estimates quantile q (0..1) of a run-queue delay histogram
// (see SchedHistSlots), interpolating linearly within the bucket the
// quantile falls in. An empty histogram gives 0.
func HistQuantile(h *[SchedHistSlots]uint64, q float64) time.Duration {
	var total uint64
	for _, c := range h {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank || i == len(h)-1 {
			lo, hi := histBounds(i)
			frac := math.Min(math.Max((rank-cum)/float64(c), 0), 1)
			return time.Duration(lo + frac*(hi-lo))
		}
		cum += float64(c)
	}
	return 0
}

// histBounds is bucket i's range in nanoseconds.
func histBounds(i int) (lo, hi float64) {
	if i == 0 {
		return 0, 1000
	}
	return 1000 * math.Ldexp(1, i-1), 1000 * math.Ldexp(1, i)
}
