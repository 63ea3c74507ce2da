package cgroup_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/internal/testutil"
)

func statTree(t testing.TB, mode cgroup.Mode, rel string) (*cgrouptest.Tree, *cgroup.Cgroup) {
	t.Helper()
	tree, err := cgrouptest.New(t.TempDir(), mode, "0-3", "0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.AddCgroup(rel); err != nil {
		t.Fatal(err)
	}
	h, err := tree.Hierarchy()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := h.Open(rel)
	if err != nil {
		t.Fatal(err)
	}
	return tree, cg
}

func TestMemoryStatByMeaning(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			tree, cg := statTree(t, mode, "/pod/ctr")
			if err := tree.SetCounters("/pod/ctr", map[cgroup.Counter]uint64{
				cgroup.CounterMemoryAnon: 1 << 20, cgroup.CounterMemoryFile: 3 << 20,
				cgroup.CounterMemoryActiveFile: 2 << 20, cgroup.CounterMemoryInactiveFile: 1 << 20,
			}); err != nil {
				t.Fatal(err)
			}
			st, err := cg.MemoryStat()
			if err != nil {
				t.Fatal(err)
			}
			want := cgroup.MemoryStat{Anon: 1 << 20, File: 3 << 20, ActiveFile: 2 << 20, InactiveFile: 1 << 20}
			if st != want {
				t.Errorf("MemoryStat = %+v, want %+v", st, want)
			}
			// v1 reads the hierarchical total_* keys, not the cgroup's own.
			if mode == cgroup.V1 {
				raw, _ := tree.ReadFile("memory", "/pod/ctr", "memory.stat")
				if !strings.HasPrefix(raw, "cache 0\n") || !strings.Contains(raw, "total_cache 3145728") {
					t.Errorf("fixture memory.stat not as expected:\n%s", raw)
				}
			}
			usageFile, mount := "memory.usage_in_bytes", "memory"
			if mode == cgroup.V2 {
				usageFile, mount = "memory.current", ""
			}
			if err := tree.WriteFile(mount, "/pod/ctr", usageFile, "12345678\n"); err != nil {
				t.Fatal(err)
			}
			if u, err := cg.MemoryUsage(); err != nil || u != 12345678 {
				t.Errorf("MemoryUsage = %d, %v", u, err)
			}
			if err := tree.WriteFile(mount, "/pod/ctr", "memory.stat", "anon 1\ntotal_rss 1\nbroken\n"); err != nil {
				t.Fatal(err)
			}
			_, err = cg.MemoryStat()
			var fe *cgroup.FileError
			if !errors.As(err, &fe) || !strings.HasSuffix(fe.Path, "memory.stat") || !strings.Contains(err.Error(), "line 3") {
				t.Errorf("malformed memory.stat: %v, want a FileError naming the file and line 3", err)
			}
		})
	}
}

func TestReclaimAndOOMGroupFiles(t *testing.T) {
	tree, cg := statTree(t, cgroup.V2, "/c")
	if err := cg.ReclaimMemory(1<<20, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("", "/c", "memory.reclaim"); got != "1048576 swappiness=0" {
		t.Errorf("memory.reclaim = %q", got)
	}
	if err := cg.ReclaimMemory(4096, -1); err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("", "/c", "memory.reclaim"); got != "4096" {
		t.Errorf("memory.reclaim = %q", got)
	}
	for _, bad := range []struct {
		n int64
		s int
	}{{0, 0}, {-1, 0}, {1, 201}} {
		if err := cg.ReclaimMemory(bad.n, bad.s); err == nil {
			t.Errorf("ReclaimMemory(%d, %d) accepted", bad.n, bad.s)
		}
	}
	if err := cg.SetOOMGroup(true); err != nil {
		t.Fatal(err)
	}
	if got, _ := tree.ReadFile("", "/c", "memory.oom.group"); got != "1" {
		t.Errorf("memory.oom.group = %q", got)
	}
	if on, err := cg.OOMGroup(); err != nil || !on {
		t.Errorf("OOMGroup = %v, %v", on, err)
	}

	_, v1 := statTree(t, cgroup.V1, "/c")
	if err := v1.ReclaimMemory(1<<20, 0); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("v1 ReclaimMemory = %v, want ErrNotSupported", err)
	}
	if _, err := v1.OOMGroup(); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("v1 OOMGroup = %v, want ErrNotSupported", err)
	}
}

func TestPressureFile(t *testing.T) {
	tree, v2 := statTree(t, cgroup.V2, "/a/b")
	if p, err := v2.PressureFile(cgroup.PSIMemory); err != nil || p != tree.UnifiedDir("/a/b")+"/memory.pressure" {
		t.Errorf("v2 PressureFile = %q, %v", p, err)
	}
	htree, hybrid := statTree(t, cgroup.Hybrid, "/a/b")
	p, err := hybrid.PressureFile(cgroup.PSICPU)
	if err != nil || p != htree.UnifiedDir("/a/b")+"/cpu.pressure" || !strings.Contains(p, "/unified/") {
		t.Errorf("hybrid PressureFile = %q, %v", p, err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("hybrid fixture lacks %s: %v", p, err)
	}
	if _, err := hybrid.PressureFile("irq"); err == nil {
		t.Error("PressureFile(irq) accepted")
	}
	_, v1 := statTree(t, cgroup.V1, "/a")
	if _, err := v1.PressureFile(cgroup.PSICPU); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("v1 PressureFile = %v, want ErrNotSupported", err)
	}
}

// TestJoinUnifiedFixture checks where JoinUnified writes; creating a
// missing cgroup2 directory (whose files only the kernel can make) is
// covered by TestKernelJoinUnified.
func TestJoinUnifiedFixture(t *testing.T) {
	tree, cg := statTree(t, cgroup.Hybrid, "/c")
	if err := cg.JoinUnified(4242); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(tree.UnifiedDir("/c"), "cgroup.procs"))
	if err != nil || string(b) != "4242" {
		t.Errorf("unified cgroup.procs = %q, %v", b, err)
	}
	if b, _ := tree.ReadFile("cpu,cpuacct", "/c", "cgroup.procs"); b != "" {
		t.Errorf("JoinUnified touched the v1 cgroup.procs: %q", b)
	}
	_, v1 := statTree(t, cgroup.V1, "/c")
	if err := v1.JoinUnified(1); !errors.Is(err, cgroup.ErrNotSupported) {
		t.Errorf("v1 JoinUnified = %v, want ErrNotSupported", err)
	}
}

func TestCounterSources(t *testing.T) {
	all := []cgroup.Counter{
		cgroup.CounterCPUUsage, cgroup.CounterCPUPeriods, cgroup.CounterCPUThrottledPeriods, cgroup.CounterCPUThrottledTime,
		cgroup.CounterMemoryAnon, cgroup.CounterMemoryFile, cgroup.CounterMemoryActiveFile, cgroup.CounterMemoryInactiveFile,
	}
	for _, tc := range []struct {
		mode  cgroup.Mode
		files []string
	}{
		{cgroup.V1, []string{"cpuacct.usage", "cpu.stat", "memory.stat"}},
		{cgroup.V2, []string{"cpu.stat", "memory.stat"}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			tree, cg := statTree(t, tc.mode, "/c")
			srcs, err := cg.CounterSources(all...)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, s := range srcs {
				files = append(files, filepath.Base(s.Path))
			}
			if strings.Join(files, " ") != strings.Join(tc.files, " ") {
				t.Fatalf("files = %v, want %v", files, tc.files)
			}
			// Values come out in canonical units: ns for CPU time.
			if err := tree.SetCounters("/c", map[cgroup.Counter]uint64{cgroup.CounterCPUUsage: 5_000_000, cgroup.CounterCPUThrottledTime: 7_000}); err != nil {
				t.Fatal(err)
			}
			var out [cgroup.NumCounters]uint64
			for _, s := range srcs {
				b, err := os.ReadFile(s.Path)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Parse(b, &out); err != nil {
					t.Fatal(err)
				}
			}
			if out[cgroup.CounterCPUUsage] != 5_000_000 || out[cgroup.CounterCPUThrottledTime] != 7_000 {
				t.Errorf("parsed %v", out)
			}
			// A file missing an expected key names it.
			err = srcs[len(srcs)-1].Parse([]byte("anon 1\n"), &out)
			if !errors.Is(err, cgroup.ErrMissingKey) || !strings.Contains(err.Error(), "inactive_file") {
				t.Errorf("Parse of a short memory.stat = %v", err)
			}
		})
	}
	_, cg := statTree(t, cgroup.V2, "/c")
	if _, err := cg.CounterSources(cgroup.NumCounters); err == nil {
		t.Error("CounterSources accepted an unknown counter")
	}
}

// TestKernelJoinUnified places a process in a test cgroup's cgroup2
// directory on a hybrid host and checks that the kernel agrees and that
// per-cgroup PSI files appear.
func TestKernelJoinUnified(t *testing.T) {
	testutil.RequireRoot(t)
	h, cg := testutil.NewCgroup(t)
	if h.Mode() != cgroup.Hybrid {
		t.Skipf("JoinUnified does extra work only on hybrid hosts; this one is %v", h.Mode())
	}
	cmd := testutil.StartInCgroup(t, cg, "sleep", "1000")
	if err := cg.JoinUnified(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "0::"+cg.Path()+"\n") {
		t.Errorf("/proc/PID/cgroup does not show the unified path %s:\n%s", cg.Path(), b)
	}
	for _, r := range []cgroup.PSIResource{cgroup.PSICPU, cgroup.PSIMemory, cgroup.PSIIO} {
		p, err := cg.PressureFile(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("per-cgroup PSI: %v", err)
		}
	}
}
