package nriplugin

import (
	"sync"

	"github.com/strata-nri/strata/isolation"
)

// Updates queued for, or in flight to, the runtime.
//
// The updater sends one batch at a time, and one batch can take longer
// than a period: every update is a runc exec, and three of them took 0.2 to
// 1.6 s on the 2-CPU test node under the kubelet with both CPUs busy. Two
// things follow. Batches queued behind a slow one carry the values of the
// plan that made them; sent as they were, an older batch undid a newer
// decision or the cpuset a kubelet resize had just been given, and the
// cpusets flapped. So the updater coalesces everything queued into one
// change per container and sends what each member's record holds when it
// sends (records always hold Strata's latest decision). And drift repair
// must not read a cgroup whose update has not landed yet and call it
// drifted: it skips members with updates pending.
type pendingUpdates struct {
	mu sync.Mutex
	n  map[string]int
}

func (q *pendingUpdates) add(changes []isolation.ContainerChange) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == nil {
		q.n = map[string]int{}
	}
	for _, ch := range changes {
		q.n[ch.ID]++
	}
}

func (q *pendingUpdates) done(changes []isolation.ContainerChange) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ch := range changes {
		if q.n[ch.ID]--; q.n[ch.ID] <= 0 {
			delete(q.n, ch.ID)
		}
	}
}

func (q *pendingUpdates) has(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n[id] > 0
}

// drainUpdates returns first and every batch queued behind it, without
// waiting.
func (p *Plugin) drainUpdates(first []isolation.ContainerChange) []isolation.ContainerChange {
	all := first
	for {
		select {
		case more := <-p.updates:
			all = append(all, more...)
		default:
			return all
		}
	}
}

// current folds queued changes into one per container, with the values its
// record holds now; containers that left are dropped.
func (p *Plugin) current(queued []isolation.ContainerChange) []isolation.ContainerChange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settledLocked(queued, "", "")
}
