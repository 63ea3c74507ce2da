package sim_test

import (
	"fmt"
	"os"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation/sim"
)

// Run two hours of steady load on an 80-CPU fixture and report each pool.
func Example() {
	dir, err := os.MkdirTemp("", "sim-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := cpusettest.WriteSysfs(dir, cpusettest.Intel2S20C2T); err != nil {
		panic(err)
	}
	topo, err := strcpuset.Discover(dir)
	if err != nil {
		panic(err)
	}
	r, err := sim.Run(sim.SteadyScenario(topo))
	if err != nil {
		panic(err)
	}
	for _, p := range r.Pools[:2] {
		fmt.Printf("%s: %.0f CPUs, load %.2f, in band %.0f%% of %d periods, %d resizes\n",
			p.Name, p.MeanSize, p.MeanLoad, 100*p.TimeInBand, r.Periods, p.Resizes)
	}
	// Output:
	// latency-critical: 9 CPUs, load 0.33, in band 100% of 5400 periods, 0 resizes
	// online: 24 CPUs, load 0.50, in band 100% of 5400 periods, 0 resizes
}
