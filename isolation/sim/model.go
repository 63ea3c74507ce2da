package sim

import (
	"fmt"
	"time"

	"github.com/strata-nri/strata/isolation"
)

// runModel runs s with a pool-level dimension's model in the loop, the
// step shape RunIO, RunNet and RunRDT share. Before period i's Decide,
// measure puts what the model measures into obs, given the period's time t,
// the previous period's sample (nil at i = 0) and plan; after the plan,
// sample returns what the model did under it. s.Observe, if set, still
// sees every plan.
func runModel[S any](s Scenario,
	measure func(t time.Duration, prev *S, last *isolation.Plan, obs *isolation.Observations),
	sample func(t time.Duration, plan *isolation.Plan) S) (*Result, []S, error) {
	var samples []S
	d := s.Config.Period.Duration
	if d == 0 {
		d = time.Second
	}
	outer := s.Observe
	s.BeforeDecide = func(i int, last *isolation.Plan, obs *isolation.Observations) {
		var prev *S
		if len(samples) > 0 {
			prev = &samples[len(samples)-1]
		}
		measure(time.Duration(i)*d, prev, last, obs)
	}
	s.Observe = func(i int, plan *isolation.Plan) {
		samples = append(samples, sample(time.Duration(i)*d, plan))
		if outer != nil {
			outer(i, plan)
		}
	}
	res, err := Run(s)
	if err != nil {
		return nil, nil, fmt.Errorf("sim %s: %w", s.Name, err)
	}
	return res, samples, nil
}

// setPool records a pool's measurements in obs.
func setPool(obs *isolation.Observations, pool string, po isolation.PoolObservation) {
	if obs.Pools == nil {
		obs.Pools = map[string]isolation.PoolObservation{}
	}
	obs.Pools[pool] = po
}
