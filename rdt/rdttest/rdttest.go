package rdttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Cache is one cache allocation resource, as in info/L3 or info/L3CODE.
type Cache struct {
	Resource      string // "L3", "L3CODE", "L3DATA", "L2"
	CBMMask       uint64
	MinCBMBits    int
	ShareableBits uint64
	Sparse        bool // info/<res>/sparse_masks is 1
	NumCLOSIDs    int
	IDs           []int // cache ids (domains)
}

// Bandwidth is memory bandwidth allocation, as in info/MB.
type Bandwidth struct {
	Gran, Min   int
	DelayLinear bool
	NumCLOSIDs  int
	Max         uint64 // the root group's (unthrottled) value: 100, 2048 (AMD), 4294967295 (mba_MBps)
	IDs         []int
}

// Monitoring is info/L3_MON.
type Monitoring struct {
	Features []string
	NumRMIDs int
	IDs      []int
}

// Machine is one host's resctrl.
type Machine struct {
	Name         string
	Vendor       string // vendor_id in cpuinfo
	Flags        []string
	MountOptions []string // beyond rw,relatime: "cdp", "mba_MBps"
	Caches       []Cache
	MB           *Bandwidth
	Mon          *Monitoring
}

func ids(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

var mbmFeatures = []string{"llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"}

// IntelL3MBA is a two-socket Intel Xeon (Cascade Lake): 11-way L3 per
// socket (cache ids 0 and 1), 16 CLOSIDs for L3 and 8 for MBA (so 8
// classes in all, the default group's included), MBA in 10 % steps from
// 10 %, monitoring with 176 RMIDs.
var IntelL3MBA = Machine{
	Name:   "intel-2s-l3-mba",
	Vendor: "GenuineIntel",
	Flags:  []string{"cat_l3", "cdp_l3", "mba", "cqm", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local", "rdt_a"},
	Caches: []Cache{{Resource: "L3", CBMMask: 0x7ff, MinCBMBits: 1, NumCLOSIDs: 16, IDs: ids(0, 1)}},
	MB:     &Bandwidth{Gran: 10, Min: 10, DelayLinear: true, NumCLOSIDs: 8, Max: 100, IDs: ids(0, 1)},
	Mon:    &Monitoring{Features: mbmFeatures, NumRMIDs: 176, IDs: ids(0, 1)},
}

// IntelCDP is a two-socket Intel Xeon (Ice Lake) mounted with -o cdp: L3 is
// split into L3CODE and L3DATA (12 ways each) and the CLOSIDs are halved.
var IntelCDP = Machine{
	Name:         "intel-2s-cdp",
	Vendor:       "GenuineIntel",
	Flags:        []string{"cat_l3", "cdp_l3", "mba", "cqm", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local", "rdt_a"},
	MountOptions: []string{"cdp"},
	Caches: []Cache{
		{Resource: "L3CODE", CBMMask: 0xfff, MinCBMBits: 1, NumCLOSIDs: 8, IDs: ids(0, 1)},
		{Resource: "L3DATA", CBMMask: 0xfff, MinCBMBits: 1, NumCLOSIDs: 8, IDs: ids(0, 1)},
	},
	MB:  &Bandwidth{Gran: 10, Min: 10, DelayLinear: true, NumCLOSIDs: 8, Max: 100, IDs: ids(0, 1)},
	Mon: &Monitoring{Features: mbmFeatures, NumRMIDs: 144, IDs: ids(0, 1)},
}

// AMDEPYC is a two-socket AMD EPYC (Milan) with one L3 per CCX: 16 ways,
// cache ids 0-7 on socket 0 and 16-23 on socket 1 (not contiguous, as in
// koordinator#1777), no minimum ways and sparse masks allowed, MBA in
// absolute units of 1/8 GB/s with 2048 unthrottled.
var AMDEPYC = Machine{
	Name:   "amd-2s-epyc",
	Vendor: "AuthenticAMD",
	Flags:  []string{"cat_l3", "cdp_l3", "mba", "cqm", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local"},
	Caches: []Cache{{Resource: "L3", CBMMask: 0xffff, MinCBMBits: 0, Sparse: true, NumCLOSIDs: 16, IDs: append(ids(0, 7), ids(16, 23)...)}},
	MB:     &Bandwidth{Gran: 1, Min: 0, NumCLOSIDs: 16, Max: 2048, IDs: append(ids(0, 7), ids(16, 23)...)},
	Mon:    &Monitoring{Features: mbmFeatures, NumRMIDs: 256, IDs: append(ids(0, 7), ids(16, 23)...)},
}

// MonitoringOnly is a one-socket part with cache monitoring (CMT) but no
// allocation: only monitoring groups can be made.
var MonitoringOnly = Machine{
	Name:   "intel-1s-cmt-only",
	Vendor: "GenuineIntel",
	Flags:  []string{"cqm", "cqm_llc", "cqm_occup_llc"},
	Mon:    &Monitoring{Features: []string{"llc_occupancy"}, NumRMIDs: 56, IDs: ids(0, 0)},
}

// IntelSparse is a two-socket Intel Xeon (Granite Rapids class) that
// allows non-contiguous masks (sparse_masks 1): 15 ways, min 1.
var IntelSparse = Machine{
	Name:   "intel-2s-sparse",
	Vendor: "GenuineIntel",
	Flags:  []string{"cat_l3", "mba", "cqm", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local", "rdt_a"},
	Caches: []Cache{{Resource: "L3", CBMMask: 0x7fff, MinCBMBits: 1, Sparse: true, NumCLOSIDs: 15, IDs: ids(0, 1)}},
	MB:     &Bandwidth{Gran: 10, Min: 10, DelayLinear: true, NumCLOSIDs: 15, Max: 100, IDs: ids(0, 1)},
	Mon:    &Monitoring{Features: mbmFeatures, NumRMIDs: 256, IDs: ids(0, 1)},
}

// Machines lists the fixtures above.
var Machines = []Machine{IntelL3MBA, IntelCDP, AMDEPYC, MonitoringOnly, IntelSparse}

// Write lays out m's resctrl under a fresh temporary directory and returns
// the resctrl root and the procfs root to pass to rdt.Open.
func Write(tb testing.TB, m Machine) (root, proc string) {
	tb.Helper()
	base := tb.TempDir()
	root, proc = filepath.Join(base, "resctrl"), filepath.Join(base, "proc")
	if err := WriteTo(root, proc, m); err != nil {
		tb.Fatal(err)
	}
	return root, proc
}

// WriteTo lays out m's resctrl at root and its procfs files at proc.
func WriteTo(root, proc string, m Machine) error {
	files := map[string]string{}
	w := func(path, value string) { files[path] = value + "\n" }

	// The root group's schemata pads names to the longest, as the kernel's
	// show_doms does ("%*s:").
	width := 0
	for _, c := range m.Caches {
		width = max(width, len(c.Resource))
	}
	if m.MB != nil {
		width = max(width, 2)
	}
	var schemata strings.Builder
	for _, c := range m.Caches {
		dir := filepath.Join(root, "info", c.Resource)
		w(filepath.Join(dir, "cbm_mask"), fmt.Sprintf("%x", c.CBMMask))
		w(filepath.Join(dir, "min_cbm_bits"), fmt.Sprint(c.MinCBMBits))
		w(filepath.Join(dir, "shareable_bits"), fmt.Sprintf("%x", c.ShareableBits))
		w(filepath.Join(dir, "num_closids"), fmt.Sprint(c.NumCLOSIDs))
		w(filepath.Join(dir, "bit_usage"), bitUsage(c))
		w(filepath.Join(dir, "sparse_masks"), map[bool]string{false: "0", true: "1"}[c.Sparse])
		fmt.Fprintf(&schemata, "%*s:", width, c.Resource)
		digits := len(fmt.Sprintf("%x", c.CBMMask))
		for i, id := range c.IDs {
			if i > 0 {
				schemata.WriteByte(';')
			}
			fmt.Fprintf(&schemata, "%d=%0*x", id, digits, c.CBMMask)
		}
		schemata.WriteByte('\n')
	}
	if b := m.MB; b != nil {
		dir := filepath.Join(root, "info", "MB")
		w(filepath.Join(dir, "bandwidth_gran"), fmt.Sprint(b.Gran))
		w(filepath.Join(dir, "min_bandwidth"), fmt.Sprint(b.Min))
		w(filepath.Join(dir, "num_closids"), fmt.Sprint(b.NumCLOSIDs))
		w(filepath.Join(dir, "delay_linear"), map[bool]string{false: "0", true: "1"}[b.DelayLinear])
		w(filepath.Join(dir, "thread_throttle_mode"), "max")
		fmt.Fprintf(&schemata, "%*s:", width, "MB")
		for i, id := range b.IDs {
			if i > 0 {
				schemata.WriteByte(';')
			}
			fmt.Fprintf(&schemata, "%d=%*d", id, 3, b.Max)
		}
		schemata.WriteByte('\n')
	}
	if mon := m.Mon; mon != nil {
		dir := filepath.Join(root, "info", "L3_MON")
		w(filepath.Join(dir, "mon_features"), strings.Join(mon.Features, "\n"))
		w(filepath.Join(dir, "num_rmids"), fmt.Sprint(mon.NumRMIDs))
		w(filepath.Join(dir, "max_threshold_occupancy"), "1081344")
		for _, id := range mon.IDs {
			for _, f := range mon.Features {
				w(filepath.Join(root, "mon_data", fmt.Sprintf("mon_L3_%02d", id), f), "0")
			}
		}
		if err := os.MkdirAll(filepath.Join(root, "mon_groups"), 0o755); err != nil {
			return err
		}
	}
	w(filepath.Join(root, "info", "last_cmd_status"), "ok")
	files[filepath.Join(root, "schemata")] = schemata.String()
	w(filepath.Join(root, "tasks"), "1")
	w(filepath.Join(root, "cpus"), "ffffffff")
	w(filepath.Join(root, "mode"), "shareable")
	w(filepath.Join(root, "size"), "")

	opts := append([]string{"rw", "relatime"}, m.MountOptions...)
	w(filepath.Join(proc, "mounts"), fmt.Sprintf(
		"sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\nresctrl %s resctrl %s 0 0", root, strings.Join(opts, ",")))
	w(filepath.Join(proc, "filesystems"), "nodev\tsysfs\nnodev\tproc\nnodev\tresctrl\n\text4")
	w(filepath.Join(proc, "cpuinfo"), fmt.Sprintf("processor\t: 0\nvendor_id\t: %s\nflags\t\t: fpu sse2 %s", m.Vendor, strings.Join(m.Flags, " ")))
	for path, value := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// bitUsage is info/<res>/bit_usage of a fresh host: every way used by
// the default group only ("X" = shareable and used by software, "H" =
// used by hardware too).
func bitUsage(c Cache) string {
	var s []string
	for _, id := range c.IDs {
		var b strings.Builder
		for bit := 63; bit >= 0; bit-- {
			if c.CBMMask&(1<<bit) == 0 {
				continue
			}
			if c.ShareableBits&(1<<bit) != 0 {
				b.WriteByte('X')
			} else {
				b.WriteByte('S')
			}
		}
		s = append(s, fmt.Sprintf("%d=%s", id, b.String()))
	}
	return strings.Join(s, ";")
}

// SetMonData writes one monitoring counter of a group (its directory: the
// root, a class's, or a monitoring group's) for one L3 cache id, as the
// kernel shows it: a number, "Unavailable" or "Error".
func SetMonData(tb testing.TB, groupDir string, cacheID int, feature, value string) {
	tb.Helper()
	path := filepath.Join(groupDir, "mon_data", fmt.Sprintf("mon_L3_%02d", cacheID), feature)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
}
