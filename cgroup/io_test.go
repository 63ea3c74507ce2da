package cgroup_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
)

func ioFixture(t testing.TB, mode cgroup.Mode, files cgrouptest.IOFiles) (*cgrouptest.Tree, *cgroup.Cgroup) {
	t.Helper()
	return cgrouptest.NewIOCgroup(t, mode, files, "/pods/c1")
}

// TestIOMaxV2 covers cgroup v2's io.max: one line per write, "max" for no
// limit (so an all-zero limit removes the device), and reading back a file
// the kernel shows with several devices.
func TestIOMaxV2(t *testing.T) {
	tree, cg := ioFixture(t, cgroup.V2, cgrouptest.IOFiles{})
	dev := cgroup.DevNum{Major: 8, Minor: 0}
	if err := cg.SetIOLimit(cgroup.IOLimit{Device: dev, ReadBPS: 1 << 20, WriteIOPS: 100}); err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("", "/pods/c1", "io.max"); got != "8:0 rbps=1048576 wbps=max riops=max wiops=100" {
		t.Errorf("io.max write = %q", got)
	}
	if err := cg.SetIOLimit(cgroup.IOLimit{Device: dev}); err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("", "/pods/c1", "io.max"); got != "8:0 rbps=max wbps=max riops=max wiops=max" {
		t.Errorf("io.max removal = %q", got)
	}
	// As the kernel shows it: only devices with a limit, every key.
	if err := tree.WriteFile("", "/pods/c1", "io.max",
		"8:0 rbps=1048576 wbps=max riops=max wiops=max\n253:0 rbps=max wbps=2097152 riops=500 wiops=max\n7:3 rbps=max wbps=max riops=max wiops=42\n"); err != nil {
		t.Fatal(err)
	}
	got, err := cg.IOLimits()
	if err != nil {
		t.Fatal(err)
	}
	want := []cgroup.IOLimit{
		{Device: cgroup.DevNum{Major: 7, Minor: 3}, WriteIOPS: 42},
		{Device: dev, ReadBPS: 1 << 20},
		{Device: cgroup.DevNum{Major: 253, Minor: 0}, WriteBPS: 2 << 20, ReadIOPS: 500},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IOLimits = %+v, want %+v", got, want)
	}
	_ = tree.WriteFile("", "/pods/c1", "io.max", "8:0 rbps=lots\n")
	var fe *cgroup.FileError
	if _, err := cg.IOLimits(); !errors.As(err, &fe) || !strings.Contains(err.Error(), "rbps=lots") {
		t.Errorf("malformed io.max: %v, want a FileError naming the line", err)
	}
}

// TestIOLimitV1 covers the four blkio.throttle files: a limit writes all
// four ("0" removes), and reading merges them per device.
func TestIOLimitV1(t *testing.T) {
	tree, cg := ioFixture(t, cgroup.V1, cgrouptest.IOFiles{BFQ: true})
	dev := cgroup.DevNum{Major: 7, Minor: 0}
	if err := cg.SetIOLimit(cgroup.IOLimit{Device: dev, ReadBPS: 1 << 20, WriteIOPS: 50}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"blkio.throttle.read_bps_device": "7:0 1048576", "blkio.throttle.write_bps_device": "7:0 0",
		"blkio.throttle.read_iops_device": "7:0 0", "blkio.throttle.write_iops_device": "7:0 50",
	} {
		if got, _ := tree.ReadFile("blkio", "/pods/c1", file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// The kernel lists only devices with a rule, in each file.
	_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.read_bps_device", "7:0 1048576\n8:16 5000\n")
	_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.write_bps_device", "")
	_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.read_iops_device", "8:16 7\n")
	got, err := cg.IOLimits()
	if err != nil {
		t.Fatal(err)
	}
	want := []cgroup.IOLimit{{Device: dev, ReadBPS: 1 << 20, WriteIOPS: 50}, {Device: cgroup.DevNum{Major: 8, Minor: 16}, ReadBPS: 5000, ReadIOPS: 7}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IOLimits = %+v, want %+v", got, want)
	}
}

// TestIOLimitV1NothingWrittenOnError breaks the third of the four files (a
// directory in its place) and checks that no file was written.
func TestIOLimitV1NothingWrittenOnError(t *testing.T) {
	tree, cg := ioFixture(t, cgroup.V1, cgrouptest.IOFiles{})
	dir := tree.ControllerDir("blkio", "/pods/c1")
	_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.read_bps_device", "7:0 999\n")
	_ = os.Remove(filepath.Join(dir, "blkio.throttle.read_iops_device"))
	if err := os.Mkdir(filepath.Join(dir, "blkio.throttle.read_iops_device"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := cg.SetIOLimit(cgroup.IOLimit{Device: cgroup.DevNum{Major: 7}, ReadBPS: 1, WriteBPS: 2, ReadIOPS: 3})
	if err == nil {
		t.Fatal("SetIOLimit succeeded with an unwritable file")
	}
	if got, _ := tree.ReadFile("blkio", "/pods/c1", "blkio.throttle.read_bps_device"); got != "7:0 999" {
		t.Errorf("read_bps_device after failure = %q, want the old 7:0 999", got)
	}
	if got, _ := tree.ReadFile("blkio", "/pods/c1", "blkio.throttle.write_bps_device"); got != "" {
		t.Errorf("write_bps_device after failure = %q, want it untouched", got)
	}
}

func TestIOWeights(t *testing.T) {
	for _, tc := range []struct {
		mode          cgroup.Mode
		knob          cgroup.IOWeightKnob
		file, devFile string
		def, dev, del string
		show          string
	}{
		{cgroup.V1, cgroup.IOWeightBFQ, "blkio.bfq.weight", "blkio.bfq.weight_device", "400", "7:0 200", "7:0 default", "100\n"},
		{cgroup.V2, cgroup.IOWeightBFQ, "io.bfq.weight", "io.bfq.weight", "default 400", "7:0 200", "7:0 default", "default 100\n"},
		{cgroup.V2, cgroup.IOWeightCost, "io.weight", "io.weight", "default 400", "7:0 200", "7:0 default", "default 100\n"},
	} {
		t.Run(tc.mode.String()+" "+tc.file, func(t *testing.T) {
			tree, cg := ioFixture(t, tc.mode, cgrouptest.IOFiles{BFQ: true, Cost: true})
			if !cg.HasIOWeight(tc.knob) {
				t.Fatalf("HasIOWeight(%v) = false", tc.knob)
			}
			if err := cg.SetIOWeight(tc.knob, 400); err != nil {
				t.Fatal(err)
			}
			if got, _ := tree.ReadFile("blkio", "/pods/c1", tc.file); got != tc.def {
				t.Errorf("%s = %q, want %q", tc.file, got, tc.def)
			}
			dev := cgroup.DevNum{Major: 7}
			if err := cg.SetIODeviceWeight(tc.knob, dev, 200); err != nil {
				t.Fatal(err)
			}
			if got, _ := tree.ReadFile("blkio", "/pods/c1", tc.devFile); got != tc.dev {
				t.Errorf("%s = %q, want %q", tc.devFile, got, tc.dev)
			}
			if err := cg.SetIODeviceWeight(tc.knob, dev, 0); err != nil {
				t.Fatal(err)
			}
			if got, _ := tree.ReadFile("blkio", "/pods/c1", tc.devFile); got != tc.del {
				t.Errorf("%s = %q, want %q", tc.devFile, got, tc.del)
			}
			// As the kernel shows them.
			_ = tree.WriteFile("blkio", "/pods/c1", tc.file, tc.show)
			if tc.devFile != tc.file {
				_ = tree.WriteFile("blkio", "/pods/c1", tc.devFile, "default 100\n7:0 200\n")
			} else {
				_ = tree.WriteFile("blkio", "/pods/c1", tc.file, tc.show+"8:16 50\n7:0 200\n")
			}
			w, err := cg.IOWeight(tc.knob)
			if err != nil {
				t.Fatal(err)
			}
			want := cgroup.IOWeights{Default: 100, Devices: []cgroup.IODeviceWeight{{Device: dev, Weight: 200}}}
			if tc.devFile == tc.file {
				want.Devices = append(want.Devices, cgroup.IODeviceWeight{Device: cgroup.DevNum{Major: 8, Minor: 16}, Weight: 50})
			}
			if !reflect.DeepEqual(w, want) {
				t.Errorf("IOWeight = %+v, want %+v", w, want)
			}
			lo, hi := cgroup.IOWeightRange(tc.mode, tc.knob)
			if err := cg.SetIOWeight(tc.knob, hi+1); err == nil || !strings.Contains(err.Error(), "out of range") {
				t.Errorf("weight %d: %v, want out of range", hi+1, err)
			}
			if err := cg.SetIOWeight(tc.knob, lo-1); err == nil {
				t.Errorf("weight %d accepted", lo-1)
			}
		})
	}
}

func TestIOWeightAbsent(t *testing.T) {
	_, cg := ioFixture(t, cgroup.V1, cgrouptest.IOFiles{BFQ: true})
	if cg.HasIOWeight(cgroup.IOWeightCost) {
		t.Error("blkio.weight reported present")
	}
	if err := cg.SetIOWeight(cgroup.IOWeightCost, 100); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("SetIOWeight(cost) on a kernel without blkio.weight: %v, want ErrNotSupported", err)
	}
}

func TestIOLatencyAndCost(t *testing.T) {
	tree, cg := ioFixture(t, cgroup.V2, cgrouptest.IOFiles{Cost: true, Latency: true})
	dev := cgroup.DevNum{Major: 259, Minor: 0}
	if err := cg.SetIOLatency(dev, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("", "/pods/c1", "io.latency"); got != "259:0 target=5000" {
		t.Errorf("io.latency = %q", got)
	}
	if err := cg.SetIOLatency(dev, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("", "/pods/c1", "io.latency"); got != "259:0 target=max" {
		t.Errorf("io.latency removal = %q", got)
	}
	_ = tree.WriteFile("", "/pods/c1", "io.latency", "259:0 target=5000\n8:0 target=75\n")
	lat, err := cg.IOLatency()
	if err != nil {
		t.Fatal(err)
	}
	if lat[dev] != 5*time.Millisecond || lat[cgroup.DevNum{Major: 8}] != 75*time.Microsecond {
		t.Errorf("IOLatency = %v", lat)
	}
	h := cg.Hierarchy()
	if on, err := h.IOCostEnabled(dev); err != nil || on {
		t.Errorf("IOCostEnabled on an empty io.cost.qos = %v, %v", on, err)
	}
	_ = tree.WriteFile("", "/", "io.cost.qos", "259:0 enable=1 ctrl=auto rpct=0.00 rlat=250000 wpct=0.00 wlat=250000 min=1.00 max=10000.00\n8:0 enable=0 ctrl=auto rpct=0.00 rlat=250000 wpct=0.00 wlat=250000 min=1.00 max=10000.00\n")
	if on, err := h.IOCostEnabled(dev); err != nil || !on {
		t.Errorf("IOCostEnabled(259:0) = %v, %v", on, err)
	}
	if on, _ := h.IOCostEnabled(cgroup.DevNum{Major: 8}); on {
		t.Error("IOCostEnabled(8:0) with enable=0")
	}
	_, v1 := ioFixture(t, cgroup.V1, cgrouptest.IOFiles{})
	if err := v1.SetIOLatency(dev, time.Millisecond); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("io.latency on v1: %v, want ErrNotSupported", err)
	}
}

// Real file contents (Linux 6.18): v1 lists Read/Write/Sync/Async/Discard/
// Total per device and a grand Total; v2 one line per device.
const (
	v1ServiceBytes = "7:0 Read 2097152\n7:0 Write 4096\n7:0 Sync 2101248\n7:0 Async 0\n7:0 Discard 0\n7:0 Total 2101248\n254:0 Read 512\n254:0 Write 0\n254:0 Sync 0\n254:0 Async 512\n254:0 Discard 0\n254:0 Total 512\nTotal 2101760\n"
	v1Serviced     = "7:0 Read 512\n7:0 Write 1\n7:0 Sync 513\n7:0 Async 0\n7:0 Discard 0\n7:0 Total 513\n254:0 Read 1\n254:0 Write 0\n254:0 Sync 0\n254:0 Async 1\n254:0 Discard 0\n254:0 Total 1\nTotal 514\n"
	v2IOStat       = "7:0 rbytes=2097152 wbytes=4096 rios=512 wios=1 dbytes=0 dios=0\n254:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=12\n"
)

func TestIOStats(t *testing.T) {
	want := []cgroup.IOStat{
		{Device: cgroup.DevNum{Major: 7}, ReadBytes: 2 << 20, WriteBytes: 4096, ReadIOs: 512, WriteIOs: 1},
		{Device: cgroup.DevNum{Major: 254}, ReadBytes: 512, ReadIOs: 1},
	}
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		tree, cg := ioFixture(t, mode, cgrouptest.IOFiles{})
		if mode == cgroup.V2 {
			_ = tree.WriteFile("", "/pods/c1", "io.stat", v2IOStat)
		} else {
			_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.io_service_bytes", v1ServiceBytes)
			_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.io_serviced", v1Serviced)
		}
		got, err := cg.IOStats()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: IOStats = %+v, want %+v", mode, got, want)
		}
	}
	_, cg := ioFixture(t, cgroup.V1, cgrouptest.IOFiles{})
	srcs, _ := cg.IOStatSources()
	if _, err := srcs[0].Parse([]byte("7:0 Read twelve\n"), nil); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("malformed stat: %v, want an error naming line 1", err)
	}
}

// TestIOStatParseAllocatesNothing guards the sampler's goal: re-reading
// statistics into a slice with room allocates nothing.
func TestIOStatParseAllocatesNothing(t *testing.T) {
	_, cg := ioFixture(t, cgroup.V1, cgrouptest.IOFiles{})
	srcs, _ := cg.IOStatSources()
	stats := make([]cgroup.IOStat, 0, 4)
	b1, b2 := []byte(v1ServiceBytes), []byte(v1Serviced)
	allocs := testing.AllocsPerRun(100, func() {
		s, _ := srcs[0].Parse(b1, stats[:0])
		_, _ = srcs[1].Parse(b2, s)
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %.1f times per pass, want 0", allocs)
	}
}

func BenchmarkIOStatParseV2(b *testing.B) {
	_, cg := ioFixture(b, cgroup.V2, cgrouptest.IOFiles{})
	srcs, _ := cg.IOStatSources()
	stats := make([]cgroup.IOStat, 0, 4)
	data := []byte(v2IOStat)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := srcs[0].Parse(data, stats[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
