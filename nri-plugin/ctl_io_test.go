package nriplugin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/isolation"
)

// ioSysfs is a sysfs fixture with one disk, vda (254:0) under mq-deadline.
func ioSysfs(t *testing.T) string {
	root := t.TempDir()
	dir := filepath.Join(root, "devices/virtual/block/vda")
	for name, content := range map[string]string{"dev": "254:0\n", "queue/scheduler": "none [mq-deadline] bfq\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "dev/block"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../devices/virtual/block/vda", filepath.Join(root, "dev/block/254:0")); err != nil {
		t.Fatal(err)
	}
	return root
}

func ioPlan(throttled bool) *isolation.Plan {
	batch := isolation.IOPlan{Weight: isolation.DefaultBatchIOWeight, Limits: []isolation.IOPlanLimit{{Device: "254:0", ReadBPS: 100 << 20}}}
	if throttled {
		batch = isolation.IOPlan{Weight: 10, Limits: []isolation.IOPlanLimit{{Device: "254:0", ReadBPS: 1 << 20}}, Throttled: true,
			Reason: "throttled: pool online IO PSI some 35.0% ≥ 20.0%"}
	}
	return &isolation.Plan{Pools: []isolation.PoolPlan{
		{Name: isolation.PoolLatencyCritical}, {Name: isolation.PoolOnline}, {Name: isolation.PoolBatch, IO: batch},
	}}
}

// On a hybrid v1 fixture: members' IO statistics and io.pressure reach the
// observations per pool; a pool's section is written to its members'
// blkio files, only when it changes; lifting the throttle restores the
// profile's limit; status tells the v1 writeback caveat, the limits and
// the pressure.
func TestIOControllerAppliesPools(t *testing.T) {
	tree, err := cgrouptest.New(t.TempDir(), cgroup.Hybrid, "0-3", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"/", "/pods/web", "/pods/scan"} {
		if err := tree.AddCgroup(rel); err != nil {
			t.Fatal(err)
		}
		if err := tree.AddIO(rel, cgrouptest.IOFiles{BFQ: true}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := tree.Hierarchy()
	if err != nil {
		t.Fatal(err)
	}
	cfg := isolation.DefaultConfig()
	cfg.Pools[2].Profile.IO = isolation.IOProfile{Limits: []isolation.IODeviceLimit{{Device: "254:0", ReadBPS: 100 << 20}}}
	c := NewIOController(IOOptions{})
	env := ControllerEnv{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Cgroups: h, SysfsRoot: ioSysfs(t), ProcRoot: "/proc",
		Config: func() *isolation.Config { return cfg }}
	if err := c.Start(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	open := func(rel string) *cgroup.Cgroup {
		cg, err := h.Open(rel)
		if err != nil {
			t.Fatal(err)
		}
		return cg
	}
	web := Member{ID: "web1", Name: "web", Pool: isolation.PoolOnline, Cgroup: open("/pods/web")}
	scan := Member{ID: "scan1", Name: "scan", Pool: isolation.PoolBatch, Cgroup: open("/pods/scan")}
	for _, m := range []Member{web, scan} {
		if err := c.ContainerAdmitted(m); err != nil {
			t.Fatal(err)
		}
	}
	// Two readings: the online member under IO pressure, batch reading.
	_ = os.WriteFile(filepath.Join(tree.UnifiedDir("/pods/web"), "io.pressure"), []byte("some avg10=35.00 avg60=10.00 avg300=2.00 total=5000000\nfull avg10=30.00 avg60=8.00 avg300=1.00 total=4000000\n"), 0o644)
	stat := func(bytes string) {
		_ = tree.WriteFile("blkio", "/pods/scan", "blkio.throttle.io_service_bytes", "254:0 Read "+bytes+"\n254:0 Write 0\n254:0 Total "+bytes+"\nTotal "+bytes+"\n")
		_ = tree.WriteFile("blkio", "/pods/scan", "blkio.throttle.io_serviced", "254:0 Read 10\n254:0 Write 0\n254:0 Total 10\nTotal 10\n")
	}
	stat("0")
	obs := isolation.Observations{Pools: map[string]isolation.PoolObservation{}}
	if err := c.Observe(&obs); err != nil {
		t.Fatal(err)
	}
	stat("104857600")
	obs = isolation.Observations{Pools: map[string]isolation.PoolObservation{}}
	if err := c.Observe(&obs); err != nil {
		t.Fatal(err)
	}
	if o := obs.Pools[isolation.PoolOnline].IO; !o.Measured || o.PSISome != 35 || o.PSIFull != 30 {
		t.Errorf("online IO observation = %+v, want PSI some 35, full 30", o)
	}
	b := obs.Pools[isolation.PoolBatch].IO
	if b.ReadBPS <= 100<<20 || b.Capacity["254:0"].ReadBPS != b.ReadBPS {
		t.Errorf("batch IO observation = %+v, want > 100 MiB/s read (100 MiB in well under a second) and that as 254:0's capacity", b)
	}

	if err := c.ApplyPools(ioPlan(false)); err != nil {
		t.Fatal(err)
	}
	read := func(file string) string {
		s, _ := tree.ReadFile("blkio", "/pods/scan", file)
		return s
	}
	if got := read("blkio.throttle.read_bps_device"); got != "254:0 104857600" {
		t.Errorf("batch read_bps_device = %q", got)
	}
	if got := read("blkio.bfq.weight"); got != "25" {
		t.Errorf("batch blkio.bfq.weight = %q, want the batch default 25", got)
	}
	if got, _ := tree.ReadFile("blkio", "/pods/web", "blkio.throttle.read_bps_device"); got != "" {
		t.Errorf("online member got %q", got)
	}
	// The same plan again writes nothing.
	_ = tree.WriteFile("blkio", "/pods/scan", "blkio.throttle.read_bps_device", "254:0 104857600\n")
	_ = tree.WriteFile("blkio", "/pods/scan", "blkio.bfq.weight", "sentinel")
	if err := c.ApplyPools(ioPlan(false)); err != nil {
		t.Fatal(err)
	}
	if got := read("blkio.bfq.weight"); got != "sentinel" {
		t.Errorf("an unchanged plan rewrote blkio.bfq.weight (%q)", got)
	}
	_ = tree.WriteFile("blkio", "/pods/scan", "blkio.bfq.weight", "25\n")
	if err := c.ApplyPools(ioPlan(true)); err != nil {
		t.Fatal(err)
	}
	if got := read("blkio.throttle.read_bps_device"); got != "254:0 1048576" {
		t.Errorf("throttled batch read_bps_device = %q", got)
	}
	if got := read("blkio.bfq.weight"); got != "10" {
		t.Errorf("throttled batch weight = %q", got)
	}
	st := c.Status()
	for _, want := range []string{"buffered writeback is not attributed", "254:0=vda scheduler mq-deadline"} {
		if !strings.Contains(st.Summary, want) {
			t.Errorf("status summary %q lacks %q", st.Summary, want)
		}
	}
	if s := st.Pools[isolation.PoolBatch]; !strings.Contains(s, "weight 10") || !strings.Contains(s, "254:0 read ≤ 1.0 MiB/s") || !strings.Contains(s, "throttled: pool online") {
		t.Errorf("batch status = %q", s)
	}
	if s := st.Pools[isolation.PoolOnline]; !strings.Contains(s, "IO PSI some 35.0%") {
		t.Errorf("online status = %q", s)
	}
	_ = tree.WriteFile("blkio", "/pods/scan", "blkio.throttle.read_bps_device", "254:0 1048576\n")
	if err := c.ApplyPools(ioPlan(false)); err != nil {
		t.Fatal(err)
	}
	if got := read("blkio.throttle.read_bps_device"); got != "254:0 104857600" {
		t.Errorf("lifted batch read_bps_device = %q", got)
	}
	// A removed member is forgotten; a vanished cgroup is skipped.
	if err := c.ContainerRemoved(scan); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyPools(ioPlan(true)); err != nil {
		t.Fatal(err)
	}
	if got := read("blkio.throttle.read_bps_device"); got != "254:0 104857600" {
		t.Errorf("a removed member was written: %q", got)
	}
}

func TestIOControllerNotSupported(t *testing.T) {
	h := cgroup.NewV1(map[string]string{cgroup.CPU: t.TempDir()}, "")
	err := NewIOController(IOOptions{}).Start(context.Background(), ControllerEnv{Logger: slog.Default(), Cgroups: h})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "blkio") {
		t.Fatalf("Start without blkio = %v, want ErrNotSupported naming it", err)
	}
}
