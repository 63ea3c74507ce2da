package sim

import (
	"testing"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

// A memory-bandwidth antagonist in batch: batch's bandwidth and ways are
// cut within 2 periods of pool 0's pressure rising, never below the
// configured minimum, and restored once the antagonist stops.
func TestMemoryBandwidthAntagonist(t *testing.T) {
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	run := func(throttle bool) []RDTSample {
		s, m := MemoryBandwidthScenario(topo)
		if !throttle {
			s.Config.Pools[2].Profile.RDT.Throttle = nil
		}
		_, samples, err := RunRDT(s, m)
		if err != nil {
			t.Fatal(err)
		}
		return samples
	}
	samples := run(true)
	const maxWays, maxMB, minWays, minMB, threshold = 5, 80, 2, 20, 15.0

	rise, end := -1, -1
	for i, s := range samples {
		if s.BatchWays < minWays || s.BatchMB < minMB || s.BatchWays > maxWays || s.BatchMB > maxMB {
			t.Fatalf("period %d: batch at %d ways %d%%, outside [%d, %d] ways, [%d, %d]%%", i, s.BatchWays, s.BatchMB, minWays, maxWays, minMB, maxMB)
		}
		if rise < 0 && s.Pool0PSI >= threshold {
			rise = i
		}
		if i > 0 && samples[i-1].Antagonist && !s.Antagonist {
			end = i
		}
	}
	if rise < 0 || end < 0 {
		t.Fatalf("pool 0's pressure never rose (%d) or the antagonist never stopped (%d)", rise, end)
	}
	reacted := -1
	for i := rise; i < len(samples) && i <= rise+2; i++ {
		if samples[i].BatchWays < maxWays && samples[i].BatchMB < maxMB {
			reacted = i
			break
		}
	}
	if reacted < 0 {
		t.Fatalf("pressure rose at period %d (PSI %.0f) but batch still had %d ways %d%% two periods later",
			rise, samples[rise].Pool0PSI, samples[rise+2].BatchWays, samples[rise+2].BatchMB)
	}
	restored := -1
	for i := end; i < len(samples); i++ {
		if samples[i].BatchWays == maxWays && samples[i].BatchMB == maxMB {
			restored = i
			break
		}
	}
	if restored < 0 {
		t.Fatalf("batch never got its share back after the antagonist stopped at period %d", end)
	}
	// Without the throttle pool 0 stalls all along; with it, much less.
	mean := func(ss []RDTSample) (psi float64, n int) {
		for _, s := range ss {
			if s.Antagonist {
				psi += s.Pool0PSI
				n++
			}
		}
		return psi / float64(n), n
	}
	with, n := mean(samples)
	without, _ := mean(run(false))
	if with > without/2 {
		t.Errorf("pool 0's mean memory PSI under the antagonist: %.1f with the throttle, %.1f without; want at most half", with, without)
	}
	t.Logf("pressure rose at period %d, batch cut at %d (%d ways, %d%%); antagonist stopped at %d, restored at %d; pool 0 mean PSI over %d periods: %.1f with throttle, %.1f without",
		rise, reacted, samples[reacted].BatchWays, samples[reacted].BatchMB, end, restored, n, with, without)
}
