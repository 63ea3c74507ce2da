package pressure

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
)

// SamplerOptions configures a Sampler.
type SamplerOptions struct {
	// PSI also samples each cgroup's cpu and memory PSI files where the
	// hierarchy has them: always on V2, on Hybrid when the cgroup has a
	// directory in the cgroup2 tree (see cgroup.Cgroup.PressureFile). A
	// missing PSI file leaves HasPSI false; it is not an error.
	PSI bool
	// Clock stamps each cgroup's reading; default time.Now. Each cgroup is
	// stamped when its CPU counter is read, not once per pass, so that a
	// pass over hundreds of cgroups does not skew the rates of the last
	// ones. Tests pass a fake clock.
	Clock func() time.Time
	// PSIRetry is how often a cgroup without a PSI file is checked again
	// (a runtime may create the cgroup2 directory after the cgroup was
	// added). Default 10 s. Opening a file allocates, so this is kept rare.
	PSIRetry time.Duration
	// MemoryEvery reads the memory values every MemoryEvery-th pass (and
	// on a cgroup's first); between reads a sample repeats the last values
	// and MemoryTime says when they were read. Default 1, every pass.
	// Memory sizes move more slowly than CPU rates, and memory.stat is the
	// expensive file for the kernel to produce: measured on Linux 6.18 for
	// a leaf cgroup, memory.stat 7.9 µs, cpu.stat 1.4 µs, cpuacct.usage
	// 0.9 µs, cpu.pressure 2.0 µs per read.
	MemoryEvery int
}

// samplerCounters are the counters every pass reads.
var samplerCounters = []cgroup.Counter{
	cgroup.CounterCPUUsage, cgroup.CounterCPUPeriods, cgroup.CounterCPUThrottledPeriods, cgroup.CounterCPUThrottledTime,
	cgroup.CounterMemoryAnon, cgroup.CounterMemoryFile, cgroup.CounterMemoryActiveFile, cgroup.CounterMemoryInactiveFile,
}

// cumulative counters must not go backwards; going back means the cgroup was
// recreated under the same path, so no rate is computed for that interval.
var cumulativeCounters = []cgroup.Counter{
	cgroup.CounterCPUUsage, cgroup.CounterCPUPeriods, cgroup.CounterCPUThrottledPeriods, cgroup.CounterCPUThrottledTime,
}

// Sampler measures many cgroups' CPU, throttling, memory and (optionally)
// PSI, and turns cumulative counters into rates between passes. It keeps
// every file open and reads it with pread(2) into one reused buffer, so a
// pass over cgroups that were already sampled allocates nothing.
//
// A Sampler is safe for concurrent use: Add and Remove may be called from
// other goroutines while a pass runs. Close releases its files.
type Sampler struct {
	mu    sync.Mutex
	h     *cgroup.Hierarchy
	opts  SamplerOptions
	byID  map[string]*tracked
	list  []*tracked // Add order, so passes list cgroups stably
	buf   []byte
	pass  Pass
	drop  []int
	clock func() time.Time
}

type openFile struct {
	src    cgroup.CounterSource
	fd     int
	memory bool // holds memory gauges, read every MemoryEvery passes
}

func isMemoryCounter(k cgroup.Counter) bool {
	switch k {
	case cgroup.CounterMemoryAnon, cgroup.CounterMemoryFile, cgroup.CounterMemoryActiveFile, cgroup.CounterMemoryInactiveFile:
		return true
	}
	return false
}

type psiFile struct {
	path string
	fd   int // -1 while the file is absent
}

type tracked struct {
	id       string
	cg       *cgroup.Cgroup
	files    []openFile
	psi      [2]psiFile // cpu, memory
	psiTried time.Time

	havePrev bool
	prevTime time.Time
	memTime  time.Time // when the memory values in prev were read
	sinceMem int       // passes since memory was last read
	prev     [cgroup.NumCounters]uint64
	prevPSI  [2]PSIStats
	prevHas  bool // prevPSI valid
}

// Pass is the result of one Sample call. The Sampler reuses it: its slices
// are valid until the next Sample.
type Pass struct {
	// Time is when the pass started.
	Time time.Time
	// Samples holds one entry per cgroup read successfully, in Add order.
	Samples []CgroupSample
	// Vanished lists the ids of cgroups whose directory disappeared; they
	// were skipped and removed from the Sampler.
	Vanished []string
	// Errors lists cgroups that could not be read for another reason (a
	// malformed file names the file and line); they stay in the Sampler.
	Errors []SampleError
}

// SampleError is one cgroup's failure in a pass.
type SampleError struct {
	ID  string
	Err error
}

func (e SampleError) Error() string { return fmt.Sprintf("cgroup %s: %v", e.ID, e.Err) }
func (e SampleError) Unwrap() error { return e.Err }

// CgroupSample is one cgroup's reading. Cumulative values are always set;
// rates only when HasRates (the cgroup was read in an earlier pass and no
// counter went backwards).
type CgroupSample struct {
	ID   string
	Time time.Time

	// Cumulative counters as the kernel reports them.
	CPUUsage         time.Duration
	Periods          uint64 // CFS bandwidth periods with runnable tasks
	ThrottledPeriods uint64
	ThrottledTime    time.Duration

	// Memory gauges in bytes (hierarchical, see cgroup.MemoryStat), as
	// read at MemoryTime (see SamplerOptions.MemoryEvery).
	Anon, File, ActiveFile, InactiveFile uint64
	MemoryTime                           time.Time

	// HasRates reports whether the rates below are valid.
	HasRates bool
	// Reset reports that a cumulative counter went backwards since the
	// previous pass (the cgroup was recreated at the same path); no rates
	// are given this pass and the next pass measures from here.
	Reset bool
	// Interval is the time between this reading and the previous one.
	Interval time.Duration
	// CPUCores is CPU time used per wall time: 1.5 means one and a half
	// CPUs busy on average.
	CPUCores float64
	// ThrottledFraction is the share of CFS periods in the interval in
	// which the quota ran out (0..1; 0 when no period elapsed).
	ThrottledFraction float64
	// ThrottledRate is throttled time per wall time. The kernel sums it
	// over the CPUs where the group was throttled, so it can exceed 1.
	ThrottledRate float64

	// HasPSI reports whether the cgroup has PSI files (see
	// SamplerOptions.PSI).
	HasPSI                      bool
	CPUPressure, MemoryPressure PSIStats
	// HasStallRates reports whether CPUStall and MemoryStall are valid:
	// HasRates, and PSI was read in this pass and the previous one.
	HasStallRates         bool
	CPUStall, MemoryStall StallRates
}

// CPUInterference estimates the share of wall time (0..1) the cgroup's
// tasks were runnable, not throttled, and still not running: they waited
// for CPUs that neighbours held. ok is false without stall rates.
//
// A cgroup's CPU PSI "some" counts every moment a task was runnable but not
// running, and that includes the time the group sat throttled by its own
// CFS quota. The throttled-time rate is taken out. Measured on Linux 6.18
// with a spinning task under a 20 ms / 100 ms quota: given the highest CPU
// weight, stall 0.80 and throttled time 0.78 s per s (interference ≈ 0);
// at default weight on a loaded machine, stall still 0.80 but throttled
// time 0.48–0.66 s per s — the rest was spent waiting, unthrottled, for
// CPUs held by neighbours, which is what this reports.
//
// The kernel sums throttled time over the CPUs where the group was
// throttled, so a group throttled on several CPUs at once reports more than
// wall time; it is capped at 1, which makes the result a lower bound for
// multi-threaded groups. A caller tells a quota-bound container (high
// ThrottledFraction, interference near 0) from one starved by neighbours
// (no throttling, interference near its stall).
func (s *CgroupSample) CPUInterference() (share float64, ok bool) {
	if !s.HasStallRates {
		return 0, false
	}
	return max(s.CPUStall.Some-min(s.ThrottledRate, 1), 0), true
}

// NewSampler returns a Sampler reading cgroups of h.
func NewSampler(h *cgroup.Hierarchy, opts SamplerOptions) *Sampler {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.PSIRetry <= 0 {
		opts.PSIRetry = 10 * time.Second
	}
	if opts.MemoryEvery <= 0 {
		opts.MemoryEvery = 1
	}
	return &Sampler{h: h, opts: opts, byID: map[string]*tracked{}, buf: make([]byte, 8192), clock: opts.Clock}
}

// Add starts sampling cg under id (a container id, say), opening its files.
// Adding an id again replaces the earlier cgroup. It returns
// cgroup.ErrVanished (wrapped) when the cgroup does not exist,
// cgroup.ErrNoController when the hierarchy lacks the cpu, cpuacct or
// memory controller, and cgroup.ErrNotSupported when the cgroup exists but
// lacks a counter file (on v2, a controller not enabled for it).
func (s *Sampler) Add(id string, cg *cgroup.Cgroup) error {
	srcs, err := cg.CounterSources(samplerCounters...)
	if err != nil {
		return fmt.Errorf("pressure: add %s: %w", id, err)
	}
	t := &tracked{id: id, cg: cg, psi: [2]psiFile{{fd: -1}, {fd: -1}}}
	for _, src := range srcs {
		fd, err := openRead(src.Path)
		if err != nil {
			t.close()
			if errors.Is(err, unix.ENOENT) {
				if cg.Exists() {
					// A live cgroup without the file: on v2 the
					// controller is not enabled for it.
					return fmt.Errorf("pressure: add %s: open %s: %w", id, src.Path, cgroup.ErrNotSupported)
				}
				return fmt.Errorf("pressure: add %s: open %s: %w", id, src.Path, cgroup.ErrVanished)
			}
			return fmt.Errorf("pressure: add %s: open %s: %w", id, src.Path, err)
		}
		t.files = append(t.files, openFile{src: src, fd: fd, memory: isMemoryCounter(src.Fields[0].Counter)})
	}
	if s.opts.PSI {
		for i, r := range []cgroup.PSIResource{cgroup.PSICPU, cgroup.PSIMemory} {
			p, err := cg.PressureFile(r)
			if err != nil {
				break // no cgroup2 mount: no per-cgroup PSI on this host
			}
			t.psi[i].path = p
		}
		t.openPSI(s.clock())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byID[id]; ok {
		s.removeLocked(old)
	}
	s.byID[id] = t
	s.list = append(s.list, t)
	return nil
}

// Remove stops sampling id and closes its files. Removing an unknown id is
// not an error.
func (s *Sampler) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.byID[id]; ok {
		s.removeLocked(t)
	}
}

// Len is the number of cgroups being sampled.
func (s *Sampler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
}

// Close removes every cgroup and closes all files.
func (s *Sampler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.list {
		t.close()
	}
	s.list = nil
	s.byID = map[string]*tracked{}
	return nil
}

func (s *Sampler) removeLocked(t *tracked) {
	t.close()
	delete(s.byID, t.id)
	for i, x := range s.list {
		if x == t {
			s.list = append(s.list[:i], s.list[i+1:]...)
			break
		}
	}
}

// Sample reads every cgroup once and returns the pass. The returned Pass
// and its slices are reused by the next call.
func (s *Sampler) Sample() *Pass {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.pass
	p.Time = s.clock()
	p.Samples = p.Samples[:0]
	p.Vanished = p.Vanished[:0]
	p.Errors = p.Errors[:0]
	s.drop = s.drop[:0]
	for i, t := range s.list {
		p.Samples = append(p.Samples, CgroupSample{})
		cs := &p.Samples[len(p.Samples)-1]
		err := s.sampleOne(t, cs)
		switch {
		case err == nil:
		case errors.Is(err, cgroup.ErrVanished):
			p.Samples = p.Samples[:len(p.Samples)-1]
			p.Vanished = append(p.Vanished, t.id)
			s.drop = append(s.drop, i)
		default:
			p.Samples = p.Samples[:len(p.Samples)-1]
			p.Errors = append(p.Errors, SampleError{ID: t.id, Err: err})
		}
	}
	for j := len(s.drop) - 1; j >= 0; j-- {
		s.removeLocked(s.list[s.drop[j]])
	}
	return p
}

func (s *Sampler) sampleOne(t *tracked, cs *CgroupSample) error {
	var cur [cgroup.NumCounters]uint64
	var stamp time.Time
	readMemory := !t.havePrev || t.sinceMem+1 >= s.opts.MemoryEvery
	for i := range t.files {
		f := &t.files[i]
		if f.memory && !readMemory {
			for _, fl := range f.src.Fields {
				cur[fl.Counter] = t.prev[fl.Counter]
			}
			continue
		}
		b, err := s.read(&f.fd, f.src.Path)
		if err != nil {
			return err
		}
		if stamp.IsZero() {
			stamp = s.clock()
		}
		if err := f.src.Parse(b, &cur); err != nil {
			return err
		}
	}
	memTime := t.memTime
	if readMemory {
		memTime = stamp
	}
	cs.ID = t.id
	cs.Time = stamp
	cs.MemoryTime = memTime
	cs.CPUUsage = time.Duration(cur[cgroup.CounterCPUUsage])
	cs.Periods = cur[cgroup.CounterCPUPeriods]
	cs.ThrottledPeriods = cur[cgroup.CounterCPUThrottledPeriods]
	cs.ThrottledTime = time.Duration(cur[cgroup.CounterCPUThrottledTime])
	cs.Anon = cur[cgroup.CounterMemoryAnon]
	cs.File = cur[cgroup.CounterMemoryFile]
	cs.ActiveFile = cur[cgroup.CounterMemoryActiveFile]
	cs.InactiveFile = cur[cgroup.CounterMemoryInactiveFile]

	var psi [2]PSIStats
	if s.opts.PSI {
		if t.psi[0].fd < 0 && t.psi[0].path != "" && stamp.Sub(t.psiTried) >= s.opts.PSIRetry {
			t.openPSI(stamp)
		}
		cs.HasPSI = t.psi[0].fd >= 0 && t.psi[1].fd >= 0
		for i := range t.psi {
			if !cs.HasPSI {
				break
			}
			b, err := s.read(&t.psi[i].fd, t.psi[i].path)
			if err != nil {
				if errors.Is(err, cgroup.ErrVanished) && t.cg.Exists() {
					// The cgroup2 directory went away but the cgroup did
					// not: PSI is gone, the counters are still good.
					t.closePSI()
					cs.HasPSI = false
					break
				}
				return err
			}
			if err := parsePSI(t.psi[i].path, b, &psi[i]); err != nil {
				return err
			}
		}
		cs.CPUPressure, cs.MemoryPressure = psi[0], psi[1]
	}

	if t.havePrev {
		for _, k := range cumulativeCounters {
			if cur[k] < t.prev[k] {
				cs.Reset = true
			}
		}
		if cs.HasPSI && t.prevHas && (psiWentBack(&t.prevPSI[0], &psi[0]) || psiWentBack(&t.prevPSI[1], &psi[1])) {
			cs.Reset = true
		}
		dt := stamp.Sub(t.prevTime)
		if !cs.Reset && dt > 0 {
			cs.HasRates = true
			cs.Interval = dt
			cs.CPUCores = float64(cur[cgroup.CounterCPUUsage]-t.prev[cgroup.CounterCPUUsage]) / float64(dt)
			cs.ThrottledRate = float64(cur[cgroup.CounterCPUThrottledTime]-t.prev[cgroup.CounterCPUThrottledTime]) / float64(dt)
			if dp := cur[cgroup.CounterCPUPeriods] - t.prev[cgroup.CounterCPUPeriods]; dp > 0 {
				cs.ThrottledFraction = float64(cur[cgroup.CounterCPUThrottledPeriods]-t.prev[cgroup.CounterCPUThrottledPeriods]) / float64(dp)
			}
			if cs.HasPSI && t.prevHas {
				cs.HasStallRates = true
				cs.CPUStall = stallRates(&t.prevPSI[0], &psi[0], dt)
				cs.MemoryStall = stallRates(&t.prevPSI[1], &psi[1], dt)
			}
		}
	}
	t.havePrev = true
	t.prevTime = stamp
	t.memTime = memTime
	if readMemory {
		t.sinceMem = 0
	} else {
		t.sinceMem++
	}
	t.prev = cur
	t.prevPSI = psi
	t.prevHas = cs.HasPSI
	return nil
}

// read re-reads an open file from offset 0 into the shared buffer, growing
// it when a file does not fit. A file of a removed cgroup answers ENODEV
// (cgroupfs) or is gone (ENOENT); it is reopened once, so a cgroup recreated
// at the same path is followed (its counters restart, which shows as Reset),
// and reported as vanished when the reopen finds nothing.
func (s *Sampler) read(fd *int, path string) ([]byte, error) {
	reopened := false
	for {
		n, err := unix.Pread(*fd, s.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENODEV || err == unix.ENOENT || err == unix.EBADF {
			if reopened {
				return nil, fmt.Errorf("read %s: %w", path, cgroup.ErrVanished)
			}
			reopened = true
			nfd, oerr := openRead(path)
			if oerr != nil {
				if errors.Is(oerr, unix.ENOENT) || errors.Is(oerr, unix.ENODEV) {
					return nil, fmt.Errorf("read %s: %w", path, cgroup.ErrVanished)
				}
				return nil, fmt.Errorf("reopen %s: %w", path, oerr)
			}
			if *fd >= 0 {
				unix.Close(*fd)
			}
			*fd = nfd
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if n == len(s.buf) {
			// Might be truncated: grow and read again. Happens once per
			// Sampler at most for real cgroup files.
			s.buf = make([]byte, 2*len(s.buf))
			continue
		}
		return s.buf[:n], nil
	}
}

func openRead(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func (t *tracked) openPSI(now time.Time) {
	t.psiTried = now
	if t.psi[0].path == "" {
		return
	}
	t.closePSI()
	for i := range t.psi {
		fd, err := openRead(t.psi[i].path)
		if err != nil {
			t.closePSI()
			return
		}
		t.psi[i].fd = fd
	}
}

func (t *tracked) closePSI() {
	for i := range t.psi {
		if t.psi[i].fd >= 0 {
			unix.Close(t.psi[i].fd)
			t.psi[i].fd = -1
		}
	}
}

func (t *tracked) close() {
	for i := range t.files {
		if t.files[i].fd >= 0 {
			unix.Close(t.files[i].fd)
			t.files[i].fd = -1
		}
	}
	t.closePSI()
}
