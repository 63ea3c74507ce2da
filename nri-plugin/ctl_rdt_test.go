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
	"time"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/rdt"
	"github.com/strata-nri/strata/rdt/rdttest"
)

func rdtEnv(proc string) ControllerEnv {
	return ControllerEnv{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ProcRoot: proc,
		Config: func() *isolation.Config { return isolation.DefaultConfig() }}
}

// On this machine (no RDT) the dimension is disabled with the reason.
func TestRDTControllerNotSupportedHere(t *testing.T) {
	if testutil.Resctrl.Absent() == "" {
		t.Skip("this host has RDT")
	}
	err := NewRDTController(RDTOptions{}).Start(context.Background(), rdtEnv("/proc"))
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, rdt.ErrNotSupported) || !strings.Contains(err.Error(), "no RDT flags") {
		t.Fatalf("Start = %v, want ErrNotSupported saying the CPU has no RDT", err)
	}
}

func TestRDTControllerMonitoringOnlyHost(t *testing.T) {
	root, proc := rdttest.Write(t, rdttest.MonitoringOnly)
	err := NewRDTController(RDTOptions{Root: root}).Start(context.Background(), rdtEnv(proc))
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "monitoring only") {
		t.Fatalf("Start = %v, want not supported: monitoring only", err)
	}
}

func rdtPlan(batchWays, batchMB int) *isolation.Plan {
	return &isolation.Plan{Pools: []isolation.PoolPlan{
		{Name: isolation.PoolLatencyCritical, RDT: isolation.RDTPlan{Enabled: true, Class: isolation.PoolLatencyCritical, FirstWay: 5, Ways: 6, MaxWays: 6, Exclusive: true}},
		{Name: isolation.PoolOnline},
		{Name: isolation.PoolBatch, RDT: isolation.RDTPlan{Enabled: true, Class: isolation.PoolBatch, Ways: batchWays, MaxWays: 5,
			MBPercent: batchMB, MaxMBPercent: 80, Throttled: batchWays < 5, Reason: "shrinking: pool latency-critical at protection level elevated"}},
	}}
}

// On an Intel fixture: the pools' classes hold the planned ways and
// bandwidth byte for byte, the default group gives up the exclusive ways,
// an admitted container's threads land in its class and a monitoring
// group of its own, the counters reach the observations, and a throttled
// plan rewrites only what changed.
func TestRDTControllerAppliesPools(t *testing.T) {
	root, proc := rdttest.Write(t, rdttest.IntelL3MBA)
	for _, dir := range []string{"500/task/500", "500/task/501", "600/task/600"} {
		if err := os.MkdirAll(filepath.Join(proc, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := NewRDTController(RDTOptions{Root: root})
	clock := time.Unix(1000, 0)
	c.now = func() time.Time { return clock }
	if err := c.Start(context.Background(), rdtEnv(proc)); err != nil {
		t.Fatal(err)
	}
	batchCtr := Member{ID: "0123456789abcdef", Name: "worker", Pool: isolation.PoolBatch, Pids: func() ([]int, error) { return []int{500}, nil }}
	webCtr := Member{ID: "web1", Name: "web", Pool: isolation.PoolOnline, Pids: func() ([]int, error) { return []int{600}, nil }}
	// Admitted before any class exists: moved once the class is made.
	if err := c.ContainerAdmitted(batchCtr); err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerAdmitted(webCtr); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyPools(rdtPlan(5, 80)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"schemata":                                     "L3:0=1f;1=1f\n",
		"strata-latency-critical/schemata":             "L3:0=7e0;1=7e0\n",
		"strata-latency-critical/mode":                 "exclusive",
		"strata-batch/schemata":                        "L3:0=1f;1=1f\nMB:0=80;1=80\n",
		"strata-batch/tasks":                           "500\n501\n",
		"strata-batch/mon_groups/c-0123456789ab/tasks": "500\n501\n",
	}
	check := func() {
		t.Helper()
		for file, w := range want {
			data, err := os.ReadFile(filepath.Join(root, file))
			if err != nil || string(data) != w {
				t.Errorf("%s = %q (%v), want %q", file, data, err, w)
			}
		}
	}
	check()
	if _, err := os.Stat(filepath.Join(root, "strata-online")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("online has no RDT profile but got a class: %v", err)
	}

	if got := c.ClassOf(isolation.PoolBatch); got != "strata-batch" {
		t.Errorf("ClassOf(batch) = %q", got)
	}
	// A thread the process started while it was being moved stays behind;
	// the periodic sweep moves it (and only it).
	if err := os.MkdirAll(filepath.Join(proc, "500/task/502"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rdtSweepEvery; i++ {
		if err := c.ApplyPools(rdtPlan(5, 80)); err != nil {
			t.Fatal(err)
		}
	}
	want["strata-batch/tasks"] = "500\n501\n502\n"
	want["strata-batch/mon_groups/c-0123456789ab/tasks"] = "500\n501\n502\n"
	check()

	// Counters: two readings a second apart give the bandwidth.
	// (The kernel makes mon_data with each group; the fixture needs it written.)
	batchDir := filepath.Join(root, "strata-batch")
	for _, id := range []int{0, 1} {
		rdttest.SetMonData(t, filepath.Join(root, "strata-latency-critical"), id, rdt.LLCOccupancy, "0")
		rdttest.SetMonData(t, batchDir, id, rdt.LLCOccupancy, "2097152")
		rdttest.SetMonData(t, batchDir, id, rdt.MBMTotalBytes, "1000000000")
	}
	obs := isolation.Observations{Pools: map[string]isolation.PoolObservation{}}
	if err := c.Observe(&obs); err != nil {
		t.Fatal(err)
	}
	if o := obs.Pools[isolation.PoolBatch].RDT; o.Ways != 11 || o.MinWays != 1 || !o.Bandwidth || o.Measured || o.OccupancyBytes != 4<<20 {
		t.Fatalf("first observation %+v", o)
	}
	if o := obs.Pools[isolation.PoolOnline].RDT; o.Ways != 11 || o.Measured {
		t.Fatalf("online observation %+v: host facts, nothing measured", o)
	}
	clock = clock.Add(time.Second)
	rdttest.SetMonData(t, batchDir, 0, rdt.MBMTotalBytes, "4000000000")
	if err := c.Observe(&obs); err != nil {
		t.Fatal(err)
	}
	if o := obs.Pools[isolation.PoolBatch].RDT; !o.Measured || o.BandwidthBytes != 3e9 {
		t.Fatalf("second observation %+v, want 3e9 B/s measured", o)
	}

	// Throttled: only batch's class is rewritten.
	lcSchemata := filepath.Join(root, "strata-latency-critical/schemata")
	os.WriteFile(lcSchemata, []byte("L3:0=7e0;1=7e0\n"), 0o644)
	before, _ := os.Stat(lcSchemata)
	if err := c.ApplyPools(rdtPlan(3, 40)); err != nil {
		t.Fatal(err)
	}
	want["strata-batch/schemata"] = "L3:0=7;1=7\nMB:0=40;1=40\n"
	check()
	if after, _ := os.Stat(lcSchemata); !after.ModTime().Equal(before.ModTime()) {
		t.Error("an unchanged class was rewritten")
	}
	st := c.Status()
	if got := st.Pools[isolation.PoolBatch]; got != "class strata-batch, ways 0-2 (3 of 5), MB 40% of 80%, occupancy 4.0 MiB, bandwidth 3.00 GB/s; shrinking: pool latency-critical at protection level elevated" {
		t.Errorf("batch status %q", got)
	}
	if !strings.Contains(st.Summary, "L3 11 ways on 2 caches, MBA percent, monitoring llc_occupancy") {
		t.Errorf("summary %q", st.Summary)
	}

	// The container goes: its RMID is released.
	if err := c.ContainerRemoved(batchCtr); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(batchDir, "mon_groups", "c-0123456789ab")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("monitoring group left: %v", err)
	}
	// Batch loses its profile: its class goes.
	plan := rdtPlan(3, 40)
	plan.Pools[2].RDT = isolation.RDTPlan{}
	if err := c.ApplyPools(plan); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(batchDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("batch class left: %v", err)
	}
	// No pool has a profile any more: every class goes and the default
	// group gets all ways back.
	plan.Pools[0].RDT = isolation.RDTPlan{}
	if err := c.ApplyPools(plan); err != nil {
		t.Fatal(err)
	}
	if classes, _ := c.r.Classes(); len(classes) != 0 {
		t.Errorf("classes left: %v", classes)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "schemata")); string(data) != "L3:0=7ff;1=7ff\n" {
		t.Errorf("default group schemata %q, want every way back", data)
	}
}

// On AMD with CDP-less L3 and absolute bandwidth, percentages become units.
func TestRDTControllerAMDUnits(t *testing.T) {
	root, proc := rdttest.Write(t, rdttest.AMDEPYC)
	c := NewRDTController(RDTOptions{Root: root})
	if err := c.Start(context.Background(), rdtEnv(proc)); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyPools(rdtPlan(4, 25)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(root, "strata-batch/schemata"))
	if !strings.Contains(string(data), "16=f;") || !strings.Contains(string(data), "MB:0=512;") || !strings.Contains(string(data), "23=512\n") {
		t.Fatalf("batch schemata %q, want ways 0-3 on cache ids up to 23 and 25%% of 2048", data)
	}
}

// The RDT controller inside the running plugin, on an Intel resctrl
// fixture: the pools' classes appear, a started batch container's process
// lands in batch's class, and status shows the dimension per pool.
func TestRDTControllerInPlugin(t *testing.T) {
	root, proc := rdttest.Write(t, rdttest.IntelL3MBA)
	if err := os.MkdirAll(filepath.Join(proc, "700", "task", "700"), 0o755); err != nil {
		t.Fatal(err)
	}
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	cfg.Pools[0].Profile.RDT = isolation.RDTProfile{L3Percent: 50}
	cfg.Pools[2].Profile.RDT = isolation.RDTProfile{L3Ways: 4, MBPercent: 60, Throttle: &isolation.RDTThrottle{MinMBPercent: 20}}
	h := startPlugin(t, node, rt, cfg, func(o *Options) {
		o.Controllers = []Controller{NewRDTController(RDTOptions{Root: root, ProcRoot: proc})}
	})

	batchPod := pod("jobs", "stream", map[string]string{"strata.io/pool": isolation.PoolBatch})
	batch := container(batchPod, "worker", 0, 0)
	rt.startRunning(t, node, batchPod, batch, 700) // its process, 700
	read := func(file string) string {
		data, _ := os.ReadFile(filepath.Join(root, file))
		return string(data)
	}
	waitFor(t, 3*time.Second, "batch's process in its class", func() bool {
		return read("strata-batch/tasks") == "700\n"
	})
	for file, want := range map[string]string{
		"strata-batch/schemata":            "L3:0=f;1=f\nMB:0=60;1=60\n",
		"strata-latency-critical/schemata": "L3:0=7e0;1=7e0\n",
		"strata-latency-critical/mode":     "exclusive",
		"schemata":                         "L3:0=1f;1=1f\n",
	} {
		if got := read(file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	var found bool
	for _, d := range h.plugin.Status().Dimensions {
		if d.Name == "rdt" {
			found = true
			if d.State != dimRunning || !strings.HasPrefix(d.Pools[isolation.PoolBatch], "class strata-batch, ways 0-3 (4), MB 60%") {
				t.Errorf("rdt status %+v", d)
			}
		}
	}
	if !found {
		t.Error("no rdt dimension in status")
	}
}
