package rdt

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/rdt/rdttest"
)

func open(t *testing.T, m rdttest.Machine) *Resctrl {
	t.Helper()
	root, proc := rdttest.Write(t, m)
	r, err := Open(Options{Root: root, ProcRoot: proc})
	if err != nil {
		t.Fatalf("open %s: %v", m.Name, err)
	}
	return r
}

func TestOpenFixtures(t *testing.T) {
	amdIDs := []int{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}
	for _, tc := range []struct {
		m          rdttest.Machine
		cdp, alloc bool
		closids    int
		ways       int
		l3IDs      []int
		mb         *MBInfo
		rmids      int
	}{
		{rdttest.IntelL3MBA, false, true, 8, 11, []int{0, 1}, &MBInfo{Mode: MBPercent, Granularity: 10, Min: 10, Max: 100, DelayLinear: true, NumCLOSIDs: 8, CacheIDs: []int{0, 1}}, 176},
		{rdttest.IntelCDP, true, true, 8, 12, []int{0, 1}, &MBInfo{Mode: MBPercent, Granularity: 10, Min: 10, Max: 100, DelayLinear: true, NumCLOSIDs: 8, CacheIDs: []int{0, 1}}, 144},
		{rdttest.AMDEPYC, false, true, 16, 16, amdIDs, &MBInfo{Mode: MBAbsolute, Granularity: 1, Min: 0, Max: 2048, NumCLOSIDs: 16, CacheIDs: amdIDs}, 256},
		{rdttest.MonitoringOnly, false, false, 0, 0, nil, nil, 56},
		{rdttest.IntelSparse, false, true, 15, 15, []int{0, 1}, &MBInfo{Mode: MBPercent, Granularity: 10, Min: 10, Max: 100, DelayLinear: true, NumCLOSIDs: 15, CacheIDs: []int{0, 1}}, 256},
	} {
		t.Run(tc.m.Name, func(t *testing.T) {
			info := open(t, tc.m).Info()
			if info.CDP() != tc.cdp || info.Allocation() != tc.alloc || info.NumCLOSIDs() != tc.closids {
				t.Errorf("CDP %v allocation %v closids %d, want %v %v %d", info.CDP(), info.Allocation(), info.NumCLOSIDs(), tc.cdp, tc.alloc, tc.closids)
			}
			if l3 := info.L3Info(); tc.ways > 0 && (l3 == nil || l3.Ways() != tc.ways || !slices.Equal(l3.CacheIDs, tc.l3IDs)) {
				t.Errorf("L3 %+v, want %d ways on cache ids %v", l3, tc.ways, tc.l3IDs)
			}
			if (info.MB == nil) != (tc.mb == nil) || info.MB != nil && (info.MB.Mode != tc.mb.Mode || info.MB.Granularity != tc.mb.Granularity ||
				info.MB.Min != tc.mb.Min || info.MB.Max != tc.mb.Max || info.MB.DelayLinear != tc.mb.DelayLinear || !slices.Equal(info.MB.CacheIDs, tc.mb.CacheIDs)) {
				t.Errorf("MB %+v, want %+v", info.MB, tc.mb)
			}
			if info.Mon == nil || info.Mon.NumRMIDs != tc.rmids || !info.Mon.Has(LLCOccupancy) {
				t.Errorf("monitoring %+v, want %d RMIDs with llc_occupancy", info.Mon, tc.rmids)
			}
		})
	}
}

func TestOpenMBpsMount(t *testing.T) {
	m := rdttest.IntelL3MBA
	m.MountOptions = []string{"mba_MBps"}
	m.MB = &rdttest.Bandwidth{Gran: 10, Min: 10, DelayLinear: true, NumCLOSIDs: 8, Max: 1<<32 - 1, IDs: []int{0, 1}}
	r := open(t, m)
	if mb := r.Info().MB; mb.Mode != MBMBps || mb.Max != 1<<32-1 {
		t.Fatalf("MB %+v, want MBps up to 2^32-1", mb)
	}
	s, err := r.Resolve("batch", ClassSpec{MB: mbConfig("all", "50%", "2000MBps")})
	if err != nil || s.String() != "MB:0=2000;1=2000\n" {
		t.Fatalf("resolve: %q, %v; want MB 2000 on both", s, err)
	}
}

// On this machine (an AMD VM without RDT) Open must say why, naming what is
// missing; on a host with resctrl mounted it must succeed.
func TestOpenHost(t *testing.T) {
	r, err := Open(Options{})
	absent := testutil.Resctrl.Absent()
	if absent == "" {
		if err != nil && !strings.Contains(err.Error(), "not mounted") {
			t.Fatalf("the CPU has RDT flags but Open failed: %v", err)
		}
		t.Logf("host: %v %v", r, err)
		return
	}
	var nse *NotSupportedError
	if !errors.As(err, &nse) || !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Open on a host without RDT: %v, want a *NotSupportedError", err)
	}
	if !strings.Contains(nse.Reason, "no RDT flags") {
		t.Errorf("reason %q does not say the CPU lacks RDT", nse.Reason)
	}
	t.Logf("as expected: %v", err)
}

func TestOpenNotMounted(t *testing.T) {
	root, proc := rdttest.Write(t, rdttest.IntelL3MBA)
	// The kernel has resctrl, but nothing is mounted.
	if err := os.WriteFile(filepath.Join(proc, "mounts"), []byte("sysfs /sys sysfs rw 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Root: root, ProcRoot: proc})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "mount -t resctrl resctrl "+root) {
		t.Fatalf("got %v, want not-supported with the mount command", err)
	}
	// No resctrl in the kernel, though the CPU has RDT.
	if err := os.WriteFile(filepath.Join(proc, "filesystems"), []byte("nodev\tproc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Root: root, ProcRoot: proc})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "the CPU has rdt_a, cat_l3") {
		t.Fatalf("got %v, want not-supported naming the CPU's flags", err)
	}
	// Mounted elsewhere.
	if err := os.WriteFile(filepath.Join(proc, "mounts"), []byte("resctrl /mnt/rdt resctrl rw 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Root: root, ProcRoot: proc})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "mounted at /mnt/rdt") {
		t.Fatalf("got %v, want not-supported naming the other mount", err)
	}
	// Found from /proc/mounts when no root is given.
	if err := os.WriteFile(filepath.Join(proc, "mounts"), []byte("resctrl "+strings.ReplaceAll(root, " ", `\040`)+" resctrl rw,cdp 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(Options{ProcRoot: proc})
	if err != nil || r.Root() != root || !slices.Contains(r.Info().MountOptions, "cdp") {
		t.Fatalf("open from /proc/mounts: %v, %v", r, err)
	}
}

func TestParseSchemataKernelFormat(t *testing.T) {
	// As a CDP host's kernel prints it: names padded, masks zero-padded,
	// bandwidth space-padded.
	s, err := ParseSchemata("L3CODE:0=00ff;1=0fff\nL3DATA:0=0ff0;1=0fff\n    MB:0= 50;1=100\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "L3CODE:0=ff;1=fff\nL3DATA:0=ff0;1=fff\nMB:0=50;1=100\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"L3", "L3:0", "L3:x=ff", "L3:0=zz", "MB:0=ff"} {
		if _, err := ParseSchemata(bad); err == nil {
			t.Errorf("ParseSchemata(%q) succeeded", bad)
		}
	}
}
