package iolimit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/pressure"
)

// Stats reads one cgroup's IO statistics and IO pressure again and again
// without allocating: it keeps the files open and re-reads them with
// pread(2) into one buffer. A Stats is not safe for concurrent use; Close
// releases its files.
type Stats struct {
	cg      *cgroup.Cgroup
	srcs    []cgroup.IOStatSource
	fds     []int
	psiPath string
	psiFD   int // -1 without a per-cgroup io.pressure
	buf     []byte
}

// Reading is one read of a cgroup's IO: cumulative counters per device and
// the IO PSI. Read reuses its Devices slice.
type Reading struct {
	Time    time.Time
	Devices []cgroup.IOStat
	// PSI is io.pressure; HasPSI is false where the cgroup has none (pure
	// cgroup v1, or a hybrid host's cgroup without a directory in the
	// cgroup2 mount).
	PSI    pressure.PSIStats
	HasPSI bool
}

// Device returns the counters of one device (zero if it did no IO).
func (r *Reading) Device(d cgroup.DevNum) cgroup.IOStat {
	for _, s := range r.Devices {
		if s.Device == d {
			return s
		}
	}
	return cgroup.IOStat{Device: d}
}

// Total sums the counters over every device.
func (r *Reading) Total() cgroup.IOStat {
	var t cgroup.IOStat
	for _, s := range r.Devices {
		t.ReadBytes += s.ReadBytes
		t.WriteBytes += s.WriteBytes
		t.ReadIOs += s.ReadIOs
		t.WriteIOs += s.WriteIOs
	}
	return t
}

// OpenStats opens cg's IO statistics files and its io.pressure where it has
// one. A cgroup that is gone gives an error wrapping cgroup.ErrVanished.
func OpenStats(cg *cgroup.Cgroup) (*Stats, error) {
	srcs, err := cg.IOStatSources()
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cg.Path(), err)
	}
	s := &Stats{cg: cg, srcs: srcs, psiFD: -1, buf: make([]byte, 16<<10)}
	for _, src := range srcs {
		fd, err := unix.Open(src.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			s.Close()
			if errors.Is(err, fs.ErrNotExist) {
				if _, serr := os.Stat(filepath.Dir(src.Path)); serr != nil {
					return nil, fmt.Errorf("cgroup %s: %w", cg.Path(), cgroup.ErrVanished)
				}
				return nil, fmt.Errorf("cgroup %s: %s: %w", cg.Path(), src.Path, cgroup.ErrNotSupported)
			}
			return nil, fmt.Errorf("cgroup %s: open %s: %w", cg.Path(), src.Path, err)
		}
		s.fds = append(s.fds, fd)
	}
	if p, err := cg.PressureFile(cgroup.PSIIO); err == nil {
		s.psiPath = p
		if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			s.psiFD = fd
		}
	}
	return s, nil
}

// Read fills r. It allocates nothing once r.Devices has room for every
// device the cgroup touched.
func (s *Stats) Read(r *Reading) error {
	r.Time = time.Now()
	devs := r.Devices[:0]
	for i := range s.srcs {
		b, err := s.pread(s.fds[i], s.srcs[i].Path)
		if err != nil {
			return err
		}
		// Parse appends a fresh entry per device into the reused array;
		// v1's second file (IOs) updates the entries the first made.
		if devs, err = s.srcs[i].Parse(b, devs); err != nil {
			return err
		}
	}
	r.Devices = devs
	r.HasPSI = false
	if s.psiFD >= 0 {
		b, err := s.pread(s.psiFD, s.psiPath)
		if err != nil {
			return err
		}
		if err := pressure.ParsePSI(s.psiPath, b, &r.PSI); err != nil {
			return err
		}
		r.HasPSI = true
	}
	return nil
}

func (s *Stats) pread(fd int, path string) ([]byte, error) {
	for {
		n, err := unix.Pread(fd, s.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if err == unix.ENODEV {
				return nil, fmt.Errorf("cgroup %s: read %s: %w", s.cg.Path(), path, cgroup.ErrVanished)
			}
			return nil, fmt.Errorf("cgroup %s: read %s: %w", s.cg.Path(), path, err)
		}
		if n == len(s.buf) { // a cgroup that touched very many devices
			s.buf = make([]byte, 2*len(s.buf))
			continue
		}
		return s.buf[:n], nil
	}
}

// Close releases the files.
func (s *Stats) Close() error {
	for _, fd := range s.fds {
		_ = unix.Close(fd)
	}
	s.fds = nil
	if s.psiFD >= 0 {
		_ = unix.Close(s.psiFD)
		s.psiFD = -1
	}
	return nil
}

// Rates is the IO a cgroup did per second between two readings.
type Rates struct {
	ReadBPS, WriteBPS, ReadIOPS, WriteIOPS float64
}

// RatesBetween computes the rates of device d (or of every device, with
// all) from prev to cur. A counter that went back (a recreated cgroup)
// gives zero.
func RatesBetween(prev, cur *Reading, d cgroup.DevNum, all bool) Rates {
	dt := cur.Time.Sub(prev.Time).Seconds()
	if dt <= 0 {
		return Rates{}
	}
	var a, b cgroup.IOStat
	if all {
		a, b = prev.Total(), cur.Total()
	} else {
		a, b = prev.Device(d), cur.Device(d)
	}
	rate := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(y-x) / dt
	}
	return Rates{rate(a.ReadBytes, b.ReadBytes), rate(a.WriteBytes, b.WriteBytes), rate(a.ReadIOs, b.ReadIOs), rate(a.WriteIOs, b.WriteIOs)}
}
