package pressure

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// NodeSampler measures the whole node from procfs: CPU time from /proc/stat,
// memory from /proc/meminfo and PSI from /proc/pressure, parsed by
// github.com/prometheus/procfs. Unlike Sampler it allocates on every call
// (procfs parses into maps and pointers); it reads three to five files once
// per pass, which is noise next to a pass over the cgroups.
type NodeSampler struct {
	mu       sync.Mutex
	fs       procfs.FS
	procRoot string
	clock    func() time.Time

	have     bool
	prevTime time.Time
	prevBusy float64 // seconds
	prevWait float64
	prevPSI  [3]PSIStats
	prevHas  [3]bool
}

// NodeSamplerOptions configures a NodeSampler.
type NodeSamplerOptions struct {
	// ProcRoot is the procfs mount; default "/proc".
	ProcRoot string
	// Clock stamps samples; default time.Now.
	Clock func() time.Time
}

// NodeSample is one reading of the node. Rates are valid when HasRates.
type NodeSample struct {
	Time time.Time
	// CPUs is the number of CPUs /proc/stat lists.
	CPUs int

	// Memory in bytes from /proc/meminfo.
	MemTotal, MemAvailable, Cached, ActiveFile, InactiveFile, AnonPages uint64

	// PSI per resource; Has* is false where the kernel has no such file.
	CPUPressure, MemoryPressure, IOPressure          PSIStats
	HasCPUPressure, HasMemoryPressure, HasIOPressure bool

	HasRates bool
	Interval time.Duration
	// CPUBusy is busy CPU time (user, nice, system, irq, softirq, steal)
	// per wall time, in CPUs; CPUIOWait likewise for iowait.
	CPUBusy, CPUIOWait float64
	// Stall rates, valid when HasRates and the matching Has*Pressure.
	CPUStall, MemoryStall, IOStall StallRates
}

// NewNodeSampler opens procfs at opts.ProcRoot.
func NewNodeSampler(opts NodeSamplerOptions) (*NodeSampler, error) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	pfs, err := procfs.NewFS(opts.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("pressure: procfs %s: %w", opts.ProcRoot, err)
	}
	return &NodeSampler{fs: pfs, procRoot: opts.ProcRoot, clock: opts.Clock}, nil
}

var nodePSIResources = [3]string{"cpu", "memory", "io"}

// Sample reads the node once. A missing PSI file (kernel without PSI, or
// booted with psi=0) leaves that Has*Pressure false; any other failure is an
// error naming the file.
func (n *NodeSampler) Sample() (NodeSample, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var s NodeSample
	st, err := n.fs.Stat()
	if err != nil {
		return s, fmt.Errorf("pressure: %s: %w", filepath.Join(n.procRoot, "stat"), err)
	}
	if len(st.CPU) == 0 {
		return s, fmt.Errorf("pressure: %s: no per-CPU \"cpuN\" lines", filepath.Join(n.procRoot, "stat"))
	}
	s.Time = n.clock()
	s.CPUs = len(st.CPU)
	c := st.CPUTotal
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	wait := c.Iowait

	mi, err := n.fs.Meminfo()
	if err != nil {
		return s, fmt.Errorf("pressure: %s: %w", filepath.Join(n.procRoot, "meminfo"), err)
	}
	s.MemTotal = deref(mi.MemTotalBytes)
	s.MemAvailable = deref(mi.MemAvailableBytes)
	s.Cached = deref(mi.CachedBytes)
	s.ActiveFile = deref(mi.ActiveFileBytes)
	s.InactiveFile = deref(mi.InactiveFileBytes)
	s.AnonPages = deref(mi.AnonPagesBytes)

	var psi [3]PSIStats
	var has [3]bool
	for i, r := range nodePSIResources {
		path := filepath.Join(n.procRoot, "pressure", r)
		ps, err := n.fs.PSIStatsForResource(r)
		if err != nil {
			if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
				continue
			}
			return s, fmt.Errorf("pressure: %s: %w", path, err)
		}
		if ps.Some == nil {
			return s, fmt.Errorf("pressure: %s: %w: no \"some\" line", path, ErrMalformedPSI)
		}
		psi[i] = fromProcfs(ps)
		has[i] = true
	}
	s.CPUPressure, s.MemoryPressure, s.IOPressure = psi[0], psi[1], psi[2]
	s.HasCPUPressure, s.HasMemoryPressure, s.HasIOPressure = has[0], has[1], has[2]

	if dt := s.Time.Sub(n.prevTime); n.have && dt > 0 && busy >= n.prevBusy {
		s.HasRates = true
		s.Interval = dt
		s.CPUBusy = (busy - n.prevBusy) / dt.Seconds()
		s.CPUIOWait = (wait - n.prevWait) / dt.Seconds()
		stalls := [3]*StallRates{&s.CPUStall, &s.MemoryStall, &s.IOStall}
		for i := range psi {
			if has[i] && n.prevHas[i] && !psiWentBack(&n.prevPSI[i], &psi[i]) {
				*stalls[i] = stallRates(&n.prevPSI[i], &psi[i], dt)
			}
		}
	}
	n.have, n.prevTime, n.prevBusy, n.prevWait, n.prevPSI, n.prevHas = true, s.Time, busy, wait, psi, has
	return s, nil
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func fromProcfs(ps procfs.PSIStats) PSIStats {
	conv := func(l *procfs.PSILine) PSILine {
		return PSILine{Avg10: l.Avg10, Avg60: l.Avg60, Avg300: l.Avg300, Total: time.Duration(l.Total) * time.Microsecond}
	}
	out := PSIStats{Some: conv(ps.Some)}
	if ps.Full != nil {
		out.Full, out.HasFull = conv(ps.Full), true
	}
	return out
}
