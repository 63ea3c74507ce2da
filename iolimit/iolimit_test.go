package iolimit_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/iolimit"
)

func TestResolverByNumber(t *testing.T) {
	r := limiter(standardSys(t)).Resolver()
	d, err := r.ByNumber(cgroup.DevNum{Major: 8, Minor: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := iolimit.Device{Num: cgroup.DevNum{Major: 8}, Name: "sda", Partition: "sda1", Scheduler: "mq-deadline", Schedulers: []string{"none", "mq-deadline", "kyber", "bfq"}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("ByNumber(8:1) = %+v, want %+v", d, want)
	}
	d, err = r.ByNumber(cgroup.DevNum{Major: 7})
	if err != nil || d.Scheduler != "none" || d.Name != "loop0" {
		t.Errorf("ByNumber(7:0) = %+v, %v; want loop0 with scheduler none", d, err)
	}
	_, err = r.ByNumber(cgroup.DevNum{Major: 8, Minor: 99})
	if !errors.Is(err, iolimit.ErrUnknownDevice) || !strings.Contains(err.Error(), "8:99") {
		t.Errorf("unknown 8:99: %v, want ErrUnknownDevice naming it", err)
	}
	d, err = r.ByName("sda1")
	if err != nil || d.Num != (cgroup.DevNum{Major: 8}) {
		t.Errorf("ByName(sda1) = %+v, %v", d, err)
	}
	if _, err := r.ByName("sdz"); !errors.Is(err, iolimit.ErrUnknownDevice) {
		t.Errorf("ByName(sdz): %v", err)
	}
}

// TestResolverTmpfs resolves a path on this machine's /dev/shm (tmpfs) and
// on /proc: both have no block device, and the error says which
// filesystem.
func TestResolverNoBlockDevice(t *testing.T) {
	r := iolimit.NewResolver(iolimit.Options{})
	for _, p := range []string{"/dev/shm", "/proc/self/status"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s: %v", p, err)
		}
		_, err := r.ByPath(p)
		if !errors.Is(err, iolimit.ErrNoBlockDevice) {
			t.Errorf("ByPath(%s) = %v, want ErrNoBlockDevice", p, err)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "filesystem") {
			t.Errorf("ByPath(%s) error %q should name the path and its filesystem", p, err)
		}
	}
	if _, err := r.ByPath("/dev/null"); !errors.Is(err, iolimit.ErrNoBlockDevice) {
		t.Errorf("ByPath(/dev/null) = %v, want ErrNoBlockDevice (a character device)", err)
	}
}

// TestResolverRootFS resolves a file of this test's own directory to the
// disk below it; whatever this machine's disk, the answer must be a whole
// disk that sysfs knows.
func TestResolverRootFS(t *testing.T) {
	r := iolimit.NewResolver(iolimit.Options{})
	wd, _ := os.Getwd()
	d, err := r.ByPath(filepath.Join(wd, "device.go"))
	if errors.Is(err, iolimit.ErrNoBlockDevice) {
		t.Skipf("the source tree is on a filesystem without a block device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/sys/dev/block/" + d.Num.String() + "/dev")
	if err != nil || strings.TrimSpace(string(b)) != d.Num.String() {
		t.Errorf("resolved %v, but sysfs says %q, %v", d, b, err)
	}
	if _, err := os.Stat("/sys/dev/block/" + d.Num.String() + "/partition"); err == nil {
		t.Errorf("resolved %v is a partition", d)
	}
}

func TestValidateBadInput(t *testing.T) {
	sys := standardSys(t)
	l := limiter(sys)
	for _, tc := range []struct {
		name string
		s    iolimit.Settings
		want []string
	}{
		{"weight high", iolimit.Settings{Weight: 1001}, []string{"weight 1001", "[10, 1000]"}},
		{"weight low", iolimit.Settings{Weight: 5}, []string{"weight 5"}},
		{"device weight", iolimit.Settings{DeviceWeights: []iolimit.DeviceWeight{{Device: cgroup.DevNum{Major: 8}, Weight: 2000}}}, []string{"deviceWeights[0]", "2000"}},
		{"unknown device", iolimit.Settings{Limits: []iolimit.Limit{{Device: cgroup.DevNum{Major: 9, Minor: 9}, ReadBPS: 1}}}, []string{"limits[0]", "9:9", "unknown block device"}},
		{"partition", iolimit.Settings{Limits: []iolimit.Limit{{Device: cgroup.DevNum{Major: 8, Minor: 1}, ReadBPS: 1}}}, []string{"partition sda1", "use 8:0"}},
		{"twice", iolimit.Settings{Limits: []iolimit.Limit{{Device: cgroup.DevNum{Major: 8}, ReadBPS: 1}, {Device: cgroup.DevNum{Major: 8}, WriteBPS: 1}}}, []string{"limits[1]", "listed twice"}},
		{"huge", iolimit.Settings{Limits: []iolimit.Limit{{Device: cgroup.DevNum{Major: 8}, ReadIOPS: 1 << 60}}}, []string{"readIOPS", "above the maximum"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
				tree, cg := cgFixture(t, mode, cgrouptest.IOFiles{BFQ: true, Cost: true})
				before := snapshot(t, tree.Dir)
				_, err := l.Apply(cg, tc.s)
				if !errors.Is(err, iolimit.ErrInvalid) && !errors.Is(err, iolimit.ErrUnknownDevice) {
					t.Fatalf("%v: Apply(%+v) = %v, want an invalid-setting error", mode, tc.s, err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v: error %q does not name %q", mode, err, w)
					}
				}
				if after := snapshot(t, tree.Dir); !reflect.DeepEqual(before, after) {
					t.Errorf("%v: a rejected Apply changed files", mode)
				}
			}
		})
	}
}

// snapshot reads every file below dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "1Mi": 1 << 20, "50M": 50e6, "10k": 10000, "1048576": 1 << 20} {
		got, err := iolimit.ParseRate("ThrottleReadBps", in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1M", "fast", "1 MB/s", ""} {
		_, err := iolimit.ParseRate("ThrottleReadBps", in)
		if !errors.Is(err, iolimit.ErrInvalid) || !strings.Contains(err.Error(), "ThrottleReadBps") || !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseRate(%q) = %v, want ErrInvalid naming field and value", in, err)
		}
	}
	if _, err := iolimit.ParseWeight("Weight", "5000"); !errors.Is(err, iolimit.ErrInvalid) || !strings.Contains(err.Error(), "5000") {
		t.Errorf("ParseWeight(5000) = %v", err)
	}
}

// TestApplyV1 applies settings to a v1 fixture cgroup and reads them back;
// then a second Apply without the limit lifts it.
func TestApplyV1(t *testing.T) {
	sys := standardSys(t)
	l := limiter(sys)
	tree, cg := cgFixture(t, cgroup.V1, cgrouptest.IOFiles{BFQ: true})
	s := iolimit.Settings{
		Weight:        400,
		DeviceWeights: []iolimit.DeviceWeight{{Device: cgroup.DevNum{Major: 259}, Weight: 200}, {Device: cgroup.DevNum{Major: 8}, Weight: 300}},
		Limits:        []iolimit.Limit{{Device: cgroup.DevNum{Major: 8}, ReadBPS: 1 << 20, WriteIOPS: 100}},
	}
	rep, err := l.Apply(cg, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("blkio", "/pods/c1", "blkio.bfq.weight"); got != "400" {
		t.Errorf("blkio.bfq.weight = %q", got)
	}
	// nvme0n1 runs bfq: its device weight is written; sda does not, so the
	// kernel would refuse it and the report says why.
	if got, _ := tree.ReadFile("blkio", "/pods/c1", "blkio.bfq.weight_device"); got != "259:0 200" {
		t.Errorf("blkio.bfq.weight_device = %q", got)
	}
	if len(rep.Ineffective) != 1 || !errors.Is(rep.Ineffective[0], iolimit.ErrWeightIneffective) ||
		!strings.Contains(rep.Ineffective[0].Error(), "sda (8:0)") || !strings.Contains(rep.Ineffective[0].Error(), "mq-deadline") {
		t.Errorf("report = %v, want one ineffective weight on sda naming its scheduler", rep.Ineffective)
	}
	if got, _ := tree.ReadFile("blkio", "/pods/c1", "blkio.throttle.read_bps_device"); got != "8:0 1048576" {
		t.Errorf("read_bps_device = %q", got)
	}
	// The fixture cannot merge lines as the kernel does; show the kernel's
	// view and lift the limit.
	_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.read_bps_device", "8:0 1048576\n")
	_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.write_iops_device", "8:0 100\n")
	_ = tree.WriteFile("blkio", "/pods/c1", "blkio.bfq.weight_device", "default 400\n259:0 200\n")
	st, err := l.Read(cg)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Limits) != 1 || st.Limits[0].ReadBPS != 1<<20 || st.BFQ == nil || st.BFQ.Default != 400 || st.Cost != nil {
		t.Errorf("Read = %+v", st)
	}
	if _, err := l.Apply(cg, iolimit.Settings{}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"blkio.throttle.read_bps_device": "8:0 0", "blkio.throttle.write_iops_device": "8:0 0",
		"blkio.bfq.weight_device": "259:0 default", "blkio.bfq.weight": "400",
	} {
		if got, _ := tree.ReadFile("blkio", "/pods/c1", file); got != want {
			t.Errorf("after lifting: %s = %q, want %q", file, got, want)
		}
	}
}

// TestApplyV2 writes both v2 weight knobs where present, io.weight on the
// runc scale.
func TestApplyV2(t *testing.T) {
	sys := standardSys(t)
	l := limiter(sys)
	tree, cg := cgFixture(t, cgroup.V2, cgrouptest.IOFiles{BFQ: true, Cost: true})
	if _, err := l.Apply(cg, iolimit.Settings{Weight: 100, Limits: []iolimit.Limit{{Device: cgroup.DevNum{Major: 7}, WriteBPS: 5 << 20}}}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"io.bfq.weight": "default 100", "io.weight": "default 910", "io.max": "7:0 rbps=max wbps=5242880 riops=max wiops=max",
	} {
		if got, _ := tree.ReadFile("", "/pods/c1", file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

// TestApplyV2DeviceWeightWithoutIOCost: a device weight for a device with
// neither bfq nor iocost is reported ineffective and written to no file:
// the kernel refuses "8:0 N" in io.weight (EOPNOTSUPP) where iocost is not
// enabled for the device, and in io.bfq.weight where bfq does not run it.
// With iocost enabled for the device, io.weight gets it.
func TestApplyV2DeviceWeightWithoutIOCost(t *testing.T) {
	sys := standardSys(t)
	l := limiter(sys)
	tree, cg := cgFixture(t, cgroup.V2, cgrouptest.IOFiles{BFQ: true, Cost: true})
	s := iolimit.Settings{DeviceWeights: []iolimit.DeviceWeight{{Device: cgroup.DevNum{Major: 8}, Weight: 100}}}
	rep, err := l.Apply(cg, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ineffective) != 1 || !strings.Contains(rep.Ineffective[0].Error(), "io.weight needs iocost enabled for 8:0") {
		t.Errorf("report = %v, want the weight ineffective for want of iocost or bfq", rep.Ineffective)
	}
	for _, file := range []string{"io.weight", "io.bfq.weight"} {
		if got, _ := tree.ReadFile("", "/pods/c1", file); strings.Contains(got, "8:0") {
			t.Errorf("%s = %q: a device weight the kernel refuses was written", file, got)
		}
	}
	_ = tree.WriteFile("", "/", "io.cost.qos", "8:0 enable=1 ctrl=auto\n")
	if rep, err := l.Apply(cg, s); err != nil || len(rep.Ineffective) != 0 {
		t.Fatalf("with iocost: %v, %v", rep.Ineffective, err)
	}
	if got, _ := tree.ReadFile("", "/pods/c1", "io.weight"); got != "8:0 910" {
		t.Errorf("with iocost enabled for 8:0: io.weight = %q, want \"8:0 910\"", got)
	}
}

func TestWeightEffect(t *testing.T) {
	sys := standardSys(t)
	l := limiter(sys)
	r := l.Resolver()
	sda, _ := r.ByName("sda")
	nvme, _ := r.ByName("nvme0n1")
	loop, _ := r.ByName("loop0")
	for _, tc := range []struct {
		name  string
		mode  cgroup.Mode
		files cgrouptest.IOFiles
		qos   string
		dev   iolimit.Device
		knob  cgroup.IOWeightKnob
		why   []string
	}{
		{"v1 bfq", cgroup.V1, cgrouptest.IOFiles{BFQ: true}, "", nvme, cgroup.IOWeightBFQ, nil},
		{"v1 mq-deadline", cgroup.V1, cgrouptest.IOFiles{BFQ: true}, "", sda, 0, []string{"blkio.weight is absent", "blkio.bfq.weight needs the bfq scheduler", "echo bfq > /sys/block/sda/queue/scheduler"}},
		{"v1 no bfq offered", cgroup.V1, cgrouptest.IOFiles{BFQ: true}, "", loop, 0, []string{"does not offer"}},
		{"v1 no bfq module", cgroup.V1, cgrouptest.IOFiles{}, "", sda, 0, []string{"blkio.bfq.weight is absent"}},
		{"v2 bfq", cgroup.V2, cgrouptest.IOFiles{BFQ: true, Cost: true}, "", nvme, cgroup.IOWeightBFQ, nil},
		{"v2 iocost", cgroup.V2, cgrouptest.IOFiles{BFQ: true, Cost: true}, "8:0 enable=1 ctrl=auto\n", sda, cgroup.IOWeightCost, nil},
		{"v2 neither", cgroup.V2, cgrouptest.IOFiles{BFQ: true, Cost: true}, "", sda, 0, []string{"io.weight needs iocost enabled for 8:0", "io.bfq.weight needs the bfq scheduler"}},
		{"v2 no iocost", cgroup.V2, cgrouptest.IOFiles{BFQ: true}, "", sda, 0, []string{"io.weight is absent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree, cg := cgFixture(t, tc.mode, tc.files)
			if tc.qos != "" {
				_ = tree.WriteFile("", "/", "io.cost.qos", tc.qos)
			}
			knob, err := l.WeightEffect(cg, tc.dev)
			if knob != tc.knob {
				t.Errorf("knob = %v, want %v (err %v)", knob, tc.knob, err)
			}
			if tc.why == nil {
				if err != nil {
					t.Errorf("unexpected: %v", err)
				}
				return
			}
			if !errors.Is(err, iolimit.ErrWeightIneffective) {
				t.Fatalf("err = %v, want ErrWeightIneffective", err)
			}
			for _, w := range tc.why {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

func TestClasses(t *testing.T) {
	sys := standardSys(t)
	l := limiter(sys)
	// Device nodes are block special files, which only root may create;
	// patterns that match nothing exercise the rest without them.
	cfg, err := iolimit.ParseConfig([]byte(`
Classes:
  BestEffort:
    - Weight: "80"
    - Devices: ["/dev/sd[a-z]"]
      ThrottleReadBps: 50M
  HighPrio:
    - Weight: "400"
`))
	if err != nil {
		t.Fatal(err)
	}
	classes, err := l.Classes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]iolimit.Settings{"BestEffort": {Weight: 80}, "HighPrio": {Weight: 400}}
	if !reflect.DeepEqual(classes, want) {
		t.Errorf("Classes = %+v, want %+v", classes, want)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"Classes:\n  X:\n    - Weight: \"5\"\n", `class "X" entry 0 Weight: "5" out of range`},
		{"Classes:\n  X:\n    - ThrottleReadBps: 1M\n", "throttling needs Devices"},
		{"Classes:\n  X:\n    - Devices: [/dev/sda]\n      ThrottleWriteIOPS: \"-5\"\n", `ThrottleWriteIOPS: "-5" is negative`},
		{"Classes:\n  X:\n    - Devices: [/dev/sda]\n      ThrottleReadBps: lots\n", `ThrottleReadBps: "lots" is not a quantity`},
	} {
		cfg, err := iolimit.ParseConfig([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Classes(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := iolimit.ParseConfig([]byte("Classes:\n  X:\n    - Wieght: 5\n")); err == nil {
		t.Error("unknown field accepted")
	}
}
