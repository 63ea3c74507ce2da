package isolation

// Pool-level dimensions are resources set per pool rather than per
// container: a block-IO limit, an RDT class, a network class. Each one is
//
//   - a field of Profile, of its own type in its own file
//     (profile_<dim>.go), validated by its own method called from
//     validateDimensions below;
//   - a field of PoolPlan, of its own type in its own file (plan_<dim>.go),
//     which its decision step fills for every pool;
//   - optionally a field of PoolObservation, where the plugin puts the
//     dimension's per-pool measurements before Decide;
//   - a decision step in its own file (decide_<dim>.go), a type that
//     implements dimension and is listed once in newDimensions.
//
// The plugin applies each pool's section through the dimension's
// controller (package nri-plugin, Controller).

// dimension is one pool-level dimension's decision step and its memory
// between periods (hysteresis, dwell timers).
type dimension interface {
	// decide fills the dimension's field of every p.Pools[k] (pool k is
	// st.pools[k]: p.Pools[k].Name, its profile st.pools[k].cfg.Profile).
	// It runs after the pools' levels and CPUs are decided and before the
	// members' changes, which may take settings from the pool's section
	// (the IO protection's IO priority class); it does not see this
	// period's protection actions. It must be pure: it reads obs, st and
	// its own memory and writes only p (Decide's same-inputs-same-plan
	// rule).
	decide(p *Plan, obs *Observations, st *State)
	// commit advances the dimension's memory once p was applied (called
	// by State.Commit, after the pools took their new CPUs).
	commit(p *Plan)
}

// newDimensions lists the pool-level dimensions, one line each, in the
// order they decide. NewState calls it, so a new State starts every
// dimension's memory afresh.
func newDimensions(cfg *Config) []dimension {
	_ = cfg // the dimensions' constructors take it
	return []dimension{
		newIODimension(cfg),
		newRDTDimension(cfg),
		newNetDimension(cfg),
	}
}

// validateDimensions validates the pool-level dimensions' profile fields,
// one line each: p.IO.validate(v, f+".io").
func (p Profile) validateDimensions(v *validator, f string) {
	p.RDT.validate(v, f+".rdt")
	p.IO.validate(v, f+".io")
	p.Net.validate(v, f+".net")
	_, _, _ = p, v, f
}

// dimensions runs every pool-level dimension's decision step.
func (d *decider) dimensions() {
	for _, dm := range d.st.dims {
		dm.decide(d.p, d.obs, d.st)
	}
}

// poolConfig is pool k's configuration (k in priority order, as in
// Plan.Pools), for decision steps.
func (s *State) poolConfig(k int) *PoolConfig { return s.pools[k].cfg }
