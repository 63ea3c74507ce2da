package pressure

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// procFixture writes the procfs files NodeSampler reads, in the layout of a
// Linux 6.x /proc (USER_HZ 100), into dir.
type procFixture struct {
	t   testing.TB
	dir string
}

func newProcFixture(t testing.TB) *procFixture {
	t.Helper()
	p := &procFixture{t: t, dir: t.TempDir()}
	p.setStat(1000, 500, 10000, 20)
	p.write("meminfo", strings.Join([]string{
		"MemTotal:       24576000 kB", "MemFree:         1000000 kB", "MemAvailable:   20000000 kB",
		"Buffers:           10000 kB", "Cached:          8000000 kB", "SwapCached:            0 kB",
		"Active:          6000000 kB", "Inactive:        4000000 kB", "Active(anon):    1000000 kB",
		"Inactive(anon):   500000 kB", "Active(file):    5000000 kB", "Inactive(file):  3500000 kB",
		"AnonPages:       1400000 kB", "Shmem:             20000 kB",
	}, "\n")+"\n")
	p.setPSI("cpu", 1_000_000, 0, false)
	p.setPSI("memory", 2_000_000, 1_000_000, true)
	p.setPSI("io", 3_000_000, 2_000_000, true)
	return p
}

func (p *procFixture) write(name, content string) {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// setStat writes /proc/stat for two CPUs with the given totals in ticks
// (1/100 s), split evenly between cpu0 and cpu1.
func (p *procFixture) setStat(user, system, idle, iowait uint64) {
	line := func(name string, div uint64) string {
		return fmt.Sprintf("%s %d 0 %d %d %d 0 0 0 0 0\n", name, user/div, system/div, idle/div, iowait/div)
	}
	p.write("stat", line("cpu ", 1)+line("cpu0", 2)+line("cpu1", 2)+
		"intr 0\nctxt 100\nbtime 1700000000\nprocesses 10\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")
}

// setPSI writes /proc/pressure/<res> with totals in microseconds; CPU has a
// full line since Linux 5.13, written when full is true.
func (p *procFixture) setPSI(res string, some, full uint64, withFull bool) {
	s := fmt.Sprintf("some avg10=1.00 avg60=2.00 avg300=3.00 total=%d\n", some)
	if withFull {
		s += fmt.Sprintf("full avg10=0.50 avg60=0.00 avg300=0.00 total=%d\n", full)
	}
	p.write("pressure/"+res, s)
}

func TestNodeSampler(t *testing.T) {
	proc := newProcFixture(t)
	clk := newFakeClock()
	n, err := NewNodeSampler(NodeSamplerOptions{ProcRoot: proc.dir, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if s.HasRates || s.CPUs != 2 || s.MemTotal != 24576000*1024 || s.MemAvailable != 20000000*1024 ||
		s.ActiveFile != 5000000*1024 || s.InactiveFile != 3500000*1024 || s.Cached != 8000000*1024 || s.AnonPages != 1400000*1024 {
		t.Errorf("first sample = %+v", s)
	}
	if !s.HasCPUPressure || s.CPUPressure.HasFull || !s.HasIOPressure || s.IOPressure.Full.Total != 2*time.Second || s.MemoryPressure.Some.Avg60 != 2 {
		t.Errorf("PSI = cpu %+v memory %+v io %+v", s.CPUPressure, s.MemoryPressure, s.IOPressure)
	}

	// Two seconds later: 300 ticks busy (1.5 CPUs), 40 ticks iowait, CPU
	// stall grew 0.5 s (25 %), memory full 0.2 s (10 %).
	clk.Advance(2 * time.Second)
	proc.setStat(1200, 600, 10100, 60)
	proc.setPSI("cpu", 1_500_000, 0, false)
	proc.setPSI("memory", 2_400_000, 1_200_000, true)
	s, err = n.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasRates || !approx(s.CPUBusy, 1.5, 1e-9) || !approx(s.CPUIOWait, 0.2, 1e-9) {
		t.Errorf("rates: HasRates %v busy %v iowait %v, want true 1.5 0.2", s.HasRates, s.CPUBusy, s.CPUIOWait)
	}
	if !approx(s.CPUStall.Some, 0.25, 1e-9) || !approx(s.MemoryStall.Some, 0.2, 1e-9) || !approx(s.MemoryStall.Full, 0.1, 1e-9) || s.IOStall.Some != 0 {
		t.Errorf("stalls cpu %+v memory %+v io %+v", s.CPUStall, s.MemoryStall, s.IOStall)
	}
}

func TestNodeSamplerWithoutPSI(t *testing.T) {
	proc := newProcFixture(t)
	if err := os.RemoveAll(filepath.Join(proc.dir, "pressure")); err != nil {
		t.Fatal(err)
	}
	n, err := NewNodeSampler(NodeSamplerOptions{ProcRoot: proc.dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.Sample()
	if err != nil {
		t.Fatalf("a kernel without PSI is not an error: %v", err)
	}
	if s.HasCPUPressure || s.HasMemoryPressure || s.HasIOPressure {
		t.Errorf("Has*Pressure set without /proc/pressure: %+v", s)
	}
}

func TestNodeSamplerMalformed(t *testing.T) {
	for _, tc := range []struct{ file, content, want string }{
		{"pressure/memory", "some avg10=x avg60=0.00 avg300=0.00 total=1\n", "pressure/memory"},
		{"pressure/io", "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n", "no \"some\" line"},
		{"stat", "cpu 1 2\n", "/stat: no per-CPU"},
		{"stat", "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 a b\n", "/stat"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			proc := newProcFixture(t)
			proc.write(tc.file, tc.content)
			n, err := NewNodeSampler(NodeSamplerOptions{ProcRoot: proc.dir})
			if err != nil {
				t.Fatal(err)
			}
			_, err = n.Sample()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Sample() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
