package nriplugin

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// choosyEvictor evicts the proposal's first alternative (as the
// Kubernetes evictor does for a pod of lower priority) until blocked is
// set, then nothing (every candidate protected).
type choosyEvictor struct {
	mu      sync.Mutex
	blocked bool
	calls   []Evictee // what it was asked
	took    []Evictee // what it evicted
}

func (c *choosyEvictor) Evict(_ context.Context, e Evictee) (Evictee, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, e)
	if c.blocked || len(e.Alternatives) == 0 {
		return Evictee{}, fmt.Errorf("evict container %s: %w: every candidate protected", e.ContainerID, ErrEvictionBlocked)
	}
	took := e.Alternatives[0]
	c.took = append(c.took, took)
	return took, nil
}

func (c *choosyEvictor) snapshot() (calls, took []Evictee) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Evictee(nil), c.calls...), append([]Evictee(nil), c.took...)
}

// TestEvictionMarksWhatTheEvictorTook: when the evictor evicts another
// candidate than the controller proposed, the one evicted is marked as
// leaving (Strata changes it no more, never proposes it again) and the
// proposal stays an ordinary member; when the evictor evicts none, nobody
// new is marked, and the proposal is proposed again at the next interval.
func TestEvictionMarksWhatTheEvictorTook(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	cfg := trusting()
	cfg.Period = isolation.Duration{Duration: 50 * time.Millisecond}
	cfg.Protection.Levels = []isolation.ProtectionLevel{{Name: "critical", When: isolation.Thresholds{CPULoad: 0.5},
		Actions: []isolation.ActionKind{isolation.ActionEvict}}}
	cfg.Protection.Cooldown = isolation.Duration{Duration: 50 * time.Millisecond}
	cfg.Protection.EvictInterval = isolation.Duration{Duration: 200 * time.Millisecond}
	ev := &choosyEvictor{}
	h := startPlugin(t, node, rt, cfg, func(o *Options) { o.Evictor = ev })

	webPod := pod("shop", "web", map[string]string{"strata.io/pool": isolation.PoolOnline})
	web := container(webPod, "server", 1000, 0)
	all := []struct {
		p *api.PodSandbox
		c *api.Container
	}{{webPod, web}}
	for _, name := range []string{"job-a", "job-b"} {
		p := pod("jobs", name, map[string]string{"strata.io/pool": isolation.PoolBatch})
		c := container(p, "worker", 0, 0)
		all = append(all, struct {
			p *api.PodSandbox
			c *api.Container
		}{p, c})
	}
	for _, pc := range all {
		rt.startRunning(t, node, pc.p, pc.c)
	}
	evicting := func() map[string]bool {
		out := map[string]bool{}
		for _, m := range h.plugin.Status().Containers {
			if m.Evicting {
				out[m.ID] = true
			}
		}
		return out
	}

	// The online member's load puts its pool at level critical.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go burn(ctx, t, node, web, 4)
	waitFor(t, patience, "an eviction carried out", func() bool {
		_, took := ev.snapshot()
		return len(took) > 0 && evicting()[took[0].ContainerID]
	})
	calls, took := ev.snapshot()
	proposed, evicted := calls[0].ContainerID, took[0].ContainerID
	if proposed == evicted {
		t.Fatalf("the evictor took the proposal %s itself; the test needs another candidate", proposed)
	}
	if got := evicting(); got[proposed] || len(got) != 1 {
		t.Errorf("after evicting %s in place of %s, marked as leaving: %v; want only %s", evicted, proposed, got, evicted)
	}

	// Nothing can be evicted any more: the proposal is proposed again,
	// and nobody else is marked.
	ev.mu.Lock()
	ev.blocked = true
	n := len(ev.calls)
	ev.mu.Unlock()
	waitFor(t, patience, "a blocked eviction attempted", func() bool {
		calls, _ := ev.snapshot()
		return len(calls) > n
	})
	calls, _ = ev.snapshot()
	if again := calls[n].ContainerID; again != proposed {
		t.Errorf("next eviction proposes %s, want %s again (it was not evicted)", again, proposed)
	}
	time.Sleep(3 * cfg.Period.Duration) // the blocked attempt is settled
	if got := evicting(); len(got) != 1 || !got[evicted] {
		t.Errorf("after a blocked eviction, marked as leaving: %v; want only %s", got, evicted)
	}
}
