package rdt

import (
	"bufio"
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// DefaultRoot is where resctrl is mounted by convention.
const DefaultRoot = "/sys/fs/resctrl"

// DefaultPrefix starts the name of every control group this package makes,
// so that groups of other agents (or of an operator) are never touched.
const DefaultPrefix = "strata-"

// Resource names one line of a schemata file.
type Resource string

// The schemata resources this package handles, in the order the kernel
// lists them.
const (
	L3     Resource = "L3"
	L3Code Resource = "L3CODE" // L3 with CDP enabled: code half
	L3Data Resource = "L3DATA" // L3 with CDP enabled: data half
	L2     Resource = "L2"
	L2Code Resource = "L2CODE"
	L2Data Resource = "L2DATA"
	MB     Resource = "MB"
)

// resourceOrder is the kernel's schemata line order: resources L3, L2, MB,
// each as CODE then DATA when CDP splits it.
var resourceOrder = []Resource{L3, L3Code, L3Data, L2, L2Code, L2Data, MB}

// Options aims Open at a resctrl tree.
type Options struct {
	// Root is the resctrl mount point. Empty: where /proc/mounts shows
	// resctrl, else DefaultRoot.
	Root string
	// ProcRoot is the procfs root ("/proc" when empty); mounts,
	// filesystems, cpuinfo and PID files are read there.
	ProcRoot string
	// Prefix starts the names of the control groups this package manages
	// (DefaultPrefix when empty).
	Prefix string
}

// CacheInfo describes one cache allocation resource (info/L3, info/L3CODE,
// info/L2, ...).
type CacheInfo struct {
	Resource      Resource
	CBMMask       uint64 // cbm_mask: every way the resource has
	MinCBMBits    int    // min_cbm_bits
	ShareableBits uint64 // shareable_bits: ways other agents (e.g. IO) may use
	SparseMasks   bool   // sparse_masks: non-contiguous masks allowed
	NumCLOSIDs    int    // num_closids
	CacheIDs      []int  // cache ids (domains) in the root schemata, ascending
}

// Ways is the number of cache ways the resource has.
func (c *CacheInfo) Ways() int { return bits.OnesCount64(c.CBMMask) }

// Mask returns the contiguous mask of n ways starting at way first, counted
// from the lowest way of CBMMask. It does not validate; Validate does.
func (c *CacheInfo) Mask(first, n int) uint64 {
	if n <= 0 {
		return 0
	}
	lsb := bits.TrailingZeros64(c.CBMMask)
	if n >= 64 {
		return c.CBMMask
	}
	return ((uint64(1) << n) - 1) << (lsb + first) & c.CBMMask
}

// MBMode is the unit of memory bandwidth allocation values.
type MBMode int

const (
	// MBPercent: Intel MBA, a percentage of the peak with bandwidth_gran
	// steps and a min_bandwidth floor.
	MBPercent MBMode = iota
	// MBMBps: the mba_MBps mount option (Intel's software controller),
	// a bandwidth in MB/s.
	MBMBps
	// MBAbsolute: AMD, absolute units of 1/8 GB/s; the maximum (2048 on
	// current parts) means unthrottled.
	MBAbsolute
)

func (m MBMode) String() string {
	switch m {
	case MBPercent:
		return "percent"
	case MBMBps:
		return "MBps"
	case MBAbsolute:
		return "absolute"
	}
	return fmt.Sprintf("MBMode(%d)", int(m))
}

// MBInfo describes memory bandwidth allocation (info/MB).
type MBInfo struct {
	Mode        MBMode
	Granularity uint64 // bandwidth_gran; values are rounded up to it
	Min         uint64 // min_bandwidth
	Max         uint64 // the unthrottled value: 100, 2^32-1 (MBps) or 2048 (AMD)
	DelayLinear bool   // delay_linear
	NumCLOSIDs  int
	CacheIDs    []int
}

// MonInfo describes monitoring (info/L3_MON).
type MonInfo struct {
	Features []string // mon_features: llc_occupancy, mbm_total_bytes, mbm_local_bytes
	NumRMIDs int
	CacheIDs []int // from mon_data/mon_L3_XX of the root group
}

// Has reports whether the monitoring feature is offered.
func (m *MonInfo) Has(feature string) bool { return m != nil && slices.Contains(m.Features, feature) }

// Monitoring feature names as in info/L3_MON/mon_features.
const (
	LLCOccupancy  = "llc_occupancy"
	MBMTotalBytes = "mbm_total_bytes"
	MBMLocalBytes = "mbm_local_bytes"
)

// Info is what the host's resctrl offers.
type Info struct {
	Root         string
	MountOptions []string
	Caches       map[Resource]*CacheInfo // nil map entries are absent
	MB           *MBInfo                 // nil without MBA
	Mon          *MonInfo                // nil without monitoring
}

// CDP reports whether L3 code/data prioritisation is enabled (the L3
// resource is split into L3CODE and L3DATA).
func (i Info) CDP() bool { return i.Caches[L3Code] != nil }

// Allocation reports whether any allocation (cache or bandwidth) exists;
// without it only monitoring groups can be made.
func (i Info) Allocation() bool { return len(i.Caches) > 0 || i.MB != nil }

// NumCLOSIDs is the number of control groups the hardware supports,
// including the default group: the smallest num_closids of the allocation
// resources, as the kernel counts.
func (i Info) NumCLOSIDs() int {
	n := 0
	for _, c := range i.Caches {
		if n == 0 || c.NumCLOSIDs < n {
			n = c.NumCLOSIDs
		}
	}
	if i.MB != nil && (n == 0 || i.MB.NumCLOSIDs < n) {
		n = i.MB.NumCLOSIDs
	}
	return n
}

// L3Info returns the L3 resource: L3, or L3DATA when CDP splits it.
func (i Info) L3Info() *CacheInfo {
	if c := i.Caches[L3]; c != nil {
		return c
	}
	return i.Caches[L3Data]
}

// Resctrl is an opened resctrl tree. Its methods are safe for concurrent
// use.
type Resctrl struct {
	root, proc, prefix string
	info               Info

	mu sync.Mutex // serialises changes to groups, so budgets hold
	// write writes a control file, writeTask one PID to a tasks file.
	// Tests replace them to make a fixture refuse a write as the kernel
	// does (EINVAL with a last_cmd_status, ESRCH for an exited task).
	write     func(path, value string) error
	writeTask func(path string, pid int) error
}

// Open detects resctrl at opts.Root and reads what it offers. When the
// host has none, the error is a *NotSupportedError (errors.Is
// ErrNotSupported) saying why: not mounted though the kernel has it (with
// the mount command), no resctrl in the kernel, or no RDT in the CPU.
func Open(opts Options) (*Resctrl, error) {
	proc := opts.ProcRoot
	if proc == "" {
		proc = "/proc"
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validName(prefix, true); err != nil {
		return nil, fmt.Errorf("rdt: prefix %q: %w", prefix, err)
	}
	mounts, err := resctrlMounts(filepath.Join(proc, "mounts"))
	if err != nil {
		return nil, err
	}
	root := filepath.Clean(opts.Root)
	if opts.Root == "" {
		root = DefaultRoot
		if len(mounts) > 0 {
			root = mounts[0].point
		}
	}
	var mount *mountEntry
	for i := range mounts {
		if mounts[i].point == root {
			mount = &mounts[i]
		}
	}
	if mount == nil {
		reason := notMountedReason(proc, root)
		if len(mounts) > 0 {
			reason = fmt.Sprintf("resctrl is mounted at %s, not at %s", mounts[0].point, root)
		}
		return nil, &NotSupportedError{Feature: "resctrl", Reason: reason}
	}
	info, err := readInfo(root, proc, mount.options)
	if err != nil {
		return nil, err
	}
	return &Resctrl{root: root, proc: proc, prefix: prefix, info: *info, write: writeValue, writeTask: writePID}, nil
}

// Info returns what the host's resctrl offers.
func (r *Resctrl) Info() Info { return r.info }

// Root returns the resctrl mount point.
func (r *Resctrl) Root() string { return r.root }

// Prefix returns the prefix of the control groups this Resctrl manages.
func (r *Resctrl) Prefix() string { return r.prefix }

type mountEntry struct {
	point   string
	options []string
}

// resctrlMounts lists resctrl mounts in a /proc/mounts file.
func resctrlMounts(path string) ([]mountEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Op: "read", Path: path, Err: err}
	}
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[2] != "resctrl" {
			continue
		}
		out = append(out, mountEntry{point: filepath.Clean(unescapeMount(f[1])), options: strings.Split(f[3], ",")})
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// rdtFlags are the /proc/cpuinfo flags of RDT allocation and monitoring
// (Intel and AMD use the same names).
var rdtFlags = []string{"rdt_a", "cat_l3", "cat_l2", "cdp_l3", "cdp_l2", "mba", "cqm", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local"}

// notMountedReason explains why root is not a resctrl mount: the kernel
// has resctrl but it is not mounted, or the kernel or CPU lacks it.
func notMountedReason(proc, root string) string {
	fs, _ := os.ReadFile(filepath.Join(proc, "filesystems"))
	for _, line := range strings.Split(string(fs), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "resctrl" {
			return fmt.Sprintf("resctrl is not mounted at %s (the kernel has it: mount -t resctrl resctrl %s)", root, root)
		}
	}
	reason := "the kernel has no resctrl filesystem (none in " + filepath.Join(proc, "filesystems") + ")"
	flags, vendor, hypervisor := cpuFlags(filepath.Join(proc, "cpuinfo"))
	var have []string
	for _, f := range rdtFlags {
		if flags[f] {
			have = append(have, f)
		}
	}
	if len(have) == 0 {
		reason += "; the CPU advertises no RDT flags (" + strings.Join(rdtFlags, ", ") + ")"
	} else {
		reason += "; the CPU has " + strings.Join(have, ", ") + " (is CONFIG_X86_CPU_RESCTRL off, or rdt= on the command line?)"
	}
	if vendor != "" {
		reason += "; vendor " + vendor
	}
	if hypervisor {
		reason += ", under a hypervisor"
	}
	return reason
}

func cpuFlags(path string) (flags map[string]bool, vendor string, hypervisor bool) {
	flags = map[string]bool{}
	data, _ := os.ReadFile(path)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "vendor_id":
			vendor = strings.TrimSpace(val)
		case "flags":
			for _, f := range strings.Fields(val) {
				flags[f] = true
			}
			return flags, vendor, flags["hypervisor"]
		}
	}
	return flags, vendor, flags["hypervisor"]
}

func readInfo(root, proc string, mountOpts []string) (*Info, error) {
	info := &Info{Root: root, MountOptions: mountOpts, Caches: map[Resource]*CacheInfo{}}
	infoDir := filepath.Join(root, "info")
	entries, err := os.ReadDir(infoDir)
	if err != nil {
		return nil, &NotSupportedError{Feature: "resctrl", Reason: fmt.Sprintf("%s is mounted but %s cannot be read: %v", root, infoDir, err)}
	}
	defaults, err := readSchemataFile(filepath.Join(root, "schemata"))
	if err != nil && !os.IsNotExist(errorsUnwrapAll(err)) {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(infoDir, e.Name())
		switch res := Resource(e.Name()); res {
		case L3, L3Code, L3Data, L2, L2Code, L2Data:
			c := &CacheInfo{Resource: res}
			var mask, shareable string
			if err := readFields(dir, map[string]any{"cbm_mask": &mask, "min_cbm_bits": &c.MinCBMBits, "num_closids": &c.NumCLOSIDs}); err != nil {
				return nil, err
			}
			if c.CBMMask, err = parseHex(mask); err != nil || c.CBMMask == 0 {
				return nil, &FileError{Op: "parse", Path: filepath.Join(dir, "cbm_mask"), Value: mask, Err: fmt.Errorf("not a non-empty hex mask")}
			}
			if readOptional(dir, "shareable_bits", &shareable) {
				if c.ShareableBits, err = parseHex(shareable); err != nil {
					return nil, &FileError{Op: "parse", Path: filepath.Join(dir, "shareable_bits"), Value: shareable, Err: err}
				}
			}
			var sparse int
			if readOptional(dir, "sparse_masks", &sparse) {
				c.SparseMasks = sparse == 1
			}
			c.CacheIDs = defaults.ids(res)
			info.Caches[res] = c
		case MB:
			m := &MBInfo{}
			var delay int
			if err := readFields(dir, map[string]any{"bandwidth_gran": &m.Granularity, "min_bandwidth": &m.Min, "num_closids": &m.NumCLOSIDs}); err != nil {
				return nil, err
			}
			if readOptional(dir, "delay_linear", &delay) {
				m.DelayLinear = delay == 1
			}
			if m.Granularity == 0 {
				m.Granularity = 1
			}
			m.CacheIDs = defaults.ids(MB)
			switch def := defaults.maxMB(); {
			case slices.Contains(mountOpts, "mba_MBps"):
				m.Mode, m.Max = MBMBps, 1<<32-1
			case def > 100:
				m.Mode, m.Max = MBAbsolute, def
			case def == 0 && amd(proc):
				m.Mode, m.Max = MBAbsolute, 2048
			default:
				m.Mode, m.Max = MBPercent, 100
			}
			info.MB = m
		case "L3_MON":
			m := &MonInfo{}
			var features string
			if err := readFields(dir, map[string]any{"mon_features": &features, "num_rmids": &m.NumRMIDs}); err != nil {
				return nil, err
			}
			m.Features = strings.Fields(features)
			mon, _ := os.ReadDir(filepath.Join(root, "mon_data"))
			for _, d := range mon {
				if id, ok := strings.CutPrefix(d.Name(), "mon_L3_"); ok {
					if n, err := strconv.Atoi(id); err == nil {
						m.CacheIDs = append(m.CacheIDs, n)
					}
				}
			}
			sort.Ints(m.CacheIDs)
			info.Mon = m
		}
	}
	if !info.Allocation() && info.Mon == nil {
		return nil, &NotSupportedError{Feature: "resctrl", Reason: fmt.Sprintf("%s offers neither allocation nor monitoring", infoDir)}
	}
	return info, nil
}

func amd(proc string) bool {
	_, vendor, _ := cpuFlags(filepath.Join(proc, "cpuinfo"))
	return vendor == "AuthenticAMD" || vendor == "HygonGenuine"
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// readFields reads required one-value files of dir into ints, uint64s or
// strings.
func readFields(dir string, fields map[string]any) error {
	for name, dst := range fields {
		if err := parseField(filepath.Join(dir, name), dst); err != nil {
			return err
		}
	}
	return nil
}

// readOptional reads dir/name into dst when the file exists.
func readOptional(dir, name string, dst any) bool {
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return false
	}
	return parseField(path, dst) == nil
}

func parseField(path string, dst any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &FileError{Op: "read", Path: path, Err: err}
	}
	s := strings.TrimSpace(string(data))
	switch d := dst.(type) {
	case *string:
		*d = s
	case *int:
		v, err := strconv.Atoi(s)
		if err != nil {
			return &FileError{Op: "parse", Path: path, Value: s, Err: err}
		}
		*d = v
	case *uint64:
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return &FileError{Op: "parse", Path: path, Value: s, Err: err}
		}
		*d = v
	}
	return nil
}

func parseHex(s string) (uint64, error) {
	return strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(s), "0x"), 16, 64)
}
