package cpuset_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/cpuset"
	kcpuset "k8s.io/utils/cpuset"
)

func fixtureCgroups(t *testing.T, mode cgroup.Mode, rels ...string) (*cgrouptest.Tree, []*cgroup.Cgroup) {
	t.Helper()
	tree, err := cgrouptest.New(t.TempDir(), mode, "0-7", "0-1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tree.Hierarchy()
	if err != nil {
		t.Fatal(err)
	}
	var cgs []*cgroup.Cgroup
	for _, rel := range rels {
		if err := tree.AddCgroup(rel); err != nil {
			t.Fatal(err)
		}
		// A kernel's new v1 cpuset starts empty and cgroup.Create copies
		// the parent's; do the same for the fixture.
		for name, v := range map[string]string{"cpuset.cpus": "0-7\n", "cpuset.mems": "0-1\n"} {
			if err := tree.WriteFile("cpuset", rel, name, v); err != nil {
				t.Fatal(err)
			}
		}
		cg, err := h.Open(rel)
		if err != nil {
			t.Fatal(err)
		}
		cgs = append(cgs, cg)
	}
	return tree, cgs
}

func TestApplyFixture(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		t.Run(mode.String(), func(t *testing.T) {
			_, cgs := fixtureCgroups(t, mode, "/pool", "/pool/a", "/pool/b")
			pool, a, b := cgs[0], cgs[1], cgs[2]
			err := cpuset.ApplyNested(
				cpuset.Assignment{Cgroup: pool, CPUs: mustParse(t, "2-5"), Mems: mustParse(t, "0")},
				[]cpuset.Assignment{
					{Cgroup: a, CPUs: mustParse(t, "2-3"), Mems: mustParse(t, "0")},
					{Cgroup: b, CPUs: mustParse(t, "4-5"), Mems: mustParse(t, "0")},
				})
			if err != nil {
				t.Fatal(err)
			}
			for cg, want := range map[*cgroup.Cgroup]string{pool: "2-5", a: "2-3", b: "4-5"} {
				got, err := cg.CPUSetCPUs()
				if err != nil || got.String() != want {
					t.Errorf("%s cpus = %s, %v; want %s", cg.Path(), got, err, want)
				}
				if mems, _ := cg.CPUSetMems(); mems.String() != "0" {
					t.Errorf("%s mems = %s, want 0", cg.Path(), mems)
				}
			}
		})
	}
}

func TestApplyBadInput(t *testing.T) {
	_, cgs := fixtureCgroups(t, cgroup.V1, "/pool", "/pool/a")
	pool, a := cgs[0], cgs[1]
	if err := cpuset.Apply(pool, kcpuset.New(), mustParse(t, "0")); err == nil {
		t.Error("Apply accepted empty CPUs")
	}
	if err := cpuset.Apply(pool, mustParse(t, "1"), kcpuset.New()); err == nil {
		t.Error("Apply accepted empty mems")
	}
	err := cpuset.ApplyNested(cpuset.Assignment{Cgroup: pool, CPUs: mustParse(t, "0-1"), Mems: mustParse(t, "0")},
		[]cpuset.Assignment{{Cgroup: a, CPUs: mustParse(t, "1-2"), Mems: mustParse(t, "0")}})
	if err == nil || !strings.Contains(err.Error(), a.Path()) || !strings.Contains(err.Error(), "2") {
		t.Errorf("child outside parent: error = %v, want one naming %s and CPU 2", err, a.Path())
	}
	if got, _ := pool.CPUSetCPUs(); got.String() != "0-7" {
		t.Errorf("rejected input changed %s to %s", pool.Path(), got)
	}
}

// A failing mems write must not leave the new CPUs behind. The mems file
// is made unwritable by pointing it at a read-only sysfs attribute (root
// can write any regular file, but not a kernfs file without a store).
func TestApplyRestoresOnFailure(t *testing.T) {
	const ro = "/sys/devices/system/node/online"
	if _, err := os.Stat(ro); err != nil {
		t.Skipf("need %s as a read-only file: %v", ro, err)
	}
	tree, cgs := fixtureCgroups(t, cgroup.V1, "/pool")
	pool := cgs[0]
	mems := filepath.Join(tree.ControllerDir("cpuset", "/pool"), "cpuset.mems")
	if err := os.Remove(mems); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ro, mems); err != nil {
		t.Fatal(err)
	}
	before, _ := pool.CPUSetMems()
	newMems := before.Union(kcpuset.New(7)) // differs, so it must be written
	err := cpuset.Apply(pool, mustParse(t, "3"), newMems)
	if err == nil {
		t.Fatal("Apply succeeded although cpuset.mems is read-only")
	}
	if !strings.Contains(err.Error(), pool.Path()) {
		t.Errorf("error %q does not name %s", err, pool.Path())
	}
	if got, _ := pool.CPUSetCPUs(); got.String() != "0-7" {
		t.Errorf("after the failed Apply cpus = %s, want the old 0-7 back", got)
	}
}
