package sim

import (
	"fmt"
	"testing"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

func TestQuick(t *testing.T) {
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Scenario{DiurnalScenario(topo), SpikeScenario(topo), SteadyScenario(topo), MemoryPressureScenario(topo)} {
		r, err := Run(s)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s: periods %d util %.3f batchShare %.3f ofFree %.3f ofIdle %.3f elapsed %s\n", r.Scenario, r.Periods, r.NodeUtilisation, r.BatchShare, r.BatchUseOfFree, r.BatchUseOfIdle, r.Elapsed)
		for _, p := range r.Pools {
			fmt.Printf("   %+v\n", p)
		}
		for i, a := range r.Actions {
			if i > 12 { break }
			fmt.Printf("   %v %s %s %s\n", a.T, a.Kind, a.Container, a.Reason)
		}
	}
}
