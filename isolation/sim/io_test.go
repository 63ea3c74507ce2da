package sim

import (
	"reflect"
	"testing"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

// A disk antagonist in batch: the IO protection throttles batch in the
// period after the online pool's IO pressure crosses 20 %, keeps the online
// pool below the threshold in ≥ 95 % of the antagonist's periods while
// batch keeps ≥ 10 % of the disk, does not flap (the calm periods needed
// double each time pressure returns right after a lift), and lifts once the
// antagonist stops. Without the protection the pressure stays at its peak.
// Two runs give the same samples.
func TestDiskAntagonist(t *testing.T) {
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	run := func(protect bool) []IOSample {
		s, m := DiskAntagonistScenario(topo)
		if !protect {
			s.Config.Pools[2].Profile.IO.Protect = nil
		}
		_, samples, err := RunIO(s, m)
		if err != nil {
			t.Fatal(err)
		}
		return samples
	}
	samples := run(true)
	const threshold = 20.0
	for i, s := range samples {
		if !s.Antagonist && s.T < 60e9 && s.Throttled {
			t.Fatalf("period %d: batch throttled before any pressure", i)
		}
		if s.OnlinePSI >= threshold && i+1 < len(samples) && !samples[i+1].Throttled {
			t.Fatalf("period %d: online IO PSI %.0f%% but batch not throttled the next period", i, s.OnlinePSI)
		}
	}
	_, m := DiskAntagonistScenario(topo)
	antagonist, above, engagements, share, end := ioRunStats(samples, m.CapacityBPS, threshold)
	t.Logf("antagonist %d periods: online above threshold in %d, %d engagements, batch kept %.1f%% of the disk", antagonist, above, engagements, 100*share)
	if float64(above) > 0.05*float64(antagonist) {
		t.Errorf("online IO PSI ≥ %.0f%% in %d of %d antagonist periods, want ≤ 5 %%", threshold, above, antagonist)
	}
	if engagements > 8 {
		t.Errorf("%d engagements in %d periods: the throttle flaps", engagements, antagonist)
	}
	if share < 0.10 {
		t.Errorf("batch kept %.1f%% of the disk, want ≥ 10 %%", 100*share)
	}
	lifted := -1
	for i := end; i < len(samples); i++ {
		if !samples[i].Throttled {
			lifted = i
			break
		}
	}
	if lifted < 0 {
		t.Errorf("the throttle never lifted after the antagonist stopped at period %d", end)
	} else {
		t.Logf("lifted %d periods after the antagonist stopped", lifted-end)
	}
	if again := run(true); !reflect.DeepEqual(samples, again) {
		t.Error("two runs of the same scenario differ")
	}
	for i, s := range run(false) {
		if s.Antagonist && s.OnlinePSI < 59 {
			t.Fatalf("without protection, period %d: online PSI %.0f, want the model's peak 60", i, s.OnlinePSI)
		}
	}
}

// The same antagonist with the IO protection switching batch to the idle
// IO class instead of a bandwidth limit: batch's members are idle in the
// period after the online pool's IO pressure crosses 20 % (their changes
// carry the class), the online pool stays below the threshold in ≥ 95 % of
// the antagonist's periods while batch keeps ≥ 20 % of the disk (the
// model's idle class: 40 % of it at a quarter of the stall), the switch
// does not flap, and batch's members are back in class none once the
// antagonist stops.
func TestDiskAntagonistIdleClass(t *testing.T) {
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	s, m := DiskAntagonistIdleScenario(topo)
	_, samples, err := RunIO(s, m)
	if err != nil {
		t.Fatal(err)
	}
	const threshold = 20.0
	for i, s := range samples {
		if s.BatchLimit != 0 {
			t.Fatalf("period %d: batch limited to %d B/s; the protection sets no limit", i, s.BatchLimit)
		}
		if s.OnlinePSI >= threshold && i+1 < len(samples) && !samples[i+1].BatchIdle {
			t.Fatalf("period %d: online IO PSI %.0f%% but batch's members not idle the next period", i, s.OnlinePSI)
		}
	}
	antagonist, above, engagements, share, end := ioRunStats(samples, m.CapacityBPS, threshold)
	t.Logf("antagonist %d periods: online above threshold in %d, %d engagements, batch kept %.1f%% of the disk", antagonist, above, engagements, 100*share)
	if float64(above) > 0.05*float64(antagonist) {
		t.Errorf("online IO PSI ≥ %.0f%% in %d of %d antagonist periods, want ≤ 5 %%", threshold, above, antagonist)
	}
	if engagements > 8 {
		t.Errorf("%d engagements in %d periods: the switch flaps", engagements, antagonist)
	}
	if share < 0.20 {
		t.Errorf("batch kept %.1f%% of the disk, want ≥ 20 %%", 100*share)
	}
	if last := samples[len(samples)-1]; last.BatchIdle || last.Throttled {
		t.Errorf("at the end, %d periods after the antagonist stopped: batch still idle or throttled: %+v", len(samples)-1-end, last)
	}
}

// ioRunStats counts over an IO run: the antagonist's periods, those with
// the online pool's IO PSI at or above threshold, the protection's
// engagements, batch's mean share of the disk while the antagonist ran,
// and the period the antagonist stopped (-1: it did not).
func ioRunStats(samples []IOSample, capacity, threshold float64) (antagonist, above, engagements int, share float64, end int) {
	var batchSum float64
	end = -1
	for i, s := range samples {
		if s.Throttled && (i == 0 || !samples[i-1].Throttled) {
			engagements++
		}
		if s.Antagonist {
			antagonist++
			batchSum += s.BatchBPS
			if s.OnlinePSI >= threshold {
				above++
			}
		}
		if i > 0 && samples[i-1].Antagonist && !s.Antagonist {
			end = i
		}
	}
	return antagonist, above, engagements, batchSum / float64(max(antagonist, 1)) / capacity, end
}
