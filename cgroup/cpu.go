package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	occgroups "github.com/opencontainers/cgroups"

	"github.com/strata-nri/strata/internal/byteconv"
)

// SetCPUShares sets the CPU weight in cgroup v1 shares (2..262144, 1024 is
// the default). On v2 it writes cpu.weight converted as runc converts.
func (c *Cgroup) SetCPUShares(shares uint64) error {
	if shares < MinShares || shares > MaxShares {
		return fmt.Errorf("cgroup %s: cpu shares %d out of range [%d, %d]", c.path, shares, MinShares, MaxShares)
	}
	dir, file, err := c.read(CPU, "cpu.shares", "cpu.weight")
	if err != nil {
		return err
	}
	v := shares
	if c.h.mode == V2 {
		v = SharesToWeight(shares)
	}
	return writeString(dir, file, strconv.FormatUint(v, 10))
}

// CPUShares reads the CPU weight as v1 shares (v2's cpu.weight converted
// back).
func (c *Cgroup) CPUShares() (uint64, error) {
	dir, file, err := c.read(CPU, "cpu.shares", "cpu.weight")
	if err != nil {
		return 0, err
	}
	v, err := readUint(dir, file)
	if err != nil || c.h.mode != V2 {
		return v, err
	}
	return WeightToShares(v), nil
}

// SharesToWeight converts cgroup v1 cpu.shares to a v2 cpu.weight, exactly
// as runc and crun do (opencontainers/cgroups), so that a value written by
// Strata reads the same as one written by the runtime.
func SharesToWeight(shares uint64) uint64 {
	return occgroups.ConvertCPUSharesToCgroupV2Value(shares)
}

// WeightToShares inverts SharesToWeight. Several shares values convert to
// one weight; it returns the largest of them, so the default weight 100 reads
// back as the default 1024 shares. The conversion is monotonic, so a binary
// search over [2, 262144] is exact.
func WeightToShares(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	lo, hi := uint64(MinShares), uint64(MaxShares)
	for lo < hi { // smallest shares whose weight exceeds the given one
		mid := (lo + hi + 1) / 2
		if SharesToWeight(mid) > weight {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo
}

// SetCPUQuota sets the CFS bandwidth limit: quotaUs of CPU time per periodUs.
// A negative quota means unlimited. A zero period keeps the current period.
func (c *Cgroup) SetCPUQuota(quotaUs int64, periodUs uint64) error {
	if quotaUs >= 0 && quotaUs < MinCPUQuotaUs {
		return fmt.Errorf("cgroup %s: cpu quota %dus below the kernel minimum of %dus", c.path, quotaUs, MinCPUQuotaUs)
	}
	if periodUs != 0 && (periodUs < 1000 || periodUs > 1000000) {
		return fmt.Errorf("cgroup %s: cpu period %dus outside [1000, 1000000]", c.path, periodUs)
	}
	dir, err := c.Dir(CPU)
	if err != nil {
		return err
	}
	if c.h.mode == V2 {
		if periodUs == 0 {
			_, cur, err := c.CPUQuota()
			if err != nil {
				return err
			}
			periodUs = cur
		}
		return writeString(dir, "cpu.max", formatMax(quotaUs)+" "+strconv.FormatUint(periodUs, 10))
	}
	q := strconv.FormatInt(quotaUs, 10)
	if quotaUs < 0 {
		q = "-1"
	}
	if periodUs == 0 {
		return writeString(dir, "cpu.cfs_quota_us", q)
	}
	// The kernel checks quota against period on each write, so one order
	// can fail where the other works (as runc does): try period first, and
	// if that is refused, quota first.
	p := strconv.FormatUint(periodUs, 10)
	if err := writeString(dir, "cpu.cfs_period_us", p); err != nil {
		if werr := writeString(dir, "cpu.cfs_quota_us", q); werr != nil {
			return werr
		}
		return writeString(dir, "cpu.cfs_period_us", p)
	}
	return writeString(dir, "cpu.cfs_quota_us", q)
}

// CPUQuota reads the CFS bandwidth limit; quota -1 means unlimited.
func (c *Cgroup) CPUQuota() (quotaUs int64, periodUs uint64, err error) {
	dir, err := c.Dir(CPU)
	if err != nil {
		return 0, 0, err
	}
	if c.h.mode == V2 {
		s, err := readString(dir, "cpu.max")
		if err != nil {
			return 0, 0, err
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return 0, 0, &FileError{Op: "parse", Path: filepath.Join(dir, "cpu.max"), Value: s, Err: errors.New(`want "<quota|max> <period>"`)}
		}
		q := int64(-1)
		if f[0] != "max" {
			if q, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				return 0, 0, &FileError{Op: "parse", Path: filepath.Join(dir, "cpu.max"), Value: s, Err: err}
			}
		}
		p, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, 0, &FileError{Op: "parse", Path: filepath.Join(dir, "cpu.max"), Value: s, Err: err}
		}
		return q, p, nil
	}
	q, err := readInt(dir, "cpu.cfs_quota_us")
	if err != nil {
		return 0, 0, err
	}
	p, err := readUint(dir, "cpu.cfs_period_us")
	if err != nil {
		return 0, 0, err
	}
	return q, p, nil
}

// SetCPUIdle turns SCHED_IDLE-like group scheduling on or off (cpu.idle,
// Linux 5.15+, in both v1 and v2): an idle group runs only when nothing else
// wants the CPU.
func (c *Cgroup) SetCPUIdle(idle bool) error {
	dir, err := c.Dir(CPU)
	if err != nil {
		return err
	}
	v := "0"
	if idle {
		v = "1"
	}
	return writeString(dir, "cpu.idle", v)
}

// CPUIdle reads cpu.idle.
func (c *Cgroup) CPUIdle() (bool, error) {
	dir, err := c.Dir(CPU)
	if err != nil {
		return false, err
	}
	v, err := readUint(dir, "cpu.idle")
	return v == 1, err
}

// CPUShares is Cgroup.CPUShares through a kept file.
func (f *Files) CPUShares() (uint64, error) {
	v, err := f.readUint(keptCPUShares, CPU, "cpu.shares", "cpu.weight")
	if err != nil || f.c.h.mode != V2 {
		return v, err
	}
	return WeightToShares(v), nil
}

// CPUQuota is Cgroup.CPUQuota through kept files.
func (f *Files) CPUQuota() (quotaUs int64, periodUs uint64, err error) {
	if f.c.h.mode == V2 {
		b, k, _, err := f.read(keptCPUQuota, CPU, "", "cpu.max")
		if err != nil {
			return 0, 0, err
		}
		q, p, ok := bytes.Cut(b, []byte(" "))
		if !ok {
			return 0, 0, &FileError{Op: "parse", Path: k.path, Value: string(b), Err: errors.New(`want "<quota|max> <period>"`)}
		}
		quotaUs = -1
		if string(q) != "max" {
			if quotaUs, err = parseInt(q, k); err != nil {
				return 0, 0, err
			}
		}
		period, ok := byteconv.ParseUint(p)
		if !ok {
			return 0, 0, &FileError{Op: "parse", Path: k.path, Value: string(b), Err: errors.New("period: want an unsigned integer")}
		}
		return quotaUs, period, nil
	}
	if quotaUs, err = f.readInt(keptCPUQuota, CPU, "cpu.cfs_quota_us", ""); err != nil {
		return 0, 0, err
	}
	if periodUs, err = f.readUint(keptCPUPeriod, CPU, "cpu.cfs_period_us", ""); err != nil {
		return 0, 0, err
	}
	return quotaUs, periodUs, nil
}

// CPUIdle is Cgroup.CPUIdle through a kept file.
func (f *Files) CPUIdle() (bool, error) {
	v, err := f.readUint(keptCPUIdle, CPU, "cpu.idle", "cpu.idle")
	return v == 1, err
}
