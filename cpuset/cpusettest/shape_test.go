package cpusettest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShapeSizes(t *testing.T) {
	want := map[string]int{
		"vm2": 2, "intel-2s-20c-2t": 80, "epyc-nps1": 256, "epyc-nps4": 256, "four-socket": 192,
		"intel-snc2": 112, "hybrid": 24, "arm-big-little": 8, "offline-cpus": 16, "big448": 448,
	}
	all := All()
	if len(all) != len(want) {
		t.Errorf("All() has %d shapes, want %d", len(all), len(want))
	}
	for name, n := range want {
		if got := all[name].CPUs(); got != n {
			t.Errorf("%s: CPUs() = %d, want %d", name, got, n)
		}
	}
}

// Every attribute captured from the real CI VM exists in the generated VM2
// tree with the same content (node meminfo: the MemTotal line).
func TestVM2MatchesCapturedSysfs(t *testing.T) {
	realRoot := filepath.Join("..", "testdata", "vm2-sys")
	gen := Root(t, VM2)
	n := 0
	err := filepath.WalkDir(realRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(realRoot, path)
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(filepath.Join(gen, rel))
		if err != nil {
			t.Errorf("generated tree lacks %s: %v", rel, err)
			return nil
		}
		if strings.HasSuffix(rel, "meminfo") {
			want, got = []byte(strings.SplitN(string(want), "\n", 2)[0]), []byte(strings.SplitN(string(got), "\n", 2)[0])
		}
		if string(got) != string(want) {
			t.Errorf("%s = %q, real machine %q", rel, got, want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("compared only %d files", n)
	}
}

// Offline CPUs keep their directory with online=0 and lose topology and
// cache; CPU 0 has no online file.
func TestOfflineLayout(t *testing.T) {
	root := Root(t, OfflineCPUs)
	cpu := filepath.Join(root, "devices", "system", "cpu")
	if b, err := os.ReadFile(filepath.Join(cpu, "cpu12", "online")); err != nil || string(b) != "0\n" {
		t.Errorf("cpu12/online = %q, %v; want \"0\\n\"", b, err)
	}
	for _, dir := range []string{"topology", "cache"} {
		if _, err := os.Stat(filepath.Join(cpu, "cpu12", dir)); !os.IsNotExist(err) {
			t.Errorf("offline cpu12 has %s/ (err %v)", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cpu, "cpu0", "online")); !os.IsNotExist(err) {
		t.Errorf("cpu0/online exists (err %v); the kernel shows none for the boot CPU", err)
	}
	if b, _ := os.ReadFile(filepath.Join(cpu, "cpu4", "topology", "thread_siblings_list")); string(b) != "4\n" {
		t.Errorf("cpu4 siblings = %q, want \"4\\n\" (sibling 12 offline)", b)
	}
}

func TestWriteSysfsBadShape(t *testing.T) {
	for _, s := range []Shape{
		{Name: "no packages", CoresPerL3: 1},
		{Name: "no cores", Packages: 1},
		{Name: "smt4", Packages: 1, CoresPerL3: 1, ThreadsPerCore: 4},
		{Name: "l3 both", Packages: 1, CoresPerL3: 1, L3PerDie: true, L3PerNode: 2},
		{Name: "bad offline", Packages: 1, CoresPerL3: 2, Offline: "x"},
		{Name: "offline beyond", Packages: 1, CoresPerL3: 2, Offline: "5"},
		{Name: "cpu0 offline", Packages: 1, CoresPerL3: 2, Offline: "0"},
	} {
		if err := WriteSysfs(t.TempDir(), s); err == nil {
			t.Errorf("WriteSysfs accepted shape %q", s.Name)
		}
	}
}
