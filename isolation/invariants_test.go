package isolation_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// Random admissions, removals and load swings on a multi-NUMA machine; after
// every operation the pools partition the usable CPUs, exclusive CPUs stay
// put, floors hold, and no pool loses CPUs to a lower pool unless it was
// releasing them itself.
func TestRandomOperationsKeepInvariants(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { randomOps(t, seed) })
	}
}

func randomOps(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0,64"
	cfg.Pools[2].MinCPUs = 3
	st := newState(t, cpusettest.EPYCNPS4, cfg) // 256 CPUs, 8 NUMA nodes
	usable := 254
	obs := isolation.Observations{Containers: map[string]isolation.ContainerUsage{}, Node: isolation.NodePressure{MemoryTotal: 1 << 40}}
	pinned := map[string]cpuset.CPUSet{}
	live := []string{}
	pools := []string{isolation.PoolLatencyCritical, isolation.PoolOnline, isolation.PoolBatch}
	now := noon
	next := 0
	for step := range 3000 {
		switch r := rng.IntN(100); {
		case r < 4: // admit
			pool := pools[rng.IntN(3)]
			milli := int64(rng.IntN(8)+1) * 500
			id := fmt.Sprintf("c%d", next)
			next++
			a, err := st.Admit(req(id, pool, milli))
			if errors.Is(err, isolation.ErrNoExclusiveCPUs) {
				continue
			}
			if err != nil {
				t.Fatalf("step %d: admit %s: %v", step, id, err)
			}
			if a.Exclusive {
				pinned[id] = a.CPUs
			}
			live = append(live, id)
		case r < 7 && len(live) > 0: // remove
			i := rng.IntN(len(live))
			st.Remove(live[i])
			delete(pinned, live[i])
			delete(obs.Containers, live[i])
			live = append(live[:i], live[i+1:]...)
		default: // a period with new loads now and then
			if r > 90 {
				for _, id := range live {
					obs.Containers[id] = isolation.ContainerUsage{CPU: rng.Float64() * 3}
				}
			}
			p := isolation.Decide(obs, st, now)
			for j := range p.Pools {
				if p.Pools[j].Size <= p.Pools[j].PrevSize {
					continue
				}
				for i := range j {
					hi := p.Pools[i]
					if hi.Size < hi.PrevSize && hi.Target > hi.Size {
						t.Fatalf("step %d: pool %s lost %d CPUs (target %d) while lower pool %s grew",
							step, hi.Name, hi.PrevSize-hi.Size, hi.Target, p.Pools[j].Name)
					}
				}
			}
			if err := st.Commit(&p); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second)
		}
		checkPartition(t, st, usable)
		info := st.Pools()
		if b := info[2].Shared.Size(); b < 3 {
			t.Fatalf("step %d: batch has %d CPUs, below its floor 3", step, b)
		}
		for _, c := range st.Containers() {
			if want, ok := pinned[c.ID]; ok && !c.Exclusive.Equals(want) {
				t.Fatalf("step %d: %s's exclusive CPUs moved: %s → %s", step, c.ID, want, c.Exclusive)
			}
		}
		for _, p := range info {
			if p.Members > 0 && p.CPUs.Size() == 0 {
				t.Fatalf("step %d: pool %s has members and no CPUs", step, p.Name)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("seed %d: %d containers live, %d pinned; pools %v", seed, len(live), len(pinned), sizes(st))
}

func sizes(st *isolation.State) []int {
	var out []int
	for _, p := range st.Pools() {
		out = append(out, p.CPUs.Size())
	}
	return out
}
