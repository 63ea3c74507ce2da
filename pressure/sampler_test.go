package pressure

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/internal/byteconv"
)

// fakeClock advances only when told to, so fixture rates are exact.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func approx(a, b, tol float64) bool          { return math.Abs(a-b) <= tol }
func mib(n uint64) uint64                    { return n << 20 }
func newTree(t testing.TB, mode cgroup.Mode) *cgrouptest.Tree {
	t.Helper()
	tree, err := cgrouptest.New(t.TempDir(), mode, "0-3", "0")
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func mustHierarchy(t testing.TB, tree *cgrouptest.Tree) *cgroup.Hierarchy {
	t.Helper()
	h, err := tree.Hierarchy()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func addCgroup(t testing.TB, tree *cgrouptest.Tree, h *cgroup.Hierarchy, rel string) *cgroup.Cgroup {
	t.Helper()
	if err := tree.AddCgroup(rel); err != nil {
		t.Fatal(err)
	}
	cg, err := h.Open(rel)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

func setCounters(t testing.TB, tree *cgrouptest.Tree, rel string, v map[cgroup.Counter]uint64) {
	t.Helper()
	if err := tree.SetCounters(rel, v); err != nil {
		t.Fatal(err)
	}
}

// TestSamplerRates drives a sampler over fixture trees of each mode with a
// fake clock and checks every derived value exactly.
func TestSamplerRates(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.Hybrid, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			tree := newTree(t, mode)
			h := mustHierarchy(t, tree)
			cg := addCgroup(t, tree, h, "/kubepods/pod1/ctr1")
			clk := newFakeClock()
			s := NewSampler(h, SamplerOptions{Clock: clk.Now, PSI: true})
			defer s.Close()
			setCounters(t, tree, "/kubepods/pod1/ctr1", map[cgroup.Counter]uint64{
				cgroup.CounterCPUUsage: uint64(10 * time.Second), cgroup.CounterCPUPeriods: 100,
				cgroup.CounterCPUThrottledPeriods: 10, cgroup.CounterCPUThrottledTime: uint64(time.Second),
				cgroup.CounterMemoryAnon: mib(50), cgroup.CounterMemoryFile: mib(200),
				cgroup.CounterMemoryActiveFile: mib(120), cgroup.CounterMemoryInactiveFile: mib(80),
			})
			if mode != cgroup.V1 {
				if err := tree.SetPressure("/kubepods/pod1/ctr1", cgroup.PSICPU, 1_000_000, 500_000, 12.5, 3.25); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Add("ctr1", cg); err != nil {
				t.Fatal(err)
			}
			p := s.Sample()
			if len(p.Samples) != 1 || len(p.Errors) != 0 || len(p.Vanished) != 0 {
				t.Fatalf("first pass: %+v", p)
			}
			first := p.Samples[0]
			if first.HasRates {
				t.Error("first pass of a new cgroup has rates; want none until a second reading")
			}
			if first.Anon != mib(50) || first.File != mib(200) || first.ActiveFile != mib(120) || first.InactiveFile != mib(80) {
				t.Errorf("memory = anon %d file %d active %d inactive %d", first.Anon, first.File, first.ActiveFile, first.InactiveFile)
			}
			if first.CPUUsage != 10*time.Second || first.ThrottledTime != time.Second || first.Periods != 100 || first.ThrottledPeriods != 10 {
				t.Errorf("cumulative = %+v", first)
			}
			if wantPSI := mode != cgroup.V1; first.HasPSI != wantPSI {
				t.Errorf("HasPSI = %v, want %v in mode %v", first.HasPSI, wantPSI, mode)
			}
			if first.HasPSI && (first.CPUPressure.Some.Avg10 != 12.5 || first.CPUPressure.Full.Avg10 != 3.25 || first.CPUPressure.Some.Total != time.Second) {
				t.Errorf("cpu pressure = %+v", first.CPUPressure)
			}

			// 200 ms later: 150 ms of CPU (0.75 cores), 20 periods of which
			// 5 throttled, 40 ms throttled, 60 ms of "some" CPU stall.
			clk.Advance(200 * time.Millisecond)
			setCounters(t, tree, "/kubepods/pod1/ctr1", map[cgroup.Counter]uint64{
				cgroup.CounterCPUUsage: uint64(10*time.Second + 150*time.Millisecond), cgroup.CounterCPUPeriods: 120,
				cgroup.CounterCPUThrottledPeriods: 15, cgroup.CounterCPUThrottledTime: uint64(time.Second + 40*time.Millisecond),
			})
			if mode != cgroup.V1 {
				if err := tree.SetPressure("/kubepods/pod1/ctr1", cgroup.PSICPU, 1_060_000, 500_000, 12.5, 3.25); err != nil {
					t.Fatal(err)
				}
			}
			p = s.Sample()
			if len(p.Samples) != 1 {
				t.Fatalf("second pass: %+v", p)
			}
			got := p.Samples[0]
			if !got.HasRates || got.Interval != 200*time.Millisecond {
				t.Fatalf("HasRates %v Interval %v, want true 200ms", got.HasRates, got.Interval)
			}
			if !approx(got.CPUCores, 0.75, 1e-9) || !approx(got.ThrottledFraction, 0.25, 1e-9) || !approx(got.ThrottledRate, 0.2, 1e-9) {
				t.Errorf("cores %v throttled fraction %v rate %v, want 0.75 0.25 0.2", got.CPUCores, got.ThrottledFraction, got.ThrottledRate)
			}
			share, ok := got.CPUInterference()
			if mode == cgroup.V1 {
				if ok {
					t.Error("CPUInterference ok without PSI")
				}
			} else {
				if !approx(got.CPUStall.Some, 0.3, 1e-9) || got.CPUStall.Full != 0 {
					t.Errorf("cpu stall = %+v, want some 0.3 full 0", got.CPUStall)
				}
				// 30 % stalled, 20 % of it explained by throttling.
				if !ok || !approx(share, 0.1, 1e-9) {
					t.Errorf("CPUInterference = %v, %v; want 0.1, true", share, ok)
				}
			}

			// The cgroup is recreated: usage restarts from a small value.
			clk.Advance(100 * time.Millisecond)
			setCounters(t, tree, "/kubepods/pod1/ctr1", map[cgroup.Counter]uint64{cgroup.CounterCPUUsage: uint64(time.Millisecond)})
			p = s.Sample()
			if got := p.Samples[0]; !got.Reset || got.HasRates {
				t.Errorf("after counter went back: Reset %v HasRates %v, want true false", got.Reset, got.HasRates)
			}
			clk.Advance(100 * time.Millisecond)
			setCounters(t, tree, "/kubepods/pod1/ctr1", map[cgroup.Counter]uint64{cgroup.CounterCPUUsage: uint64(51 * time.Millisecond)})
			p = s.Sample()
			if got := p.Samples[0]; got.Reset || !got.HasRates || !approx(got.CPUCores, 0.5, 1e-9) {
				t.Errorf("pass after reset: Reset %v HasRates %v cores %v, want false true 0.5", got.Reset, got.HasRates, got.CPUCores)
			}
		})
	}
}

// TestSamplerAddRemove checks that cgroups appearing and leaving between
// passes are handled: a new one has no rates in its first pass, a removed
// one is gone, a re-added id starts over.
func TestSamplerAddRemove(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	a := addCgroup(t, tree, h, "/a")
	b := addCgroup(t, tree, h, "/b")
	clk := newFakeClock()
	s := NewSampler(h, SamplerOptions{Clock: clk.Now})
	defer s.Close()
	if err := s.Add("a", a); err != nil {
		t.Fatal(err)
	}
	s.Sample()
	clk.Advance(time.Second)
	if err := s.Add("b", b); err != nil {
		t.Fatal(err)
	}
	p := s.Sample()
	if len(p.Samples) != 2 || p.Samples[0].ID != "a" || p.Samples[1].ID != "b" {
		t.Fatalf("samples = %+v", p.Samples)
	}
	if !p.Samples[0].HasRates || p.Samples[1].HasRates {
		t.Errorf("HasRates a=%v b=%v, want true false", p.Samples[0].HasRates, p.Samples[1].HasRates)
	}
	s.Remove("a")
	s.Remove("nope")
	clk.Advance(time.Second)
	p = s.Sample()
	if len(p.Samples) != 1 || p.Samples[0].ID != "b" || !p.Samples[0].HasRates {
		t.Fatalf("after Remove(a): %+v", p.Samples)
	}
	if err := s.Add("b", a); err != nil { // id b now names cgroup /a
		t.Fatal(err)
	}
	if p := s.Sample(); len(p.Samples) != 1 || p.Samples[0].HasRates || s.Len() != 1 {
		t.Errorf("re-added id: %+v (len %d), want one sample without rates", p.Samples, s.Len())
	}
}

// TestSamplerV2WithoutCPUController: cgroup v2 shows only usage lines in
// cpu.stat where the cpu controller is not enabled for a cgroup; that is no
// throttling, not an error. A missing memory.stat is ErrNotSupported.
func TestSamplerV2WithoutCPUController(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	if err := tree.WriteFile("", "/c", "cpu.stat", "usage_usec 2000\nuser_usec 1000\nsystem_usec 1000\n"); err != nil {
		t.Fatal(err)
	}
	s := NewSampler(h, SamplerOptions{})
	defer s.Close()
	if err := s.Add("c", cg); err != nil {
		t.Fatal(err)
	}
	p := s.Sample()
	if len(p.Samples) != 1 || len(p.Errors) != 0 || p.Samples[0].CPUUsage != 2*time.Millisecond || p.Samples[0].Periods != 0 {
		t.Errorf("pass = %+v", p)
	}
	nomem := addCgroup(t, tree, h, "/nomem")
	if err := os.Remove(filepath.Join(tree.UnifiedDir("/nomem"), "memory.stat")); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("nomem", nomem); !errors.Is(err, cgroup.ErrNotSupported) || !strings.Contains(err.Error(), "memory.stat") {
		t.Errorf("Add without memory.stat = %v, want ErrNotSupported naming memory.stat", err)
	}
}

// TestSamplerMemoryEvery reads memory.stat every third pass and repeats
// the last values in between, saying when they were read.
func TestSamplerMemoryEvery(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	clk := newFakeClock()
	s := NewSampler(h, SamplerOptions{Clock: clk.Now, MemoryEvery: 3})
	defer s.Close()
	if err := s.Add("c", cg); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	var files []uint64
	var times []time.Duration
	for pass := 0; pass < 5; pass++ {
		setCounters(t, tree, "/c", map[cgroup.Counter]uint64{cgroup.CounterMemoryFile: uint64(pass) << 20, cgroup.CounterCPUUsage: uint64(pass) * uint64(time.Millisecond)})
		c := s.Sample().Samples[0]
		files = append(files, c.File>>20)
		times = append(times, c.MemoryTime.Sub(start))
		if c.CPUUsage != time.Duration(pass)*time.Millisecond {
			t.Errorf("pass %d: CPU usage %v, want read every pass", pass, c.CPUUsage)
		}
		clk.Advance(time.Second)
	}
	// Pass 0 (first) reads; then every third pass: 3.
	if fmt.Sprint(files) != "[0 0 0 3 3]" || fmt.Sprint(times) != "[0s 0s 0s 3s 3s]" {
		t.Errorf("file MiB per pass %v, memory times %v; want [0 0 0 3 3] [0s 0s 0s 3s 3s]", files, times)
	}
}

func TestSamplerAddMissingCgroup(t *testing.T) {
	tree := newTree(t, cgroup.V1)
	h := mustHierarchy(t, tree)
	cg, err := h.Open("/not/there")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSampler(h, SamplerOptions{})
	defer s.Close()
	if err := s.Add("x", cg); !errors.Is(err, cgroup.ErrVanished) {
		t.Errorf("Add of a missing cgroup = %v, want ErrVanished", err)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d after failed Add", s.Len())
	}
}

// TestSamplerVanishedMidPass removes a cgroup's directory between passes.
// cgroupfs answers reads of a removed cgroup's open files with ENODEV; a
// fixture file on a disk stays readable through an open descriptor, so the
// test closes the descriptor to make the read fail (EBADF takes the same
// path as ENODEV: reopen, find nothing, report vanished).
// TestKernelSamplerVanished does it with a real cgroup.
func TestSamplerVanishedMidPass(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	a := addCgroup(t, tree, h, "/a")
	b := addCgroup(t, tree, h, "/b")
	s := NewSampler(h, SamplerOptions{})
	defer s.Close()
	for id, cg := range map[string]*cgroup.Cgroup{"a": a, "b": b} {
		if err := s.Add(id, cg); err != nil {
			t.Fatal(err)
		}
	}
	s.Sample()
	if err := os.RemoveAll(tree.UnifiedDir("/a")); err != nil {
		t.Fatal(err)
	}
	ta := s.byID["a"]
	unix.Close(ta.files[0].fd)
	p := s.Sample()
	if len(p.Vanished) != 1 || p.Vanished[0] != "a" {
		t.Errorf("Vanished = %v, want [a]", p.Vanished)
	}
	if len(p.Samples) != 1 || p.Samples[0].ID != "b" {
		t.Errorf("Samples = %+v, want b only", p.Samples)
	}
	if len(p.Errors) != 0 {
		t.Errorf("Errors = %v", p.Errors)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want the vanished cgroup dropped", s.Len())
	}
	if p := s.Sample(); len(p.Vanished) != 0 || len(p.Samples) != 1 {
		t.Errorf("next pass reports %v vanished again", p.Vanished)
	}
}

// TestSamplerMalformed checks that a malformed counter file fails only that
// cgroup, with an error naming the file and the line.
func TestSamplerMalformed(t *testing.T) {
	cases := []struct {
		name, mount, file, content, want string
	}{
		{"v2 cpu.stat bad number", "", "cpu.stat", "usage_usec 12\nnr_periods x1\n", "cpu.stat: value \"nr_periods x1\": line 2"},
		{"v2 cpu.stat no value", "", "cpu.stat", "usage_usec\n", "line 1: want \"key value\""},
		{"v2 memory.stat missing keys", "", "memory.stat", "anon 1\nfile 2\n", "key missing: [active_file inactive_file]"},
		{"v2 memory.stat overflow", "", "memory.stat", "anon 99999999999999999999\n", "line 1: anon: want an unsigned integer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tree := newTree(t, cgroup.V2)
			h := mustHierarchy(t, tree)
			good := addCgroup(t, tree, h, "/good")
			bad := addCgroup(t, tree, h, "/bad")
			if err := tree.WriteFile(tc.mount, "/bad", tc.file, tc.content); err != nil {
				t.Fatal(err)
			}
			s := NewSampler(h, SamplerOptions{})
			defer s.Close()
			if err := s.Add("good", good); err != nil {
				t.Fatal(err)
			}
			if err := s.Add("bad", bad); err != nil {
				t.Fatal(err)
			}
			p := s.Sample()
			if len(p.Samples) != 1 || p.Samples[0].ID != "good" {
				t.Errorf("samples = %+v, want only good", p.Samples)
			}
			if len(p.Errors) != 1 || p.Errors[0].ID != "bad" {
				t.Fatalf("errors = %v, want one for bad", p.Errors)
			}
			msg := p.Errors[0].Error()
			var fe *cgroup.FileError
			if !errors.As(p.Errors[0], &fe) || !strings.HasSuffix(fe.Path, "/bad/"+tc.file) {
				t.Errorf("error %q is not a FileError naming %s", msg, tc.file)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if s.Len() != 2 {
				t.Errorf("malformed cgroup dropped: Len %d", s.Len())
			}
		})
	}
}

func TestSamplerMalformedV1Usage(t *testing.T) {
	tree := newTree(t, cgroup.V1)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	if err := tree.WriteFile("cpu,cpuacct", "/c", "cpuacct.usage", "12a\n"); err != nil {
		t.Fatal(err)
	}
	s := NewSampler(h, SamplerOptions{})
	defer s.Close()
	if err := s.Add("c", cg); err != nil {
		t.Fatal(err)
	}
	p := s.Sample()
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Error(), "cpuacct.usage: value \"12a\": line 1") {
		t.Errorf("errors = %v", p.Errors)
	}
}

func TestSamplerMalformedPSI(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	if err := tree.WriteFile("", "/c", "memory.pressure", "some avg10=0.00 avg60=x avg300=0.00 total=0\n"); err != nil {
		t.Fatal(err)
	}
	s := NewSampler(h, SamplerOptions{PSI: true})
	defer s.Close()
	if err := s.Add("c", cg); err != nil {
		t.Fatal(err)
	}
	p := s.Sample()
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Error(), "memory.pressure: line 1") || !errors.Is(p.Errors[0], ErrMalformedPSI) {
		t.Errorf("errors = %v", p.Errors)
	}
}

// TestSamplerHybridWithoutUnifiedDir: on a hybrid host a cgroup that has no
// directory in the cgroup2 tree is sampled without PSI, not reported as
// vanished.
func TestSamplerHybridWithoutUnifiedDir(t *testing.T) {
	tree := newTree(t, cgroup.Hybrid)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	if err := os.RemoveAll(tree.UnifiedDir("/c")); err != nil {
		t.Fatal(err)
	}
	s := NewSampler(h, SamplerOptions{PSI: true})
	defer s.Close()
	if err := s.Add("c", cg); err != nil {
		t.Fatal(err)
	}
	p := s.Sample()
	if len(p.Samples) != 1 || p.Samples[0].HasPSI || len(p.Vanished)+len(p.Errors) != 0 {
		t.Errorf("pass = %+v", p)
	}
}

func TestCPUInterference(t *testing.T) {
	for _, tc := range []struct {
		name                            string
		stall, throttledRate, throttled float64
		want                            float64
	}{
		{"no stall", 0, 0, 0, 0},
		{"starved, no quota", 0.9, 0, 0, 0.9},
		{"quota-bound, no neighbours", 0.8, 0.78, 1, 0.02},
		{"quota-bound and delayed by neighbours", 0.8, 0.5, 1, 0.3},
		{"throttled time exceeds stall", 0.5, 0.6, 0.2, 0},
		{"throttled time summed over CPUs", 0.7, 1.8, 0.9, 0},
	} {
		s := CgroupSample{HasPSI: true, HasRates: true, HasStallRates: true, ThrottledRate: tc.throttledRate, ThrottledFraction: tc.throttled, CPUStall: StallRates{Some: tc.stall}}
		if got, ok := s.CPUInterference(); !ok || !approx(got, tc.want, 1e-9) {
			t.Errorf("%s: CPUInterference = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := (&CgroupSample{HasRates: true, HasPSI: true}).CPUInterference(); ok {
		t.Error("CPUInterference ok without PSI")
	}
}

// TestSamplerPSIAppearsLater: on a hybrid host the runtime may create the
// cgroup2 directory after the cgroup was added; the sampler looks again
// every PSIRetry and gives stall rates from the second reading on.
func TestSamplerPSIAppearsLater(t *testing.T) {
	tree := newTree(t, cgroup.Hybrid)
	h := mustHierarchy(t, tree)
	cg := addCgroup(t, tree, h, "/c")
	if err := os.RemoveAll(tree.UnifiedDir("/c")); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	s := NewSampler(h, SamplerOptions{PSI: true, Clock: clk.Now, PSIRetry: 5 * time.Second})
	defer s.Close()
	if err := s.Add("c", cg); err != nil {
		t.Fatal(err)
	}
	s.Sample()
	if err := tree.AddCgroup("/c"); err != nil { // the unified directory appears
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if c := s.Sample().Samples[0]; c.HasPSI || !c.HasRates {
		t.Errorf("before PSIRetry elapsed: HasPSI %v HasRates %v, want false true", c.HasPSI, c.HasRates)
	}
	clk.Advance(5 * time.Second)
	if c := s.Sample().Samples[0]; !c.HasPSI || !c.HasRates || c.HasStallRates {
		t.Errorf("first reading with PSI: HasPSI %v HasRates %v HasStallRates %v, want true true false", c.HasPSI, c.HasRates, c.HasStallRates)
	}
	clk.Advance(time.Second)
	if err := tree.SetPressure("/c", cgroup.PSICPU, 250_000, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if c := s.Sample().Samples[0]; !c.HasStallRates || !approx(c.CPUStall.Some, 0.25, 1e-9) {
		t.Errorf("second reading with PSI: HasStallRates %v stall %+v, want true 0.25", c.HasStallRates, c.CPUStall)
	}
}

func TestParseHelpers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{{"0.00", 0, true}, {"12.34", 12.34, true}, {"100", 100, true}, {"1.", 0, false}, {"-1.0", 0, false}, {"", 0, false}, {"1.2.3", 0, false}} {
		got, ok := byteconv.ParseDecimal([]byte(tc.in))
		if ok != tc.ok || ok && !approx(got, tc.want, 1e-9) {
			t.Errorf("parseDecimal(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	var st PSIStats
	if err := parsePSI("f", []byte("some avg10=1.50 avg60=2.00 avg300=3.00 total=42\n"), &st); err != nil || st.HasFull || st.Some.Total != 42*time.Microsecond || st.Some.Avg300 != 3 {
		t.Errorf("some-only PSI: %+v, %v", st, err)
	}
	if err := parsePSI("f", []byte("full avg10=1.50 avg60=2.00 avg300=3.00 total=42\n"), &st); !errors.Is(err, ErrMalformedPSI) {
		t.Errorf("PSI without some line: %v", err)
	}
	if err := parsePSI("f", []byte("some avg10=1.50 avg60=2.00 total=42\n"), &st); !errors.Is(err, ErrMalformedPSI) {
		t.Errorf("PSI without avg300: %v", err)
	}
}

func ExampleSampler() {
	// A fixture cgroup v2 tree stands in for /sys/fs/cgroup; on a host use
	// cgroup.Detect(cgroup.Options{}).
	dir, _ := os.MkdirTemp("", "pressure-example")
	defer os.RemoveAll(dir)
	tree, _ := cgrouptest.New(dir, cgroup.V2, "0-3", "0")
	_ = tree.AddCgroup("/kubepods/pod1/ctr1")
	h, _ := tree.Hierarchy()
	cg, _ := h.Open("/kubepods/pod1/ctr1")

	clock := newFakeClock()
	s := NewSampler(h, SamplerOptions{PSI: true, Clock: clock.Now})
	defer s.Close()
	if err := s.Add("ctr1", cg); err != nil {
		fmt.Println(err)
		return
	}
	s.Sample() // the first pass only records counters

	// 100 ms later the container used 80 ms of CPU, was throttled in 2 of
	// 10 periods for 15 ms, and some task waited for a CPU 35 ms.
	clock.Advance(100 * time.Millisecond)
	_ = tree.SetCounters("/kubepods/pod1/ctr1", map[cgroup.Counter]uint64{
		cgroup.CounterCPUUsage: uint64(80 * time.Millisecond), cgroup.CounterCPUPeriods: 10,
		cgroup.CounterCPUThrottledPeriods: 2, cgroup.CounterCPUThrottledTime: uint64(15 * time.Millisecond),
		cgroup.CounterMemoryFile: 64 << 20,
	})
	_ = tree.SetPressure("/kubepods/pod1/ctr1", cgroup.PSICPU, 35_000, 0, 0, 0)

	for _, c := range s.Sample().Samples {
		interference, _ := c.CPUInterference()
		fmt.Printf("%s: %.2f cores, throttled %.0f%% of periods, cpu stall %.2f, interference %.2f, page cache %d MiB\n",
			c.ID, c.CPUCores, 100*c.ThrottledFraction, c.CPUStall.Some, interference, c.File>>20)
	}
	// Output:
	// ctr1: 0.80 cores, throttled 20% of periods, cpu stall 0.35, interference 0.20, page cache 64 MiB
}

// TestSamplerConcurrentAddRemove runs passes while other goroutines add
// and remove cgroups (as NRI events do); run with -race.
func TestSamplerConcurrentAddRemove(t *testing.T) {
	tree := newTree(t, cgroup.V2)
	h := mustHierarchy(t, tree)
	var cgs []*cgroup.Cgroup
	for i := 0; i < 8; i++ {
		cgs = append(cgs, addCgroup(t, tree, h, fmt.Sprintf("/c%d", i)))
	}
	s := NewSampler(h, SamplerOptions{PSI: true})
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := 0; round < 50; round++ {
			for i, cg := range cgs {
				id := fmt.Sprintf("c%d", i)
				if err := s.Add(id, cg); err != nil {
					t.Error(err)
					return
				}
				if round%2 == 1 {
					s.Remove(id)
				}
			}
		}
	}()
	for {
		select {
		case <-done:
			if p := s.Sample(); len(p.Errors)+len(p.Vanished) != 0 || len(p.Samples) != s.Len() {
				t.Errorf("final pass: %d samples, %d errors, %d vanished, Len %d", len(p.Samples), len(p.Errors), len(p.Vanished), s.Len())
			}
			return
		default:
			if p := s.Sample(); len(p.Errors)+len(p.Vanished) != 0 {
				t.Fatalf("pass errors %v vanished %v", p.Errors, p.Vanished)
			}
		}
	}
}
