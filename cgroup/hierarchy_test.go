package cgroup_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
)

func newTree(t *testing.T, mode cgroup.Mode) (*cgrouptest.Tree, *cgroup.Hierarchy) {
	t.Helper()
	tree, err := cgrouptest.New(t.TempDir(), mode, "0-7", "0-1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tree.Hierarchy()
	if err != nil {
		t.Fatal(err)
	}
	return tree, h
}

func TestDetectModes(t *testing.T) {
	for _, tc := range []struct {
		mode        cgroup.Mode
		wantUnified bool
		wantCtl     []string
	}{
		{cgroup.V1, false, []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"}},
		{cgroup.Hybrid, true, []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"}},
		{cgroup.V2, true, []string{"blkio", "cpu", "cpuset", "hugetlb", "memory", "misc", "pids", "rdma"}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			tree, h := newTree(t, tc.mode)
			if h.Mode() != tc.mode {
				t.Fatalf("Mode() = %v, want %v", h.Mode(), tc.mode)
			}
			if got := strings.Join(h.Controllers(), ","); got != strings.Join(tc.wantCtl, ",") {
				t.Errorf("Controllers() = %s, want %s", got, strings.Join(tc.wantCtl, ","))
			}
			if (h.UnifiedRoot() != "") != tc.wantUnified {
				t.Errorf("UnifiedRoot() = %q, want unified=%v", h.UnifiedRoot(), tc.wantUnified)
			}
			if tc.mode != cgroup.V2 {
				// cpu and cpuacct are co-mounted in the fixture, as on Debian hosts.
				cg, _ := h.Open("/x")
				a, _ := cg.Dir(cgroup.CPU)
				b, _ := cg.Dir(cgroup.CPUAcct)
				if a != b || a != filepath.Join(tree.Dir, "sys/fs/cgroup/cpu,cpuacct/x") {
					t.Errorf("cpu dir %s, cpuacct dir %s: want both in the co-mounted cpu,cpuacct hierarchy", a, b)
				}
			}
		})
	}
}

func TestDetectHostLikeSeparateMounts(t *testing.T) {
	// This project's VMs mount cpu and cpuacct separately; mountinfo lines
	// copied in shape from such a host.
	dir := t.TempDir()
	mi := `24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 24 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,noprefix,release_agent=/x
35 31 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
36 31 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	if err := os.MkdirAll(filepath.Join(dir, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "self/mountinfo"), []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := cgroup.Detect(cgroup.Options{ProcRoot: dir, RootPrefix: "/fixture"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Mode() != cgroup.Hybrid {
		t.Fatalf("mode %v, want hybrid", h.Mode())
	}
	if got := strings.Join(h.Controllers(), ","); got != "cpu,cpuacct,cpuset" {
		t.Errorf("controllers %s: noprefix, release_agent and name=systemd must not count as controllers", got)
	}
	cg, _ := h.Open("/a")
	if d, _ := cg.Dir(cgroup.CPUAcct); d != "/fixture/sys/fs/cgroup/cpuacct/a" {
		t.Errorf("cpuacct dir %s", d)
	}
	if d, _ := cg.UnifiedDir(); d != "/fixture/sys/fs/cgroup/unified/a" {
		t.Errorf("unified dir %s", d)
	}
	if _, err := cg.Dir(cgroup.Memory); !errors.Is(err, cgroup.ErrNoController) {
		t.Errorf("memory is not mounted: got %v, want ErrNoController", err)
	}
}

func TestDetectBadMountinfo(t *testing.T) {
	for name, content := range map[string]string{
		"truncated line":  "32 31 0:28 / /sys/fs/cgroup/cpu rw\n",
		"no cgroup mount": "24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "self"), 0o755)
			os.WriteFile(filepath.Join(dir, "self/mountinfo"), []byte(content), 0o644)
			_, err := cgroup.Detect(cgroup.Options{ProcRoot: dir})
			if !errors.Is(err, cgroup.ErrMalformedMountinfo) {
				t.Fatalf("got %v, want ErrMalformedMountinfo", err)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "self/mountinfo")) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := cgroup.Detect(cgroup.Options{ProcRoot: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "mountinfo") {
			t.Fatalf("got %v, want an error naming mountinfo", err)
		}
	})
}

func TestResolvePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{in: "/kubepods/burstable/pod1234/abcd", want: "/kubepods/burstable/pod1234/abcd"},
		{in: "kubepods/besteffort/podx/c1", want: "/kubepods/besteffort/podx/c1"},
		{in: "/a//b/./c/", want: "/a/b/c"},
		{in: "kubepods-burstable-pod12_34.slice:cri-containerd:abcd",
			want: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12_34.slice/cri-containerd-abcd.scope"},
		{in: "kubepods-pod9.slice:cri-containerd:ef01", want: "/kubepods.slice/kubepods-pod9.slice/cri-containerd-ef01.scope"},
		{in: "system.slice:docker:abc", want: "/system.slice/docker-abc.scope"},
		{in: ":cri-containerd:abc", want: "/system.slice/cri-containerd-abc.scope"},
		{in: "machine.slice:libpod:sub.slice", want: "/machine.slice/sub.slice"},
		{in: "/kubepods/../../etc", err: cgroup.ErrEscapesRoot},
		{in: "../x", err: cgroup.ErrEscapesRoot},
		{in: "kubepods.slice:cri-containerd:..", err: cgroup.ErrEscapesRoot},
		{in: "kube--pods.slice:cri-containerd:abc", err: cgroup.ErrInvalidPath},
		{in: "-kube.slice:cri-containerd:abc", err: cgroup.ErrInvalidPath},
		{in: "kubepods.slice:cri-containerd:", err: cgroup.ErrInvalidPath},
		{in: "", err: cgroup.ErrInvalidPath},
	} {
		got, err := cgroup.ResolvePath(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ResolvePath(%q) = %q, %v; want error %v", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolvePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestOpenResolvesPerController(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.Hybrid, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			tree, h := newTree(t, mode)
			cg, err := h.Open("kubepods-burstable-podu1.slice:cri-containerd:c1")
			if err != nil {
				t.Fatal(err)
			}
			rel := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/cri-containerd-c1.scope"
			for ctl, mount := range map[string]string{cgroup.CPU: "cpu,cpuacct", cgroup.CPUSet: "cpuset", cgroup.Memory: "memory"} {
				d, err := cg.Dir(ctl)
				if err != nil {
					t.Fatal(err)
				}
				if want := tree.ControllerDir(mount, rel); d != want {
					t.Errorf("Dir(%s) = %s, want %s", ctl, d, want)
				}
			}
		})
	}
}

func TestValuesByMeaning(t *testing.T) {
	const rel = "/kubepods/burstable/pod1/c1"
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.Hybrid, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			tree, h := newTree(t, mode)
			if err := tree.AddCgroup(rel); err != nil {
				t.Fatal(err)
			}
			cg, err := h.Open(rel)
			if err != nil {
				t.Fatal(err)
			}
			v2 := mode == cgroup.V2
			cpuMount := "cpu,cpuacct"

			// Defaults as the kernel shows them read back by meaning.
			if s, err := cg.CPUShares(); err != nil || s != 1024 {
				t.Errorf("default CPUShares = %d, %v; want 1024", s, err)
			}
			if q, p, err := cg.CPUQuota(); err != nil || q != -1 || p != 100000 {
				t.Errorf("default CPUQuota = %d/%d, %v; want -1/100000", q, p, err)
			}
			if l, err := cg.MemoryLimit(); err != nil || l != -1 {
				t.Errorf("default MemoryLimit = %d, %v; want -1 (unlimited)", l, err)
			}

			// Shares: v2 stores runc's weight conversion.
			if err := cg.SetCPUShares(512); err != nil {
				t.Fatal(err)
			}
			file, want := "cpu.shares", "512"
			if v2 {
				file, want = "cpu.weight", "59" // runc: ceil(10^((9²+125·9)/612 - 7/34)) = ceil(58.2)
			}
			if got, _ := tree.ReadFile(cpuMount, rel, file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
			if s, _ := cg.CPUShares(); v2 && cgroup.SharesToWeight(s) != 59 || !v2 && s != 512 {
				t.Errorf("CPUShares read back %d", s)
			}

			if err := cg.SetCPUQuota(20000, 100000); err != nil {
				t.Fatal(err)
			}
			if v2 {
				if got, _ := tree.ReadFile(cpuMount, rel, "cpu.max"); got != "20000 100000" {
					t.Errorf("cpu.max = %q", got)
				}
			} else {
				q, _ := tree.ReadFile(cpuMount, rel, "cpu.cfs_quota_us")
				p, _ := tree.ReadFile(cpuMount, rel, "cpu.cfs_period_us")
				if q != "20000" || p != "100000" {
					t.Errorf("quota/period files = %s/%s", q, p)
				}
			}
			if q, p, _ := cg.CPUQuota(); q != 20000 || p != 100000 {
				t.Errorf("CPUQuota = %d/%d", q, p)
			}
			if err := cg.SetCPUQuota(-1, 0); err != nil {
				t.Fatal(err)
			}
			if q, p, _ := cg.CPUQuota(); q != -1 || p != 100000 {
				t.Errorf("after unlimited: CPUQuota = %d/%d, want -1/100000", q, p)
			}

			if err := cg.SetCPUIdle(true); err != nil {
				t.Fatal(err)
			}
			if idle, err := cg.CPUIdle(); err != nil || !idle {
				t.Errorf("CPUIdle = %v, %v", idle, err)
			}

			if err := cg.SetCPUSetCPUs(cpuset.New(2, 3, 5)); err != nil {
				t.Fatal(err)
			}
			if got, _ := tree.ReadFile("cpuset", rel, "cpuset.cpus"); got != "2-3,5" {
				t.Errorf("cpuset.cpus = %q", got)
			}
			if s, _ := cg.CPUSetCPUs(); !s.Equals(cpuset.New(2, 3, 5)) {
				t.Errorf("CPUSetCPUs = %v", s)
			}
			if err := cg.SetCPUSetMems(cpuset.New(1)); err != nil {
				t.Fatal(err)
			}
			if s, _ := cg.CPUSetMems(); !s.Equals(cpuset.New(1)) {
				t.Errorf("CPUSetMems = %v", s)
			}

			if err := cg.SetMemoryLimit(256 << 20); err != nil {
				t.Fatal(err)
			}
			file = "memory.limit_in_bytes"
			if v2 {
				file = "memory.max"
			}
			if got, _ := tree.ReadFile("memory", rel, file); got != "268435456" {
				t.Errorf("%s = %q", file, got)
			}
			if err := cg.SetMemoryLimit(-1); err != nil {
				t.Fatal(err)
			}
			if got, _ := tree.ReadFile("memory", rel, file); v2 && got != "max" || !v2 && got != "-1" {
				t.Errorf("unlimited %s = %q", file, got)
			}
			if err := cg.SetMemorySoftLimit(64 << 20); err != nil {
				t.Fatal(err)
			}
			file = "memory.soft_limit_in_bytes"
			if v2 {
				file = "memory.low"
			}
			if got, _ := tree.ReadFile("memory", rel, file); got != "67108864" {
				t.Errorf("soft limit in %s = %q", file, got)
			}

			// v2-only knobs are typed as unsupported on v1.
			for name, set := range map[string]func(int64) error{"high": cg.SetMemoryHigh, "low": cg.SetMemoryLow, "min": cg.SetMemoryMin} {
				err := set(1 << 20)
				if v2 && err != nil {
					t.Errorf("SetMemory%s on v2: %v", name, err)
				}
				if !v2 && !errors.Is(err, cgroup.ErrNotSupported) {
					t.Errorf("SetMemory%s on %v: %v, want ErrNotSupported", name, mode, err)
				}
			}
			if v2 {
				if got, _ := tree.ReadFile("", rel, "memory.high"); got != "1048576" {
					t.Errorf("memory.high = %q", got)
				}
			}
		})
	}
}

func TestBadValuesAndFiles(t *testing.T) {
	const rel = "/pod/c"
	tree, h := newTree(t, cgroup.V1)
	if err := tree.AddCgroup(rel); err != nil {
		t.Fatal(err)
	}
	cg, _ := h.Open(rel)

	if err := cg.SetCPUShares(1); err == nil || !strings.Contains(err.Error(), "[2, 262144]") {
		t.Errorf("shares 1: %v, want range error naming the allowed values", err)
	}
	if err := cg.SetCPUQuota(500, 100000); err == nil || !strings.Contains(err.Error(), "1000us") {
		t.Errorf("quota 500us: %v, want minimum error", err)
	}
	if err := cg.SetCPUQuota(20000, 5_000_000); err == nil || !strings.Contains(err.Error(), "[1000, 1000000]") {
		t.Errorf("period 5s: %v, want range error", err)
	}

	// Malformed content: the error names file and value.
	tree.WriteFile("cpu,cpuacct", rel, "cpu.shares", "lots\n")
	_, err := cg.CPUShares()
	var fe *cgroup.FileError
	if !errors.As(err, &fe) || fe.Op != "parse" || fe.Value != "lots" || !strings.HasSuffix(fe.Path, "/pod/c/cpu.shares") {
		t.Errorf("malformed cpu.shares: %v, want parse FileError naming file and value", err)
	}
	tree.WriteFile("cpuset", rel, "cpuset.cpus", "0-x\n")
	if _, err := cg.CPUSetCPUs(); !errors.As(err, &fe) || !strings.Contains(err.Error(), "cpuset.cpus") {
		t.Errorf("malformed cpuset.cpus: %v", err)
	}

	// A knob missing in a live cgroup is unsupported, not vanished.
	os.Remove(filepath.Join(tree.ControllerDir("cpu,cpuacct", rel), "cpu.idle"))
	if err := cg.SetCPUIdle(true); !errors.Is(err, cgroup.ErrNotSupported) || errors.Is(err, cgroup.ErrVanished) {
		t.Errorf("missing cpu.idle: %v, want ErrNotSupported", err)
	}

	// A cgroup that is gone is ErrVanished, for reads and writes.
	gone, _ := h.Open("/pod/gone")
	if _, err := gone.CPUShares(); !errors.Is(err, cgroup.ErrVanished) {
		t.Errorf("read of vanished cgroup: %v, want ErrVanished", err)
	}
	if err := gone.SetMemoryLimit(1 << 20); !errors.Is(err, cgroup.ErrVanished) || !strings.Contains(err.Error(), "1048576") {
		t.Errorf("write to vanished cgroup: %v, want ErrVanished naming the value", err)
	}
	if gone.Exists() || !cg.Exists() {
		t.Errorf("Exists: gone=%v live=%v", gone.Exists(), cg.Exists())
	}

	if _, err := cg.Child("../x"); !errors.Is(err, cgroup.ErrInvalidPath) {
		t.Errorf("Child(../x): %v", err)
	}
}

func TestCreateV2EnablesControllers(t *testing.T) {
	tree, h := newTree(t, cgroup.V2)
	// The kernel gives every new cgroup its interface files; in the
	// fixture the intermediate level is made by hand.
	if err := tree.AddCgroup("/strata"); err != nil {
		t.Fatal(err)
	}
	cg, err := h.Create("/strata/pool0")
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"/", "/strata"} {
		got, _ := os.ReadFile(filepath.Join(tree.UnifiedDir(rel), "cgroup.subtree_control"))
		// A fixture file keeps only the last write where the kernel
		// accumulates; the last controller enabled is pids.
		if string(got) != "+pids" {
			t.Errorf("%s/cgroup.subtree_control = %q, want the controllers enabled ending with +pids", rel, got)
		}
	}
	if !cg.Exists() {
		t.Errorf("created cgroup missing")
	}
}

func TestSharesWeightConversion(t *testing.T) {
	for _, tc := range []struct{ shares, weight uint64 }{{2, 1}, {1024, 100}, {262144, 10000}, {512, 59}, {102, 17}} {
		if w := cgroup.SharesToWeight(tc.shares); w != tc.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tc.shares, w, tc.weight)
		}
	}
	// The inverse returns a shares value that converts back to the weight.
	for w := uint64(1); w <= 10000; w++ {
		if got := cgroup.SharesToWeight(cgroup.WeightToShares(w)); got != w {
			t.Fatalf("SharesToWeight(WeightToShares(%d)) = %d", w, got)
		}
	}
	if s := cgroup.WeightToShares(100); s != 1024 {
		t.Errorf("WeightToShares(100) = %d, want 1024", s)
	}
}
