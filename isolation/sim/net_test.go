package sim

import (
	"reflect"
	"testing"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/netqos"
)

// Online bursts on a link batch saturates: within 2 periods of the burst
// batch's ceiling drops from 40 % to 10 % of the link and online gets at
// least its guaranteed 30 %; the ceiling holds through the burst without
// flapping, returns after the 3 calm periods once online idles, and batch
// has the link back (its 40 %). Two runs give the same samples.
func TestUplinkDynamicCeiling(t *testing.T) {
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	s, m := UplinkScenario(topo)
	_, samples, err := RunNet(s, m)
	if err != nil {
		t.Fatal(err)
	}
	link := float64(m.Link)
	start, end := -1, -1
	for i, x := range samples {
		if x.Burst && start < 0 {
			start = i
		}
		if !x.Burst && start >= 0 && end < 0 {
			end = i
		}
	}
	if start < 0 || end < 0 {
		t.Fatalf("no burst in the run (%d samples)", len(samples))
	}
	for i := 0; i < start; i++ {
		if samples[i].Throttled || samples[i].BatchCeil != 400*netqos.Mbit {
			t.Fatalf("period %d before the burst: batch ceil %s throttled %v, want 400Mbit", i, samples[i].BatchCeil, samples[i].Throttled)
		}
	}
	flips := 0
	for i := start; i < end; i++ {
		x := samples[i]
		if i >= start+2 {
			if !x.Throttled || x.BatchCeil != 100*netqos.Mbit {
				t.Fatalf("period %d (%d into the burst): batch ceil %s, want 100Mbit", i, i-start, x.BatchCeil)
			}
			if x.OnlineBPS < 0.3*link*0.85 {
				t.Fatalf("period %d: online got %.0f bit/s, want ≥ its guaranteed 30%%", i, x.OnlineBPS)
			}
		}
		if i > start && x.Throttled != samples[i-1].Throttled {
			flips++
		}
	}
	if flips > 1 {
		t.Errorf("the ceiling changed %d times during the burst, want once", flips)
	}
	restored := -1
	for i := end; i < len(samples); i++ {
		if !samples[i].Throttled {
			restored = i
			break
		}
	}
	if restored < 0 || restored-end > 5 {
		t.Fatalf("the ceiling returned %d periods after the burst (at %d), want within 5", restored-end, restored)
	}
	if restored-end < 3 {
		t.Errorf("the ceiling returned after %d periods, before the 3 calm periods", restored-end)
	}
	if x := samples[restored+1]; x.BatchCeil != 400*netqos.Mbit || x.BatchBPS < 0.4*link*0.99 {
		t.Errorf("after the release: batch ceil %s sends %.0f bit/s, want its 40%%", x.BatchCeil, x.BatchBPS)
	}
	t.Logf("burst %d..%d; throttled from %d, restored at %d; online in burst %.0f Mbit/s, batch %.0f Mbit/s",
		start, end, start+1, restored, samples[start+5].OnlineBPS/1e6, samples[start+5].BatchBPS/1e6)

	_, again, err := RunNet(UplinkScenario(topo))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(samples, again) {
		t.Error("two runs of the same scenario differ")
	}
}
