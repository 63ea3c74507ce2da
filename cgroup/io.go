package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-nri/strata/internal/byteconv"
)

// Block IO by meaning. Only this file spells the blkio (v1) and io (v2)
// file names:
//
//	meaning               v1 file                               v2 file
//	bytes/IOs per second  blkio.throttle.{read,write}_bps_device io.max rbps wbps
//	                      blkio.throttle.{read,write}_iops_device io.max riops wiops
//	bfq weight            blkio.bfq.weight, blkio.bfq.weight_device io.bfq.weight
//	cost weight           blkio.weight, blkio.weight_device (cfq, gone since Linux 5.0)
//	                                                            io.weight (iocost)
//	latency target        (none: ErrNotSupported)               io.latency
//	iocost enabled        (none)                                root io.cost.qos
//	bytes and IOs done    blkio.throttle.io_service_bytes,      io.stat
//	                      blkio.throttle.io_serviced
//	IO pressure           unified mount io.pressure (hybrid)    io.pressure
//
// Units are the kernel's: bytes and IOs per second, weights in the knob's own
// range (see IOWeightRange), latency in microseconds on the wire and a
// time.Duration here.

// DevNum is a block device number, major:minor, as the kernel prints it in
// blkio and io files.
type DevNum struct {
	Major, Minor uint32
}

func (d DevNum) String() string { return fmt.Sprintf("%d:%d", d.Major, d.Minor) }

// ParseDevNum parses "major:minor".
func ParseDevNum(s string) (DevNum, error) {
	d, ok := parseDevNum([]byte(s))
	if !ok {
		return DevNum{}, fmt.Errorf("device number %q: want major:minor, two unsigned integers", s)
	}
	return d, nil
}

func parseDevNum(b []byte) (DevNum, bool) {
	i := bytes.IndexByte(b, ':')
	if i <= 0 {
		return DevNum{}, false
	}
	maj, ok1 := byteconv.ParseUint(b[:i])
	min, ok2 := byteconv.ParseUint(b[i+1:])
	if !ok1 || !ok2 || maj > 1<<32-1 || min > 1<<32-1 {
		return DevNum{}, false
	}
	return DevNum{uint32(maj), uint32(min)}, true
}

func devLess(a, b DevNum) bool {
	if a.Major != b.Major {
		return a.Major < b.Major
	}
	return a.Minor < b.Minor
}

// IOLimit is one device's throttling: bytes and IO operations per second.
// Zero means no limit (v1 writes 0, v2 "max"), so an IOLimit with every
// rate zero removes the device's limits.
type IOLimit struct {
	Device                                 DevNum
	ReadBPS, WriteBPS, ReadIOPS, WriteIOPS uint64
}

// Unlimited reports whether l sets no limit at all.
func (l IOLimit) Unlimited() bool {
	return l.ReadBPS == 0 && l.WriteBPS == 0 && l.ReadIOPS == 0 && l.WriteIOPS == 0
}

// v1 throttle files, in IOLimit field order.
var v1ThrottleFiles = [4]string{
	"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
	"blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
}

// v2 io.max keys, in IOLimit field order.
var v2MaxKeys = [4]string{"rbps", "wbps", "riops", "wiops"}

func (l *IOLimit) field(i int) *uint64 {
	switch i {
	case 0:
		return &l.ReadBPS
	case 1:
		return &l.WriteBPS
	case 2:
		return &l.ReadIOPS
	}
	return &l.WriteIOPS
}

// SetIOLimit sets one device's throttling to exactly l (zero rates remove
// those limits). On v1 it writes the four blkio.throttle files; if a write
// fails, the files already written get their earlier values back, so the
// device is never left half-limited. On v2 it writes one io.max line.
func (c *Cgroup) SetIOLimit(l IOLimit) error {
	dir, err := c.Dir(BlkIO)
	if err != nil {
		return err
	}
	if c.h.mode == V2 {
		var b strings.Builder
		b.WriteString(l.Device.String())
		for i, k := range v2MaxKeys {
			b.WriteString(" " + k + "=" + formatIOMax(*l.field(i)))
		}
		return writeString(dir, "io.max", b.String())
	}
	before, err := c.IOLimits()
	if err != nil {
		return err
	}
	old := IOLimit{Device: l.Device}
	for _, b := range before {
		if b.Device == l.Device {
			old = b
		}
	}
	for i, f := range v1ThrottleFiles {
		if err := writeString(dir, f, l.Device.String()+" "+strconv.FormatUint(*l.field(i), 10)); err != nil {
			for j := 0; j < i; j++ {
				_ = writeString(dir, v1ThrottleFiles[j], old.Device.String()+" "+strconv.FormatUint(*old.field(j), 10))
			}
			return err
		}
	}
	return nil
}

// CountIOThrottleStats makes a cgroup v1 kernel count dev's IO in every
// cgroup's blkio.throttle.io_service_bytes and io_serviced. Recent
// kernels (6.18 here) start blk-throttle on a device only when a limit is
// first configured for it, and until then those files list nothing for
// the device (a fresh loop device read by a cgroup showed no entry). Writing a
// rule without a limit ("maj:min 0") to one of c's throttle files starts
// it and limits nothing; it is written only where c has no rule for dev,
// so a limit c has stays. On v2 (io.stat counts every device) it does
// nothing.
func (c *Cgroup) CountIOThrottleStats(dev DevNum) error {
	if c.h.mode == V2 {
		return nil
	}
	lims, err := c.IOLimits()
	if err != nil {
		return err
	}
	for _, l := range lims {
		if l.Device == dev {
			return nil // throttling is configured there: counted already
		}
	}
	dir, err := c.Dir(BlkIO)
	if err != nil {
		return err
	}
	return writeString(dir, v1ThrottleFiles[0], dev.String()+" 0")
}

func formatIOMax(v uint64) string {
	if v == 0 {
		return "max"
	}
	return strconv.FormatUint(v, 10)
}

// IOLimits reads back every device's throttling, sorted by device. Devices
// without limits are not listed.
func (c *Cgroup) IOLimits() ([]IOLimit, error) {
	dir, err := c.Dir(BlkIO)
	if err != nil {
		return nil, err
	}
	byDev := map[DevNum]*IOLimit{}
	get := func(d DevNum) *IOLimit {
		if l, ok := byDev[d]; ok {
			return l
		}
		l := &IOLimit{Device: d}
		byDev[d] = l
		return l
	}
	if c.h.mode == V2 {
		s, err := readString(dir, "io.max")
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "io.max")
		for _, line := range nonEmptyLines(s) {
			f := strings.Fields(line)
			d, ok := parseDevNum([]byte(f[0]))
			if !ok {
				return nil, &FileError{Op: "parse", Path: path, Value: line, Err: errors.New("want major:minor first")}
			}
			l := get(d)
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				for i, key := range v2MaxKeys {
					if k != key {
						continue
					}
					if v == "max" {
						break
					}
					n, err := strconv.ParseUint(v, 10, 64)
					if err != nil {
						return nil, &FileError{Op: "parse", Path: path, Value: line, Err: err}
					}
					*l.field(i) = n
				}
			}
		}
	} else {
		for i, file := range v1ThrottleFiles {
			s, err := readString(dir, file)
			if err != nil {
				return nil, err
			}
			path := filepath.Join(dir, file)
			for _, line := range nonEmptyLines(s) {
				d, v, err := parseDeviceValue(line)
				if err != nil {
					return nil, &FileError{Op: "parse", Path: path, Value: line, Err: err}
				}
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return nil, &FileError{Op: "parse", Path: path, Value: line, Err: err}
				}
				*get(d).field(i) = n
			}
		}
	}
	out := make([]IOLimit, 0, len(byDev))
	for _, l := range byDev {
		if !l.Unlimited() {
			out = append(out, *l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return devLess(out[i].Device, out[j].Device) })
	return out, nil
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseDeviceValue splits "major:minor value".
func parseDeviceValue(line string) (DevNum, string, error) {
	dev, v, ok := strings.Cut(line, " ")
	d, okd := parseDevNum([]byte(dev))
	if !ok || !okd {
		return DevNum{}, "", errors.New(`want "major:minor value"`)
	}
	return d, strings.TrimSpace(v), nil
}

// IOWeightKnob is one of the kernel's two kinds of proportional IO weight.
// Which one takes effect depends on the device's IO scheduler (see package
// iolimit).
type IOWeightKnob int

const (
	// IOWeightBFQ is the bfq scheduler's weight: v1 blkio.bfq.weight and
	// blkio.bfq.weight_device, v2 io.bfq.weight. Range 1..1000, default
	// 100. It takes effect only on devices whose scheduler is bfq.
	IOWeightBFQ IOWeightKnob = iota + 1
	// IOWeightCost is the scheduler-independent weight: v2 io.weight
	// (iocost; range 1..10000, default 100, effective only on devices
	// where iocost is enabled in the root's io.cost.qos) and v1
	// blkio.weight (cfq, range 10..1000; absent since Linux 5.0 removed
	// cfq).
	IOWeightCost
)

func (k IOWeightKnob) String() string {
	switch k {
	case IOWeightBFQ:
		return "bfq weight"
	case IOWeightCost:
		return "cost weight"
	}
	return fmt.Sprintf("IOWeightKnob(%d)", int(k))
}

// IOWeightFile names the file of knob k on hierarchy mode m ("" when the
// version has no such knob), for messages that tell an operator what is
// missing.
func IOWeightFile(m Mode, k IOWeightKnob) string {
	switch {
	case m == V2 && k == IOWeightBFQ:
		return "io.bfq.weight"
	case m == V2 && k == IOWeightCost:
		return "io.weight"
	case k == IOWeightBFQ:
		return "blkio.bfq.weight"
	case k == IOWeightCost:
		return "blkio.weight"
	}
	return ""
}

// IOWeightRange is the kernel's range for knob k on mode m.
func IOWeightRange(m Mode, k IOWeightKnob) (min, max uint64) {
	switch {
	case k == IOWeightBFQ:
		return 1, 1000
	case m == V2:
		return 1, 10000
	}
	return 10, 1000
}

// IOWeights is a weight knob's setting: the default for every device and
// per-device overrides, sorted by device.
type IOWeights struct {
	Default uint64
	Devices []IODeviceWeight
}

// IODeviceWeight is one device's weight override.
type IODeviceWeight struct {
	Device DevNum
	Weight uint64
}

// weightFiles returns the default and per-device files of knob k. On v2 one
// file holds both ("default N" and "major:minor N" lines).
func (c *Cgroup) weightFiles(k IOWeightKnob) (dir, def, dev string, err error) {
	if k != IOWeightBFQ && k != IOWeightCost {
		return "", "", "", fmt.Errorf("cgroup %s: unknown IO weight knob %d", c.path, int(k))
	}
	if dir, err = c.Dir(BlkIO); err != nil {
		return "", "", "", err
	}
	def = IOWeightFile(c.h.mode, k)
	dev = def
	if c.h.mode != V2 {
		dev = def + "_device"
	}
	return dir, def, dev, nil
}

// HasIOWeight reports whether the cgroup has knob k's file: io.bfq.weight
// and blkio.bfq.weight exist once the bfq scheduler is registered (built in
// or loaded), io.weight when the kernel has iocost, blkio.weight only on
// kernels with cfq. The root cgroup has no weight files.
func (c *Cgroup) HasIOWeight(k IOWeightKnob) bool {
	dir, def, _, err := c.weightFiles(k)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, def))
	return err == nil
}

func (c *Cgroup) checkWeight(k IOWeightKnob, w uint64) error {
	lo, hi := IOWeightRange(c.h.mode, k)
	if w < lo || w > hi {
		return fmt.Errorf("cgroup %s: %s %d out of range [%d, %d]", c.path, IOWeightFile(c.h.mode, k), w, lo, hi)
	}
	return nil
}

// SetIOWeight sets knob k's default weight.
func (c *Cgroup) SetIOWeight(k IOWeightKnob, weight uint64) error {
	dir, def, _, err := c.weightFiles(k)
	if err != nil {
		return err
	}
	if err := c.checkWeight(k, weight); err != nil {
		return err
	}
	v := strconv.FormatUint(weight, 10)
	if c.h.mode == V2 {
		v = "default " + v
	}
	return writeString(dir, def, v)
}

// SetIODeviceWeight sets knob k's weight for one device; weight 0 removes
// the override, so the default applies again. The kernel refuses a bfq
// device weight (EOPNOTSUPP) unless the device's scheduler is bfq.
func (c *Cgroup) SetIODeviceWeight(k IOWeightKnob, dev DevNum, weight uint64) error {
	dir, _, file, err := c.weightFiles(k)
	if err != nil {
		return err
	}
	v := "default"
	if weight != 0 {
		if err := c.checkWeight(k, weight); err != nil {
			return err
		}
		v = strconv.FormatUint(weight, 10)
	}
	return writeString(dir, file, dev.String()+" "+v)
}

// IOWeight reads knob k's default and per-device weights.
func (c *Cgroup) IOWeight(k IOWeightKnob) (IOWeights, error) {
	var w IOWeights
	dir, def, dev, err := c.weightFiles(k)
	if err != nil {
		return w, err
	}
	files := []string{def}
	if dev != def {
		files = append(files, dev)
	}
	for _, file := range files {
		s, err := readString(dir, file)
		if err != nil {
			return w, err
		}
		path := filepath.Join(dir, file)
		for _, line := range nonEmptyLines(s) {
			// v1 blkio.bfq.weight is a bare number; the other files
			// have "default N" and "major:minor N" lines.
			if n, err := strconv.ParseUint(line, 10, 64); err == nil {
				w.Default = n
				continue
			}
			key, v, _ := strings.Cut(line, " ")
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return w, &FileError{Op: "parse", Path: path, Value: line, Err: err}
			}
			if key == "default" {
				w.Default = n
				continue
			}
			d, ok := parseDevNum([]byte(key))
			if !ok {
				return w, &FileError{Op: "parse", Path: path, Value: line, Err: errors.New(`want "default N" or "major:minor N"`)}
			}
			w.Devices = append(w.Devices, IODeviceWeight{Device: d, Weight: n})
		}
	}
	sort.Slice(w.Devices, func(i, j int) bool { return devLess(w.Devices[i].Device, w.Devices[j].Device) })
	return w, nil
}

// SetIOLatency sets the v2 io.latency target of one device; 0 removes it.
// v1 has no latency controller (ErrNotSupported), nor does a v2 kernel
// without CONFIG_BLK_CGROUP_IOLATENCY (then the file is missing).
func (c *Cgroup) SetIOLatency(dev DevNum, target time.Duration) error {
	dir, file, err := c.read(BlkIO, "", "io.latency")
	if err != nil {
		return err
	}
	if target < 0 {
		return fmt.Errorf("cgroup %s: io.latency target %v is negative", c.path, target)
	}
	v := "max"
	if target > 0 {
		us := target.Microseconds()
		if us == 0 {
			us = 1
		}
		v = strconv.FormatInt(us, 10)
	}
	return writeString(dir, file, dev.String()+" target="+v)
}

// IOLatency reads the v2 io.latency targets per device.
func (c *Cgroup) IOLatency() (map[DevNum]time.Duration, error) {
	dir, file, err := c.read(BlkIO, "", "io.latency")
	if err != nil {
		return nil, err
	}
	s, err := readString(dir, file)
	if err != nil {
		return nil, err
	}
	out := map[DevNum]time.Duration{}
	path := filepath.Join(dir, file)
	for _, line := range nonEmptyLines(s) {
		d, v, err := parseDeviceValue(line)
		if err != nil {
			return nil, &FileError{Op: "parse", Path: path, Value: line, Err: err}
		}
		us, ok := strings.CutPrefix(v, "target=")
		n, err := strconv.ParseUint(us, 10, 64)
		if !ok || err != nil {
			return nil, &FileError{Op: "parse", Path: path, Value: line, Err: errors.New(`want "major:minor target=usec"`)}
		}
		out[d] = time.Duration(n) * time.Microsecond
	}
	return out, nil
}

// IOCostEnabled reports whether iocost governs dev, from the v2 root's
// io.cost.qos ("major:minor enable=1 ..."); io.weight takes effect only
// there. A kernel without iocost has no such file (ErrNotSupported); on v1
// it is always ErrNotSupported.
func (h *Hierarchy) IOCostEnabled(dev DevNum) (bool, error) {
	if h.mode != V2 {
		return false, fmt.Errorf("%w: io.cost.qos on cgroup %s", ErrNotSupported, h.mode)
	}
	s, err := readString(h.unified, "io.cost.qos")
	if err != nil {
		return false, err
	}
	for _, line := range nonEmptyLines(s) {
		f := strings.Fields(line)
		if f[0] != dev.String() {
			continue
		}
		for _, kv := range f[1:] {
			if kv == "enable=1" {
				return true, nil
			}
		}
	}
	return false, nil
}

// IOStat is the IO a cgroup did on one device, cumulative since it was
// created: v1 blkio.throttle.io_service_bytes and io_serviced (the Read and
// Write lines, counted where the throttle layer sees IO, so for every
// scheduler), v2 io.stat rbytes, wbytes, rios, wios.
type IOStat struct {
	Device                                   DevNum
	ReadBytes, WriteBytes, ReadIOs, WriteIOs uint64
}

// IOStatSource is one file holding IO statistics and what it holds. A
// sampler keeps the file open, re-reads it and hands the content to Parse.
type IOStatSource struct {
	// Path is the absolute path of the file.
	Path   string
	format ioStatFormat
}

type ioStatFormat int

const (
	ioStatV2      ioStatFormat = iota // "maj:min rbytes=.. wbytes=.. rios=.. wios=.."
	ioStatV1Bytes                     // "maj:min Read N" / "Write N" / ...
	ioStatV1IOs
)

// IOStatSources lists the files that hold the cgroup's IO statistics (v1:
// two, v2: one). Nothing is opened here.
func (c *Cgroup) IOStatSources() ([]IOStatSource, error) {
	dir, err := c.Dir(BlkIO)
	if err != nil {
		return nil, err
	}
	if c.h.mode == V2 {
		return []IOStatSource{{Path: filepath.Join(dir, "io.stat"), format: ioStatV2}}, nil
	}
	return []IOStatSource{
		{Path: filepath.Join(dir, "blkio.throttle.io_service_bytes"), format: ioStatV1Bytes},
		{Path: filepath.Join(dir, "blkio.throttle.io_serviced"), format: ioStatV1IOs},
	}, nil
}

// Parse reads the source's counters from the file content b into stats,
// updating the entry of each device it finds and appending entries for new
// devices; it returns the updated slice. With enough capacity in stats it
// allocates nothing unless it fails; then the error is a *FileError naming
// the file and the line.
func (s *IOStatSource) Parse(b []byte, stats []IOStat) ([]IOStat, error) {
	lineNo := 0
	for len(b) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(line) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			if s.format != ioStatV2 {
				return stats, s.parseError(line, lineNo, `want "major:minor Op value"`)
			}
			continue // v2 prints a device with no fields yet as bare "maj:min"
		}
		if s.format != ioStatV2 && string(line[:sp]) == "Total" {
			continue // v1's sum over devices
		}
		dev, ok := parseDevNum(line[:sp])
		if !ok {
			return stats, s.parseError(line, lineNo, "want major:minor first")
		}
		i := 0
		for i < len(stats) && stats[i].Device != dev {
			i++
		}
		if i == len(stats) {
			stats = append(stats, IOStat{Device: dev})
		}
		st := &stats[i]
		rest := line[sp+1:]
		if s.format == ioStatV2 {
			if err := parseIOStatV2(rest, st); err != nil {
				return stats, s.parseError(line, lineNo, err.Error())
			}
			continue
		}
		op, val, ok := bytes.Cut(rest, []byte(" "))
		if !ok {
			return stats, s.parseError(line, lineNo, `want "major:minor Op value"`)
		}
		var dst *uint64
		switch string(op) {
		case "Read":
			dst = &st.ReadBytes
			if s.format == ioStatV1IOs {
				dst = &st.ReadIOs
			}
		case "Write":
			dst = &st.WriteBytes
			if s.format == ioStatV1IOs {
				dst = &st.WriteIOs
			}
		default:
			continue // Sync, Async, Discard, Total
		}
		v, ok := byteconv.ParseUint(val)
		if !ok {
			return stats, s.parseError(line, lineNo, "want an unsigned integer")
		}
		*dst = v
	}
	return stats, nil
}

func parseIOStatV2(fields []byte, st *IOStat) error {
	for len(fields) > 0 {
		var f []byte
		if i := bytes.IndexByte(fields, ' '); i >= 0 {
			f, fields = fields[:i], fields[i+1:]
		} else {
			f, fields = fields, nil
		}
		eq := bytes.IndexByte(f, '=')
		if eq < 0 {
			continue
		}
		var dst *uint64
		switch string(f[:eq]) {
		case "rbytes":
			dst = &st.ReadBytes
		case "wbytes":
			dst = &st.WriteBytes
		case "rios":
			dst = &st.ReadIOs
		case "wios":
			dst = &st.WriteIOs
		default:
			continue // dbytes, dios, cost.*, use_delay, ...
		}
		v, ok := byteconv.ParseUint(f[eq+1:])
		if !ok {
			return errors.New("want key=unsigned integer")
		}
		*dst = v
	}
	return nil
}

func (s *IOStatSource) parseError(line []byte, n int, msg string) error {
	return &FileError{Op: "parse", Path: s.Path, Value: string(line), Err: fmt.Errorf("line %d: %s", n, msg)}
}

// IOStats reads the cgroup's IO statistics per device, sorted by device.
// Samplers that re-read them use IOStatSources instead.
func (c *Cgroup) IOStats() ([]IOStat, error) {
	srcs, err := c.IOStatSources()
	if err != nil {
		return nil, err
	}
	var stats []IOStat
	for i := range srcs {
		dir := filepath.Dir(srcs[i].Path)
		b, err := os.ReadFile(srcs[i].Path)
		if err != nil {
			return nil, &FileError{Op: "read", Path: srcs[i].Path, Err: classify(dir, srcs[i].Path, err)}
		}
		if stats, err = srcs[i].Parse(b, stats); err != nil {
			return nil, err
		}
	}
	sort.Slice(stats, func(i, j int) bool { return devLess(stats[i].Device, stats[j].Device) })
	return stats, nil
}
