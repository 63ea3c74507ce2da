package isolation

import "math"

// Commit records that plan was applied: pools take their new CPUs,
// containers their settings, the predictors learn this period's usage,
// protection state advances. It fails with ErrStalePlan, changing
// nothing, when the state changed after the plan was made.
func (s *State) Commit(plan *Plan) error {
	if plan.version != s.version {
		return ErrStalePlan
	}
	s.version++
	t := plan.Time
	sc := &plan.scratch
	last := len(s.pools) - 1
	var online float64
	for k, pp := range plan.Pools {
		ps := s.pools[k]
		if pp.Resized {
			ps.shared = pp.Shared
			ps.all = pp.CPUs
			ps.mems = pp.Mems
			ps.gen = sc.gen[k]
			if pp.Size != pp.PrevSize {
				ps.lastResize = t
				ps.resizes++
			}
		}
		if ps.grownAtAdmission {
			// The dwell of an admission growth starts with the first
			// period that saw it (Admit has no clock).
			ps.grownAtAdmission = false
			ps.lastResize = t
		}
		ps.level = pp.Level
		if pp.levelMet {
			ps.levelMetAt = t
		}
		if !s.cfg.Predictor.Disabled {
			ps.pred.Add(pp.Usage, t)
		}
		if k < last {
			online += pp.Usage + pp.ExclusiveUsage
		}
	}
	if !s.cfg.Predictor.Disabled {
		s.onlinePred.Add(online, t)
	}
	for _, i := range sc.synced {
		c := s.containers[i]
		if c.exclusive.Size() > 0 {
			c.cpusGen = math.MaxUint64
		} else {
			c.cpusGen = sc.memberGen[c.pool]
		}
	}
	for i, ch := range plan.Changes {
		idx, ok := s.byID[ch.ID]
		if !ok {
			continue
		}
		c := s.containers[idx]
		if ch.Fields&FieldCPUs != 0 {
			c.appliedC = ch.CPUs
			if c.exclusive.Size() > 0 {
				c.cpusGen = math.MaxUint64
			} else {
				c.cpusGen = sc.memberGen[c.pool]
			}
		}
		c.applied = ch.Settings
		c.failed &^= ch.Fields
		c.downgrade = sc.state[i]&flagDowngraded != 0
		c.suspended = sc.state[i]&flagSuspended != 0
	}
	for _, a := range plan.Actions {
		idx, ok := s.byID[a.Container]
		if !ok {
			continue
		}
		c := s.containers[idx]
		switch a.Kind {
		case ActionReclaimPageCache:
			c.reclaimAt = t
		case ActionEvict:
			c.evicting = true
			s.lastEvict = t
		}
	}
	for _, dm := range s.dims {
		dm.commit(plan)
	}
	return nil
}
