package pressure

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/testutil"
)

// schedProbeFeature is "the BPF scheduler probe loads and attaches". It
// is truly absent without kernel BTF or before Linux 5.18 (the
// sched_switch tracepoint gained prev_state then).
var schedProbeFeature = testutil.Feature{
	Name: "BPF scheduler probe (tp_btf sched_switch/sched_wakeup)",
	Probe: func() error {
		p, err := NewSchedProbe(SchedProbeOptions{MaxCgroups: 4})
		if err != nil {
			return err
		}
		return p.Close()
	},
	Absent: func() string {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
			return "the kernel exposes no BTF (/sys/kernel/btf/vmlinux)"
		}
		return testutil.KernelOlderThan(5, 18, "sched_switch with prev_state")
	},
}

func requireSchedProbe(tb testing.TB) {
	tb.Helper()
	testutil.RequireRoot(tb)
	testutil.RequireFeature(tb, schedProbeFeature)
}

func newSchedProbe(tb testing.TB, opts SchedProbeOptions) *SchedProbe {
	tb.Helper()
	p, err := NewSchedProbe(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// schedstatWait is the run-queue wait of a task, from /proc/PID/schedstat
// (second field, ns).
func schedstatWait(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		tb.Fatalf("/proc/%d/schedstat: %q", pid, b)
	}
	v, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return time.Duration(v)
}

func pin(tb testing.TB, pid, cpu int) {
	tb.Helper()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(pid, &set); err != nil {
		tb.Fatalf("pin pid %d to CPU %d: %v", pid, cpu, err)
	}
}

func sampleOf(tb testing.TB, p *SchedProbe) map[string]SchedSample {
	tb.Helper()
	ps, err := p.Sample()
	if err != nil {
		tb.Fatal(err)
	}
	if len(ps.Missing) > 0 {
		tb.Fatalf("missing from the map: %v", ps.Missing)
	}
	out := map[string]SchedSample{}
	for _, s := range ps.Samples {
		out[s.ID] = s
	}
	return out
}

func within(got, want time.Duration, tol float64) bool {
	return math.Abs(float64(got-want)) <= tol*float64(want)
}

// TestKernelSchedProbeAccuracy: two busy loops pinned to one CPU, each in
// its own cgroup. Each cgroup's CPU time as the probe measures it is within
// 5 % of cpuacct's, its run-queue delay within 10 % of the task's
// schedstat wait time; an idle cgroup shows no CPU and no delay.
func TestKernelSchedProbeAccuracy(t *testing.T) {
	requireSchedProbe(t)
	var cgs [3]*cgroup.Cgroup
	for i := range cgs {
		_, cgs[i] = testutil.NewCgroup(t)
		testutil.Prioritize(t, cgs[i])
	}
	cpu := 1
	if n, _ := ebpf.PossibleCPU(); n < 2 {
		cpu = 0
	}
	var pids [2]int
	for i := range pids {
		cmd := testutil.StartBusy(t, cgs[i])
		pids[i] = cmd.Process.Pid
		pin(t, pids[i], cpu)
	}
	testutil.StartInCgroup(t, cgs[2], "/bin/sleep", "60")
	p := newSchedProbe(t, SchedProbeOptions{})
	names := []string{"busy0", "busy1", "idle"}
	for i, cg := range cgs {
		if err := p.Add(names[i], cg); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // both loops have run and been queued
	var use0 [2]time.Duration
	var wait0 [2]time.Duration
	before := sampleOf(t, p)
	for i := range pids {
		var err error
		if use0[i], err = cgs[i].CPUUsage(); err != nil {
			t.Fatal(err)
		}
		wait0[i] = schedstatWait(t, pids[i])
	}
	time.Sleep(2 * time.Second)
	after := sampleOf(t, p)
	for i := range pids {
		use, err := cgs[i].CPUUsage()
		if err != nil {
			t.Fatal(err)
		}
		wait := schedstatWait(t, pids[i])
		gotCPU := after[names[i]].CPUTime - before[names[i]].CPUTime
		gotDelay := after[names[i]].RunQueueDelay - before[names[i]].RunQueueDelay
		wantCPU, wantDelay := use-use0[i], wait-wait0[i]
		s := after[names[i]]
		t.Logf("%s: CPU %v (cpuacct %v), run-queue delay %v (schedstat %v), %d waits, p50 %v p99 %v, %.0f wake-ups/s",
			names[i], gotCPU, wantCPU, gotDelay, wantDelay, s.Waits, s.DelayP50, s.DelayP99, s.WakeupsPerSec)
		if !within(gotCPU, wantCPU, 0.05) {
			t.Errorf("%s: probe CPU time %v, cpuacct %v: off by more than 5 %%", names[i], gotCPU, wantCPU)
		}
		if wantDelay < 200*time.Millisecond {
			t.Errorf("%s: schedstat wait %v over 2 s: the loops did not share a CPU", names[i], wantDelay)
		}
		if !within(gotDelay, wantDelay, 0.10) {
			t.Errorf("%s: probe run-queue delay %v, schedstat %v: off by more than 10 %%", names[i], gotDelay, wantDelay)
		}
		if !s.HasRates || s.Waits == 0 || s.DelayP99 < s.DelayP50 || s.DelayP50 <= 0 {
			t.Errorf("%s: per-period figures: %+v", names[i], s)
		}
	}
	idle := after["idle"]
	if idle.CPUTime > 5*time.Millisecond || idle.RunQueueDelay > time.Millisecond || idle.DelayP99 > time.Millisecond {
		t.Errorf("idle cgroup: CPU %v, run-queue delay %v, p99 %v; want about 0", idle.CPUTime, idle.RunQueueDelay, idle.DelayP99)
	}
}

// TestKernelSchedProbeLifecycle: Remove deletes the map entry; Close
// detaches and frees the programs; a second probe after the first (a
// restart) replaces it: only its own programs are loaded.
func TestKernelSchedProbeLifecycle(t *testing.T) {
	requireSchedProbe(t)
	_, cg := testutil.NewCgroup(t)
	p1, err := NewSchedProbe(SchedProbeOptions{MaxCgroups: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids1 := p1.ProgramIDs()
	if len(ids1) != 3 {
		t.Fatalf("program ids %v, want 3", ids1)
	}
	if err := p1.Add("a", cg); err != nil {
		t.Fatal(err)
	}
	_, cg2 := testutil.NewCgroup(t)
	_, cg3 := testutil.NewCgroup(t)
	if err := p1.Add("b", cg2); err != nil {
		t.Fatal(err)
	}
	if err := p1.Add("c", cg3); err == nil || !strings.Contains(err.Error(), "MaxCgroups") {
		t.Errorf("third Add with MaxCgroups 2 = %v, want an error naming MaxCgroups", err)
	}
	if err := p1.Add("b2", cg2); err == nil {
		t.Error("the same cgroup under a second id was accepted")
	}
	cgid, _ := cg.ID()
	p1.Remove("a")
	ps, err := p1.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Samples) != 1 || ps.Samples[0].ID != "b" {
		t.Errorf("after Remove: %+v", ps.Samples)
	}
	if n := mapEntries(t, p1); n != 1 {
		t.Errorf("after Remove the map holds %d entries, want 1 (cgroup %d deleted)", n, cgid)
	}
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	// The kernel frees detached programs after an RCU grace period.
	for _, id := range ids1 {
		deadline := time.Now().Add(3 * time.Second)
		for {
			prog, err := ebpf.NewProgramFromID(id)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("program %d: %v", id, err)
				}
				break
			}
			prog.Close()
			if time.Now().After(deadline) {
				t.Errorf("program %d still loaded 3 s after Close", id)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := p1.Sample(); err == nil {
		t.Error("Sample after Close succeeded")
	}
	p2 := newSchedProbe(t, SchedProbeOptions{})
	if ids := p2.ProgramIDs(); len(ids) != 3 {
		t.Errorf("second probe: %v", ids)
	}
	if n := strataPrograms(t); n != 3 {
		t.Errorf("%d scheduler probe programs held by this process with one probe open, want 3", n)
	}
}

func mapEntries(t *testing.T, p *SchedProbe) int {
	var k uint64
	n := 0
	it := p.stats.Iterate()
	var val = make([]byte, p.stats.ValueSize())
	for it.Next(&k, &val) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// strataPrograms counts the programs named like the probe's that this
// process holds, through a program or a link file descriptor (the prog_id
// lines of /proc/self/fdinfo). A count over the whole kernel would count
// other processes' probes too: a plugin under test in another package, or
// a second run on the same machine, loads the same programs.
func strataPrograms(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatal(err)
	}
	held := map[ebpf.ProgramID]bool{}
	for _, fd := range fds {
		b, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue // closed meanwhile (ReadDir's own descriptor)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
					held[ebpf.ProgramID(id)] = true
				}
			}
		}
	}
	n := 0
	for id := range held {
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := prog.Info(); err == nil && (info.Name == "strata_switch" || strings.HasPrefix(info.Name, "strata_wakeup")) {
			n++
		}
		prog.Close()
	}
	return n
}

// TestKernelSchedSampleAllocatesNothing pins the zero-allocation property
// BenchmarkSchedSamplePass measures: once every cgroup was read, a pass
// allocates nothing.
func TestKernelSchedSampleAllocatesNothing(t *testing.T) {
	requireSchedProbe(t)
	p := newSchedProbe(t, SchedProbeOptions{MaxCgroups: 64})
	for i := 0; i < 8; i++ {
		_, cg := testutil.NewCgroup(t)
		testutil.StartInCgroup(t, cg, "/bin/sleep", "60")
		if err := p.Add(fmt.Sprintf("c%d", i), cg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Sample(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { p.Sample() }); n != 0 {
		t.Errorf("a pass allocates %v times, want 0", n)
	}
}
