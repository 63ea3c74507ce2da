package iolimit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/iolimit"
)

// sysFixture is a sysfs tree laid out as Linux lays out block devices:
// devices/…/block/<disk>[/<part>] holding dev, partition and
// queue/scheduler; dev/block/<maj:min>, class/block/<name> and
// block/<disk> are relative symlinks into it.
type sysFixture struct {
	t    testing.TB
	root string
}

func newSys(t testing.TB) *sysFixture {
	return &sysFixture{t: t, root: t.TempDir()}
}

func (s *sysFixture) write(rel, content string) {
	s.t.Helper()
	p := filepath.Join(s.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sysFixture) link(rel, target string) {
	s.t.Helper()
	p := filepath.Join(s.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		s.t.Fatal(err)
	}
}

// disk adds a whole disk with a scheduler line ("none [mq-deadline] bfq",
// "" for none) and partitions name → maj:min.
func (s *sysFixture) disk(name, num, sched string, parts map[string]string) {
	dir := "devices/virtual/block/" + name
	s.write(dir+"/dev", num+"\n")
	if sched != "" {
		s.write(dir+"/queue/scheduler", sched+"\n")
	}
	s.link("dev/block/"+num, "../../"+dir)
	s.link("class/block/"+name, "../../"+dir)
	s.link("block/"+name, "../"+dir)
	for p, pnum := range parts {
		s.write(dir+"/"+p+"/dev", pnum+"\n")
		s.write(dir+"/"+p+"/partition", "1\n")
		s.link("dev/block/"+pnum, "../../"+dir+"/"+p)
		s.link("class/block/"+p, "../../"+dir+"/"+p)
	}
}

// standardSys has sda (mq-deadline, bfq offered) with partition sda1,
// nvme0n1 under bfq and loop0 with no scheduler choice.
func standardSys(t testing.TB) *sysFixture {
	s := newSys(t)
	s.disk("sda", "8:0", "none [mq-deadline] kyber bfq", map[string]string{"sda1": "8:1"})
	s.disk("nvme0n1", "259:0", "none mq-deadline [bfq]", nil)
	s.disk("loop0", "7:0", "none", nil)
	return s
}

func cgFixture(t testing.TB, mode cgroup.Mode, files cgrouptest.IOFiles) (*cgrouptest.Tree, *cgroup.Cgroup) {
	t.Helper()
	return cgrouptest.NewIOCgroup(t, mode, files, "/pods/c1")
}

func limiter(s *sysFixture) *iolimit.Limiter {
	return iolimit.New(iolimit.Options{SysRoot: s.root, ProcRoot: "/proc", DevRoot: filepath.Join(s.root, "devnodes")})
}
