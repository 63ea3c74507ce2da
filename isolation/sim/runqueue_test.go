package sim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/isolation/sim"
)

// TestRunQueueDelayModel: the modelled delay grows with utilisation and
// shrinks with more CPUs at the same utilisation.
func TestRunQueueDelayModel(t *testing.T) {
	_, _, low := sim.RunQueueDelay(8, 0.4)
	_, _, high := sim.RunQueueDelay(8, 0.95)
	_, _, wide := sim.RunQueueDelay(16, 0.95)
	if !(low < 100*time.Microsecond && high > time.Millisecond && wide < high) {
		t.Errorf("p99 at 8 CPUs ρ 0.4 %v, ρ 0.95 %v; 16 CPUs ρ 0.95 %v", low, high, wide)
	}
	if m, _, _ := sim.RunQueueDelay(0, 1); m != 0 {
		t.Errorf("no CPUs: %v", m)
	}
}

// TestRunQueueDelayProtection: pool 0's demand rises 4× in one period,
// with CPU load thresholds taken out of the protection levels so that only
// the run-queue delay can raise them. Within 2 periods the delay raises
// pool 0 to a level with preemption, and the pool's growth brings its p99
// back under the 1 ms threshold within 10 periods. With the run-queue
// thresholds removed as well, the same step raises no level.
func TestRunQueueDelayProtection(t *testing.T) {
	const step = 20 * time.Minute
	scenario := func(rq bool) sim.Scenario {
		s := sim.SteadyScenario(topology(t))
		s.Name = "runqueue-step"
		s.Duration = 25 * time.Minute
		s.WarmUp = 0
		s.Workloads[0].CPU = sim.Step(sim.Constant(0.5), 4, step, 0)
		s.Workloads[0].Noise = 0
		for i := range s.Config.Protection.Levels {
			s.Config.Protection.Levels[i].When.CPULoad = 0
			if !rq {
				s.Config.Protection.Levels[i].When.RunQueueP99 = isolation.Duration{}
			}
		}
		return s
	}
	period := sim.SteadyScenario(topology(t)).Config.Period.Duration
	stepAt := int(step / period)
	type rec struct {
		level  string
		p99    time.Duration
		reason string
	}
	collect := func(s sim.Scenario) []rec {
		var out []rec
		s.Observe = func(i int, p *isolation.Plan) {
			r := rec{level: p.Pools[0].LevelName, p99: p.Pools[0].RunQueueP99}
			for _, a := range p.Actions {
				if a.Pool == p.Pools[0].Name && a.Kind == isolation.ActionPreempt {
					r.reason = a.Reason
				}
			}
			out = append(out, r)
		}
		run(t, s)
		return out
	}
	got := collect(scenario(true))
	if p := got[stepAt-1].p99; p >= time.Millisecond || got[stepAt-1].level != "" {
		t.Fatalf("before the step: p99 %v, level %q; want under 1 ms and no level", p, got[stepAt-1].level)
	}
	raised := -1
	for i := stepAt; i < stepAt+2; i++ {
		if got[i].level != "" && strings.Contains(got[i].reason, "run-queue delay") {
			raised = i
			break
		}
	}
	if raised < 0 {
		t.Fatalf("pool 0 not raised on run-queue delay within 2 periods of the step: %+v", got[stepAt:stepAt+3])
	}
	t.Logf("step at period %d: p99 %v → level %s at period %d (%s)", stepAt, got[raised].p99, got[raised].level, raised, got[raised].reason)
	back := -1
	for i := raised; i < raised+10 && i < len(got); i++ {
		if got[i].p99 < time.Millisecond {
			back = i
			break
		}
	}
	if back < 0 {
		t.Errorf("p99 not under 1 ms within 10 periods of the protection: %+v", got[raised:raised+10])
	} else {
		t.Logf("p99 back to %v at period %d", got[back].p99, back)
	}
	for i, r := range collect(scenario(false))[stepAt : stepAt+2] {
		if r.level != "" {
			t.Errorf("without run-queue thresholds period %d reached level %s: the trigger above was not the delay", stepAt+i, r.level)
		}
	}
}
