package nriplugin

import (
	"context"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// carried reports whether NRI resources (of an adjustment or an update)
// carry field f. It reads the protocol's own structures, independently of
// the routing table.
func carried(f isolation.Fields, linux *api.LinuxContainerAdjustment, res *api.LinuxResources) bool {
	cpu, mem, uni := res.GetCpu(), res.GetMemory(), res.GetUnified()
	switch f {
	case isolation.FieldCPUs:
		return cpu.GetCpus() != ""
	case isolation.FieldMems:
		return cpu.GetMems() != ""
	case isolation.FieldCPUShares:
		return cpu.GetShares() != nil
	case isolation.FieldCPUQuota:
		return cpu.GetQuota() != nil || cpu.GetPeriod() != nil
	case isolation.FieldCPUIdle:
		_, ok := uni[cgroup.UnifiedCPUIdle]
		return ok
	case isolation.FieldMemoryLimit:
		return mem.GetLimit() != nil
	case isolation.FieldMemoryMin:
		_, ok := uni[cgroup.UnifiedMemoryMin]
		return ok
	case isolation.FieldMemoryLow:
		_, ok := uni[cgroup.UnifiedMemoryLow]
		return ok
	case isolation.FieldMemoryHigh:
		_, ok := uni[cgroup.UnifiedMemoryHigh]
		return ok
	case isolation.FieldMemorySoftLimit:
		return mem.GetReservation() != nil
	case isolation.FieldOOMScoreAdj:
		return linux.GetOomScoreAdj() != nil
	case isolation.FieldIOPriority:
		return linux.GetIoPriority() != nil
	case fieldBlockIOClass:
		return res.GetBlockioClass() != nil
	case fieldRDTClass:
		return res.GetRdtClass() != nil || linux.GetRdt() != nil
	}
	panic(fmt.Sprintf("field %b unknown to the test", f))
}

// A change whose every setting differs from its default, so each field
// has something to carry.
var full = isolation.ContainerChange{ID: "c1", Pool: isolation.PoolOnline, CPUs: cpuset.New(2, 3), Mems: cpuset.New(0),
	Settings: isolation.Settings{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUIdle: true, MemoryLimit: 1 << 30,
		MemoryMin: 64 << 20, MemoryLow: 128 << 20, MemoryHigh: 900 << 20, MemorySoftLimit: 256 << 20, OOMScoreAdj: 500,
		IOPriority: "idle"}}

// fullClasses names a class for full's pool in every pool-class field.
var fullClasses = poolClasses{
	fieldBlockIOClass: {isolation.PoolOnline: "online"},
	fieldRDTClass:     {isolation.PoolOnline: "strata-online"},
}

// TestRoutingTableGivesEveryFieldOneRoute walks every setting field ×
// every runtime capability through the table and through the builders
// every path uses: at creation a field is in the adjustment, written at
// start, or not applied — exactly one; on a running container it is in an
// update, written directly, or not applied — exactly one.
func TestRoutingTableGivesEveryFieldOneRoute(t *testing.T) {
	rows := map[isolation.Fields]int{}
	for _, s := range settings {
		if bits.OnesCount32(uint32(s.field)) != 1 {
			t.Errorf("row %q covers fields %b: one row per field", s.name, s.field)
		}
		rows[s.field]++
	}
	for f := isolation.Fields(1); f <= fieldsAll && f != 0; f <<= 1 {
		if rows[f] != 1 {
			t.Errorf("field %b has %d rows in the routing table, want 1", f, rows[f])
		}
	}
	for _, c := range allCapabilities() {
		rt := newRouting(c)
		adj := rt.adjustment(isolation.Admission{ID: full.ID, Pool: full.Pool, CPUs: full.CPUs, Mems: full.Mems, Settings: full.Settings}, fullClasses)
		for _, s := range settings {
			cr, why := s.create(c)
			rr, rwhy := s.running(c)
			if cr != routeAdjust && cr != routeAtStart && cr != routeDimension && cr != routeNone {
				t.Errorf("%s, %s: creation route %s", c, s.name, cr)
			}
			if rr != routeUpdate && rr != routeDirect && rr != routeDimension && rr != routeNone {
				t.Errorf("%s, %s: running route %s", c, s.name, rr)
			}
			if isPoolClass := s.field > isolation.FieldsAll; isPoolClass != (s.toAdjust != nil) || isPoolClass == (s.toNRI != nil) {
				t.Errorf("%s: a pool class travels by toAdjust, a setting by toNRI", s.name)
			}
			if (cr == routeDimension || rr == routeDimension) && s.field <= isolation.FieldsAll {
				t.Errorf("%s, %s: only a pool class is written by its dimension", c, s.name)
			}
			if (cr == routeNone) != (why != "") || (rr == routeNone) != (rwhy != "") {
				t.Errorf("%s, %s: a field that cannot be applied needs a reason, and only it", c, s.name)
			}
			if (cr == routeAtStart || rr == routeDirect) && s.write == nil {
				t.Errorf("%s, %s: routed to a direct write without a writer", c, s.name)
			}

			inAdj := carried(s.field, adj.GetLinux(), adj.GetLinux().GetResources())
			atStart := rt.atStart()&s.field != 0
			byDim := rt.create[routeDimension]&s.field != 0
			none := rt.create[routeNone]&s.field != 0
			if n := count(inAdj, atStart, byDim, none); n != 1 {
				t.Errorf("%s, %s at creation: adjustment %v, at start %v, by its dimension %v, not applied %v: want exactly one",
					c, s.name, inAdj, atStart, byDim, none)
			}

			ch := full
			ch.Fields = s.field
			if s.field == isolation.FieldCPUShares {
				ch.Settings.CPUIdle = false // an idle group's shares are the kernel's
			}
			u := rt.update(&ch, nil)
			inUpd := u != nil && carried(s.field, nil, u.GetLinux().GetResources())
			direct := rt.direct()&s.field != 0
			byDim = rt.running[routeDimension]&s.field != 0
			none = rt.running[routeNone]&s.field != 0
			if n := count(inUpd, direct, byDim, none); n != 1 {
				t.Errorf("%s, %s running: update %v, direct %v, by its dimension %v, not applied %v: want exactly one",
					c, s.name, inUpd, direct, byDim, none)
			}
			for _, o := range settings {
				if o.field != s.field && u != nil && carried(o.field, nil, u.GetLinux().GetResources()) {
					t.Errorf("%s: an update for %s also carries %s", c, s.name, o.name)
				}
			}
		}
	}
	// What anchors.md says each runtime carries.
	for _, tc := range []struct {
		c       capability
		f       isolation.Fields
		create  route
		running route
	}{
		{capability{gen: genContainerd17, unified: false}, isolation.FieldOOMScoreAdj, routeAtStart, routeDirect},
		{capability{gen: genContainerd20, unified: false}, isolation.FieldOOMScoreAdj, routeAdjust, routeDirect},
		{capability{gen: genContainerd17, unified: false}, isolation.FieldCPUIdle, routeAtStart, routeDirect},
		{capability{gen: genContainerd23, unified: true}, isolation.FieldCPUIdle, routeAdjust, routeDirect},
		{capability{gen: genContainerd23, unified: false}, isolation.FieldMemoryMin, routeNone, routeNone},
		{capability{gen: genContainerd20, unified: true}, isolation.FieldMemoryHigh, routeAdjust, routeUpdate},
		{capability{gen: genContainerd20, unified: false}, isolation.FieldMemorySoftLimit, routeAdjust, routeDirect},
		{capability{gen: genContainerd22, unified: true}, isolation.FieldMemorySoftLimit, routeAdjust, routeNone},
		{capability{gen: genContainerd17, unified: false}, isolation.FieldCPUs, routeAdjust, routeUpdate},
		// Pool-level classes (issues 10 and 11).
		{capability{gen: genContainerd20}, isolation.FieldIOPriority, routeAtStart, routeDirect},
		{capability{gen: genContainerd22}, isolation.FieldIOPriority, routeAdjust, routeDirect},
		{capability{gen: genContainerd23}, fieldBlockIOClass, routeNone, routeNone},
		{capability{gen: genContainerd23, blockIO: true}, fieldBlockIOClass, routeDimension, routeDimension},
		{capability{gen: genContainerd17, blockIO: true, blockIOClasses: true}, fieldBlockIOClass, routeAdjust, routeDimension},
		{capability{gen: genContainerd23, blockIO: true, blockIOClasses: true}, fieldRDTClass, routeNone, routeNone},
		{capability{gen: genContainerd17, rdt: true}, fieldRDTClass, routeAdjust, routeDimension},
	} {
		rt := newRouting(tc.c)
		if rt.create[tc.create]&tc.f == 0 || rt.running[tc.running]&tc.f == 0 {
			t.Errorf("%s: field %s wants %s / %s", tc.c, fieldNames(tc.f), tc.create, tc.running)
		}
	}
}

func count(b ...bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

func TestDetectGen(t *testing.T) {
	for _, tc := range []struct {
		nri, runtime, version string
		want                  runtimeGen
	}{
		{"unknown", "containerd", "v1.7.35", genContainerd17},
		{"unknown", "containerd", "v2.1.4", genContainerd20},
		{"unknown", "containerd", "2.0.0", genContainerd20},
		{"v0.11.0", "containerd", "v2.2.9", genContainerd22},
		{"v0.12.0", "containerd", "v2.3.7", genContainerd23},
		{"v0.12.3", "containerd", "v2.4.2", genContainerd23},
		{"unknown", "cri-o", "1.30.0", genContainerd17},
		{"", "", "", genContainerd17},
	} {
		if got := detectGen(tc.nri, tc.runtime, tc.version); got != tc.want {
			t.Errorf("detectGen(%q, %q, %q) = %s, want %s", tc.nri, tc.runtime, tc.version, got, tc.want)
		}
	}
}

// fakeProcess puts a process into a container's fixture cgroup, with an
// oom_score_adj file under the plugin's proc root.
func fakeProcess(t testing.TB, node *fakeNode, cgroupsPath string, pid, oom int) {
	t.Helper()
	cg, err := node.h.Open(cgroupsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.AddProc(pid); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(node.tree.Dir, "proc", strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oom_score_adj"), []byte(strconv.Itoa(oom)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readOOM(t *testing.T, node *fakeNode, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(node.tree.Dir, "proc", strconv.Itoa(pid), "oom_score_adj"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

var oneGiB = float64(1 << 30)

func newFakeNodeMode(t *testing.T, mode cgroup.Mode) *fakeNode {
	t.Helper()
	n := newFakeNode(t, cpusettest.Intel2S20C2T)
	if mode == cgroup.V1 {
		return n
	}
	var err error
	if n.tree, err = cgrouptest.New(t.TempDir(), mode, n.topo.Online().String(), "0"); err != nil {
		t.Fatal(err)
	}
	if n.h, err = n.tree.Hierarchy(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStartContainerFallbacks drives CreateContainer and StartContainer
// for a batch member (profile: idle scheduling, oom_score_adj 1000) on
// each runtime generation and cgroup mode: what the adjustment cannot
// carry must be written when the container starts, and nothing twice.
func TestStartContainerFallbacks(t *testing.T) {
	for _, tc := range []struct {
		c              capability
		idleInAdj      bool // else written at start
		oomInAdj       bool
		memoryHighInAd bool
	}{
		{capability{gen: genContainerd17, unified: false}, false, false, false},
		{capability{gen: genContainerd20, unified: false}, false, true, false},
		{capability{gen: genContainerd23, unified: true}, true, true, true},
	} {
		t.Run(tc.c.String(), func(t *testing.T) {
			mode := cgroup.V1
			if tc.c.unified {
				mode = cgroup.V2
			}
			node := newFakeNodeMode(t, mode)
			p, err := New(Options{Config: trusting(), SysfsRoot: node.sysfs, ProcRoot: filepath.Join(node.tree.Dir, "proc"),
				Cgroups: node.h, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			p.routes.Store(newRouting(tc.c))
			p.synced = true
			pd := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
			c := container(pd, "worker", 0, 0)
			c.Linux.Resources.Memory = &api.LinuxMemory{Limit: api.Int64(1 << 30)}
			adj, _, err := p.CreateContainer(context.Background(), pd, c)
			if err != nil {
				t.Fatal(err)
			}
			linux := adj.GetLinux()
			if got := carried(isolation.FieldCPUIdle, linux, linux.GetResources()); got != tc.idleInAdj {
				t.Errorf("cpu idle in the adjustment: %v, want %v", got, tc.idleInAdj)
			}
			if got := carried(isolation.FieldOOMScoreAdj, linux, linux.GetResources()); got != tc.oomInAdj {
				t.Errorf("oom_score_adj in the adjustment: %v, want %v", got, tc.oomInAdj)
			}
			if got := carried(isolation.FieldMemoryHigh, linux, linux.GetResources()); got != tc.memoryHighInAd {
				t.Errorf("memory high (90%% of the limit) in the adjustment: %v, want %v", got, tc.memoryHighInAd)
			} else if got && linux.GetResources().GetUnified()[cgroup.UnifiedMemoryHigh] != strconv.FormatInt(int64(0.9*oneGiB), 10) {
				t.Errorf("memory high %q, want 90%% of 1 GiB", linux.GetResources().GetUnified()[cgroup.UnifiedMemoryHigh])
			}

			if err := node.tree.AddCgroup(c.Linux.CgroupsPath); err != nil {
				t.Fatal(err)
			}
			const pid = 4242
			fakeProcess(t, node, c.Linux.CgroupsPath, pid, 0)
			if err := p.StartContainer(context.Background(), pd, c); err != nil {
				t.Fatal(err)
			}
			cg, _ := node.h.Open(c.Linux.CgroupsPath)
			idle, err := cg.CPUIdle()
			if err != nil {
				t.Fatal(err)
			}
			// The runtime applies the adjustment, not this fixture: a
			// field the adjustment carried stays at the kernel default.
			if idle == tc.idleInAdj {
				t.Errorf("cpu.idle after start = %v; want it written at start only when the adjustment could not carry it", idle)
			}
			wantOOM := "1000"
			if tc.oomInAdj {
				wantOOM = "0"
			}
			if got := readOOM(t, node, pid); got != wantOOM {
				t.Errorf("oom_score_adj after start = %s, want %s", got, wantOOM)
			}
		})
	}
}

// poll reports whether ok became true within d.
func poll(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// runcOnFixture plays runc on a fixture tree: it writes the resources of
// adjustments and updates into the container's cgroup in runc's order —
// cgroup v1: cpuset, memory, cpu; v2 (fs2): memory, cpu, cpuset, then the
// unified map — leaves 0 shares unwritten as runc does, and stops at the
// first write the kernel refuses, returning it as runc fails the whole
// call. The one refusal modelled is the kernel's of a weight on an idle
// (cpu.idle=1) group, EINVAL on v1 and v2 (TestKernelIdleGroupRefusesWeight
// checks it on the real kernels). Any other failed write fails the test.
func runcOnFixture(t testing.TB, node *fakeNode) func(c *api.Container, res *api.LinuxResources) error {
	return func(c *api.Container, res *api.LinuxResources) error {
		cg, err := node.h.Open(c.GetLinux().GetCgroupsPath())
		if err != nil || !cg.Exists() {
			return nil
		}
		cpu, mem := res.GetCpu(), res.GetMemory()
		var errs []error
		cpusets := func() {
			if s, err := cpuset.Parse(cpu.GetCpus()); err == nil && cpu.GetCpus() != "" {
				errs = append(errs, cg.SetCPUSetCPUs(s))
			}
			if s, err := cpuset.Parse(cpu.GetMems()); err == nil && cpu.GetMems() != "" {
				errs = append(errs, cg.SetCPUSetMems(s))
			}
		}
		memory := func() {
			if v := mem.GetLimit(); v != nil {
				errs = append(errs, cg.SetMemoryLimit(v.GetValue()))
			}
			if v := mem.GetReservation(); v != nil && node.h.Mode() != cgroup.V2 {
				errs = append(errs, cg.SetMemorySoftLimit(v.GetValue()))
			}
		}
		var refused error
		cpuCtl := func() {
			if v := cpu.GetShares().GetValue(); v != 0 {
				if idle, _ := cg.CPUIdle(); idle {
					refused = fmt.Errorf("runc: write cpu weight %d of %s: %w", v, c.GetId(), syscall.EINVAL)
					return
				}
				errs = append(errs, cg.SetCPUShares(v))
			}
			if v := cpu.GetQuota(); v != nil {
				errs = append(errs, cg.SetCPUQuota(v.GetValue(), cpu.GetPeriod().GetValue()))
			}
		}
		steps := []func(){cpusets, memory, cpuCtl}
		if node.h.Mode() == cgroup.V2 {
			steps = []func(){memory, cpuCtl, cpusets, func() {
				dir, err := cg.UnifiedDir()
				for k, v := range res.GetUnified() {
					if err == nil {
						err = os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644)
					}
				}
				errs = append(errs, err)
			}}
		}
		for _, step := range steps {
			if step(); refused != nil {
				break
			}
		}
		for _, err := range errs {
			if err != nil {
				t.Errorf("runc on the fixture: container %s: %v", c.GetId(), err)
			}
		}
		return refused
	}
}

// TestLoopRepairsDriftAndRetriesFailedWrites runs the real loop (50 ms)
// against NRI's in-process runtime, with runc played on a cgroup v1
// fixture. Changed behind Strata's back, a batch member's cpuset.cpus (NRI
// update), cpu.idle and oom_score_adj (direct writes), an online member's
// cpu.shares (NRI update) and memory soft limit (direct write: the CRI
// update has no reservation) must all come back within a few periods. A
// direct write
// that fails (cpu.idle is not writable) is planned again every period until
// it succeeds.
func TestLoopRepairsDriftAndRetriesFailedWrites(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	rt.runc = runcOnFixture(t, node)
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	h := startPlugin(t, node, rt, cfg)
	ctx := context.Background()

	batchPod := pod("jobs", "crunch", map[string]string{"strata.io/pool": isolation.PoolBatch})
	batch := container(batchPod, "worker", 0, 0)
	webPod := pod("shop", "web", map[string]string{"strata.io/pool": isolation.PoolOnline})
	web := container(webPod, "server", 500, 0)
	web.Linux.Resources.Memory = &api.LinuxMemory{Limit: api.Int64(128 << 20), Reservation: api.Int64(64 << 20)}
	stuckPod := pod("jobs", "stuck", map[string]string{"strata.io/pool": isolation.PoolBatch})
	stuck := container(stuckPod, "worker", 0, 0)
	for i, pc := range []struct {
		p *api.PodSandbox
		c *api.Container
	}{{batchPod, batch}, {webPod, web}, {stuckPod, stuck}} {
		if err := node.tree.AddCgroup(pc.c.Linux.CgroupsPath); err != nil {
			t.Fatal(err)
		}
		fakeProcess(t, node, pc.c.Linux.CgroupsPath, 5001+i, 0)
		if _, err := rt.create(t, pc.p, pc.c); err != nil {
			t.Fatal(err)
		}
	}
	// stuck's cpu.idle cannot be written: a directory stands in its place.
	idleFile := filepath.Join(node.tree.ControllerDir("cpu,cpuacct", stuck.Linux.CgroupsPath), "cpu.idle")
	if err := os.Remove(idleFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(idleFile, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, pc := range []struct {
		p *api.PodSandbox
		c *api.Container
	}{{batchPod, batch}, {webPod, web}, {stuckPod, stuck}} {
		if err := rt.r.StartContainer(ctx, &api.StartContainerRequest{Pod: pc.p, Container: pc.c}); err != nil {
			t.Fatal(err)
		}
	}
	bcg, _ := node.h.Open(batch.Linux.CgroupsPath)
	wcg, _ := node.h.Open(web.Linux.CgroupsPath)
	want := func() (cpuset.CPUSet, bool) {
		h.plugin.mu.Lock()
		defer h.plugin.mu.Unlock()
		m := h.plugin.ctrs[batch.Id]
		return m.cpus, m != nil
	}
	restored := func() string {
		cpus, _ := want()
		var bad []string
		if got, _ := bcg.CPUSetCPUs(); !got.Equals(cpus) {
			bad = append(bad, fmt.Sprintf("cpuset.cpus %s (want %s)", got, cpus))
		}
		if got, _ := wcg.CPUShares(); got != 512 {
			bad = append(bad, fmt.Sprintf("web cpu.shares %d (want 512)", got))
		}
		if got, _ := bcg.CPUIdle(); !got {
			bad = append(bad, "cpu.idle 0 (want 1)")
		}
		if got := readOOM(t, node, 5001); got != "1000" {
			bad = append(bad, "oom_score_adj "+got+" (want 1000)")
		}
		if got, _ := wcg.MemorySoftLimit(); got != 64<<20 {
			bad = append(bad, fmt.Sprintf("web memory soft limit %d (want %d)", got, 64<<20))
		}
		return strings.Join(bad, ", ")
	}
	waitFor(t, 3*time.Second, "settings applied at creation and start", func() bool { return restored() == "" })

	// The failed write is planned again, period after period.
	seen := map[time.Time]bool{}
	waitFor(t, 2*time.Second, "cpu idle of the stuck member planned in 3 periods", func() bool {
		plan := h.plugin.lastPlan.Load()
		if plan == nil {
			return false // no period has run yet
		}
		for _, ch := range plan.Changes {
			if ch.ID == stuck.Id && ch.Fields&isolation.FieldCPUIdle != 0 {
				seen[plan.Time] = true
			}
		}
		return len(seen) >= 3
	})

	// Behind Strata's back.
	for _, w := range []struct{ mount, rel, file, value string }{
		{"cpu,cpuacct", web.Linux.CgroupsPath, "cpu.shares", "1024"},
		{"cpu,cpuacct", batch.Linux.CgroupsPath, "cpu.idle", "0"},
		{"cpuset", batch.Linux.CgroupsPath, "cpuset.cpus", "0"},
		{"memory", web.Linux.CgroupsPath, "memory.soft_limit_in_bytes", "9223372036854771712"},
	} {
		if err := node.tree.WriteFile(w.mount, w.rel, w.file, w.value+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(node.tree.Dir, "proc", "5001", "oom_score_adj"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if restored() == "" {
		t.Fatal("tampering did not change anything")
	}
	start := time.Now()
	// oom_score_adj, a process attribute, is read back every
	// driftProcessFactor × 2 s at this period.
	bound := time.Duration(driftProcessFactor)*driftSlowInterval + 2*time.Second
	if !poll(bound, func() bool { return restored() == "" }) {
		t.Fatalf("not restored after %s: %s", bound, restored())
	}
	t.Logf("restored %s after tampering (period %s)", time.Since(start).Round(time.Millisecond), cfg.Period.Duration)

	// Once the file can be written, the retried write lands.
	if err := os.Remove(idleFile); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(idleFile, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	scg, _ := node.h.Open(stuck.Linux.CgroupsPath)
	waitFor(t, 2*time.Second, "the stuck member's cpu.idle written once writable", func() bool {
		idle, _ := scg.CPUIdle()
		return idle
	})
}

// TestIdleMembersSharesAreTheKernels: an idle-scheduled member's
// cpu.shares reads 3 (the kernel's idle weight, whatever was written) and
// cannot be written; drift repair must not resend it every period. It did,
// to every batch member, and kept containerd busy with runc updates.
func TestIdleMembersSharesAreTheKernels(t *testing.T) {
	rb := newRemovalBench(t, 6)
	for id := range rb.p.ctrs {
		if rb.p.pending.has(id) {
			t.Fatalf("member %s has updates pending: drift repair would not read it", id)
		}
	}
	for i := 0; i < 3; i++ {
		rb.p.step(context.Background())
		if n := rb.drain(); n != 0 {
			t.Fatalf("period %d: %d NRI updates for settled members, want none", i, n)
		}
	}
	ch := full
	ch.Fields = isolation.FieldCPUShares
	// 0 shares, which runc does not write, and which keep a kubelet's
	// shares out of the container's spec when the update is a reply.
	if u := newRouting(capability{gen: genContainerd23, unified: false}).update(&ch, nil); u.GetLinux().GetResources().GetCpu().GetShares().GetValue() != 0 {
		t.Errorf("an update for an idle member carries cpu.shares %v: the kernel refuses it", u.GetLinux().GetResources().GetCpu().GetShares())
	}
}

// TestDriftReadsSlowFieldsInTurn: drift repair reads the CPU placement of
// every member every period, a member's slow fields (memory, quota) once
// in every slowEvery periods, and its process attributes (oom_score_adj)
// once in every driftProcessFactor × slowEvery, so a change of one is
// found within that many periods, and not read more often.
func TestDriftReadsSlowFieldsInTurn(t *testing.T) {
	rb := newRemovalBench(t, 4)
	rb.p.mu.Lock()
	var members []member
	for _, m := range rb.p.ctrs {
		members = append(members, *m)
	}
	rb.p.mu.Unlock()
	m := &members[0]
	other := rb.node.topo.Online().Difference(m.cpus).List()[0]
	if err := rb.node.tree.WriteFile("cpuset", m.cgroupsPath, "cpuset.cpus", strconv.Itoa(other)+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := rb.node.tree.WriteFile("cpu,cpuacct", m.cgroupsPath, "cpu.cfs_quota_us", "1000\n"); err != nil {
		t.Fatal(err)
	}
	oom := 100
	if m.settings.OOMScoreAdj == oom {
		oom = 0
	}
	fakeProcess(t, rb.node, m.cgroupsPath, 7001, oom)
	const every = 3
	rounds := 2 * every * driftProcessFactor
	rt := rb.p.routes.Load()
	quota, procs := 0, 0
	for round := 0; round < rounds; round++ {
		var found isolation.Fields
		for _, r := range rb.p.drift(members, rt, nil, every) {
			if r.ID == m.id {
				found = r.Fields
			}
		}
		if found&isolation.FieldCPUs == 0 {
			t.Errorf("round %d: the changed cpuset was not found (fields %s)", round, fieldNames(found))
		}
		if found&isolation.FieldCPUQuota != 0 {
			quota++
		}
		if found&isolation.FieldOOMScoreAdj != 0 {
			procs++
		}
	}
	if quota != rounds/every {
		t.Errorf("the changed quota was found in %d of %d rounds, want once every %d", quota, rounds, every)
	}
	if procs != 2 {
		t.Errorf("the changed oom_score_adj was found in %d of %d rounds, want once every %d", procs, rounds, every*driftProcessFactor)
	}
}
