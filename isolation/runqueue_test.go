package isolation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/isolation"
)

// TestRunQueueDelayRaisesProtection: one latency-critical member waiting
// 2 ms (p99) for a CPU raises pool 0 to "elevated" (preempt), 5 ms to
// "high" (CPU downgrade of lower pools), with the load in its band; the
// same delay in the batch pool raises nothing, and a period without
// measurements (no probe) none either.
func TestRunQueueDelayRaisesProtection(t *testing.T) {
	for _, tc := range []struct {
		p99       time.Duration
		pool      string
		wantLevel string
		wantKind  isolation.ActionKind
	}{
		{0, isolation.PoolLatencyCritical, "", ""},
		{500 * time.Microsecond, isolation.PoolLatencyCritical, "", ""},
		{2 * time.Millisecond, isolation.PoolLatencyCritical, "elevated", isolation.ActionPreempt},
		{5 * time.Millisecond, isolation.PoolLatencyCritical, "high", isolation.ActionCPUDowngrade},
		{50 * time.Millisecond, isolation.PoolBatch, "", ""},
	} {
		n := newNode(t, nil)
		n.use(isolation.PoolLatencyCritical, 4) // 10 CPUs: load 0.4, in the band
		n.use(isolation.PoolOnline, 16)
		u := n.obs.Containers[id("lc", 0)]
		if tc.pool == isolation.PoolBatch {
			u = n.obs.Containers[id("b", 0)]
		}
		u.RunQueueP99, u.RunQueueP50, u.RunQueueMean = tc.p99, tc.p99/4, tc.p99/3
		if tc.pool == isolation.PoolBatch {
			n.obs.Containers[id("b", 0)] = u
		} else {
			n.obs.Containers[id("lc", 0)] = u
		}
		p := n.step(t)
		pp := p.Pools[0]
		if tc.pool == isolation.PoolBatch {
			for _, q := range p.Pools {
				if q.Level >= 0 {
					t.Errorf("batch delay %v raised pool %s to %s", tc.p99, q.Name, q.LevelName)
				}
			}
			continue
		}
		if pp.RunQueueP99 != tc.p99 {
			t.Errorf("pool 0 RunQueueP99 %v, want the worst member's %v", pp.RunQueueP99, tc.p99)
		}
		if pp.LevelName != tc.wantLevel {
			t.Errorf("p99 %v: pool 0 level %q, want %q", tc.p99, pp.LevelName, tc.wantLevel)
		}
		if tc.wantKind == "" {
			continue
		}
		found := false
		for _, a := range p.Actions {
			if a.Pool == pp.Name && a.Kind == tc.wantKind && strings.Contains(a.Reason, "run-queue delay") {
				found = true
			}
		}
		if !found {
			t.Errorf("p99 %v: no %s action naming the run-queue delay: %+v", tc.p99, tc.wantKind, p.Actions)
		}
	}
}

// TestRunQueueThresholdValidated: a negative or absurd threshold is
// refused, naming the field.
func TestRunQueueThresholdValidated(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, time.Minute} {
		cfg := isolation.DefaultConfig()
		cfg.Protection.Levels[0].When.RunQueueP99 = isolation.Duration{Duration: d}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "runQueueDelayP99") {
			t.Errorf("runQueueDelayP99 %v: %v", d, err)
		}
	}
}
