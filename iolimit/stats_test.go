package iolimit_test

import (
	"testing"
	"time"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/iolimit"
)

func statsFixture(t testing.TB, mode cgroup.Mode) (*cgrouptest.Tree, *iolimit.Stats) {
	tree, _ := cgFixture(t, mode, cgrouptest.IOFiles{})
	if mode == cgroup.V2 {
		_ = tree.WriteFile("", "/pods/c1", "io.stat", "7:0 rbytes=1048576 wbytes=0 rios=16 wios=0 dbytes=0 dios=0\n254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
		_ = tree.WriteFile("", "/pods/c1", "io.pressure", "some avg10=12.50 avg60=3.00 avg300=1.00 total=123456\nfull avg10=10.00 avg60=2.00 avg300=0.50 total=100000\n")
	} else {
		_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.io_service_bytes", "7:0 Read 1048576\n7:0 Write 0\n7:0 Sync 1048576\n7:0 Async 0\n7:0 Discard 0\n7:0 Total 1048576\nTotal 1048576\n")
		_ = tree.WriteFile("blkio", "/pods/c1", "blkio.throttle.io_serviced", "7:0 Read 16\n7:0 Write 0\n7:0 Sync 16\n7:0 Async 0\n7:0 Discard 0\n7:0 Total 16\nTotal 16\n")
	}
	s, err := iolimit.OpenStats(mustOpen(t, tree, "/pods/c1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return tree, s
}

func mustOpen(t testing.TB, tree *cgrouptest.Tree, rel string) *cgroup.Cgroup {
	h, err := tree.Hierarchy()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := h.Open(rel)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

func TestStats(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.Hybrid, cgroup.V2} {
		tree, s := statsFixture(t, mode)
		var r iolimit.Reading
		if err := s.Read(&r); err != nil {
			t.Fatal(err)
		}
		loop := r.Device(cgroup.DevNum{Major: 7})
		if loop.ReadBytes != 1<<20 || loop.ReadIOs != 16 {
			t.Errorf("%v: 7:0 = %+v", mode, loop)
		}
		if r.HasPSI != (mode != cgroup.V1) {
			t.Errorf("%v: HasPSI = %v", mode, r.HasPSI)
		}
		if mode == cgroup.V2 {
			if r.PSI.Some.Avg10 != 12.5 || r.PSI.Full.Total != 100*time.Millisecond {
				t.Errorf("io.pressure = %+v", r.PSI)
			}
			if tot := r.Total(); tot.WriteIOs != 2 || tot.ReadBytes != 1<<20+4096 {
				t.Errorf("Total = %+v", tot)
			}
			prev := r
			prev.Devices = append([]cgroup.IOStat(nil), r.Devices...)
			prev.Time = r.Time.Add(-2 * time.Second)
			_ = tree.WriteFile("", "/pods/c1", "io.stat", "7:0 rbytes=3145728 wbytes=0 rios=48 wios=0 dbytes=0 dios=0\n")
			if err := s.Read(&r); err != nil {
				t.Fatal(err)
			}
			rates := iolimit.RatesBetween(&prev, &r, cgroup.DevNum{Major: 7}, false)
			if dt := r.Time.Sub(prev.Time).Seconds(); rates.ReadBPS < float64(2<<20)/dt*0.99 || rates.ReadIOPS < 32/dt*0.99 {
				t.Errorf("rates = %+v over %.2fs", rates, dt)
			}
		}
	}
}

// TestStatsReadAllocatesNothing: re-reading a cgroup's IO statistics and
// pressure allocates nothing once the reading has room for its devices.
func TestStatsReadAllocatesNothing(t *testing.T) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		_, s := statsFixture(t, mode)
		var r iolimit.Reading
		_ = s.Read(&r)
		if a := testing.AllocsPerRun(100, func() { _ = s.Read(&r) }); a != 0 {
			t.Errorf("%v: Read allocates %.1f times, want 0", mode, a)
		}
	}
}

func BenchmarkStatsRead(b *testing.B) {
	for _, mode := range []cgroup.Mode{cgroup.V1, cgroup.V2} {
		b.Run(mode.String(), func(b *testing.B) {
			_, s := statsFixture(b, mode)
			var r iolimit.Reading
			_ = s.Read(&r)
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Read(&r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
