package isolation_test

import (
	"fmt"
	"testing"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// bigNode admits 1000 containers on the 448-CPU fixture: 100 in pool 0
// (20 of them with 2 exclusive CPUs), 600 in pool 1, 300 batch.
func bigNode(tb testing.TB, cfg *isolation.Config) (*isolation.State, isolation.Observations) {
	tb.Helper()
	topo, err := strcpuset.Discover(cpusettest.Root(tb, cpusettest.Big448))
	if err != nil {
		tb.Fatal(err)
	}
	if cfg == nil {
		cfg = isolation.DefaultConfig()
	}
	cfg.ReservedCPUs = "0,224"
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"ns"}} // the pods' namespace is trusted with pool 0
	st, err := isolation.NewState(topo, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	obs := isolation.Observations{Containers: map[string]isolation.ContainerUsage{}}
	add := func(i int, pool string, milli int64, use float64) {
		id := fmt.Sprintf("c%04d", i)
		_, err := st.Admit(isolation.ContainerRequest{ID: id, PodName: id, Namespace: "ns", CPURequestMilli: milli,
			Annotations: map[string]string{"strata.io/pool": pool}})
		if err != nil {
			tb.Fatal(err)
		}
		obs.Containers[id] = isolation.ContainerUsage{CPU: use, MemoryBytes: 1 << 30, FileBytes: 1 << 28}
	}
	for i := range 1000 {
		switch {
		case i < 20:
			add(i, isolation.PoolLatencyCritical, 2000, 1.5)
		case i < 100:
			add(i, isolation.PoolLatencyCritical, 1500, 0.5)
		case i < 700:
			add(i, isolation.PoolOnline, 500, 0.2)
		default:
			add(i, isolation.PoolBatch, 0, 0.5)
		}
	}
	obs.Node = isolation.NodePressure{MemoryTotal: 2 << 40, MemoryUsed: 1 << 40}
	return st, obs
}

// BenchmarkDecide1000Containers448CPUs measures one steady period: Decide
// and Commit with a reused Plan. Goal: ≤ 1 ms and ≤ 1 MiB per period.
func BenchmarkDecide1000Containers448CPUs(b *testing.B) {
	st, obs := bigNode(b, nil)
	var plan isolation.Plan
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// Converge first, so the benchmark measures the steady loop.
	for range 2000 {
		isolation.DecideInto(&plan, &obs, st, now)
		if err := st.Commit(&plan); err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		isolation.DecideInto(&plan, &obs, st, now)
		if err := st.Commit(&plan); err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Second)
	}
}

// BenchmarkDecideResizing1000Containers448CPUs is the worst case: without
// step limits, pool 1's load swings across its band every period, so each
// period resizes pools 1 and batch, moves CPUs through package cpuset and
// sends new cpusets to 600 + 300 containers.
func BenchmarkDecideResizing1000Containers448CPUs(b *testing.B) {
	cfg := isolation.DefaultConfig()
	cfg.Resize.ShrinkInterval.Duration = 0
	cfg.Resize.MaxShrinkCores = 1000
	cfg.Predictor.Disabled = true
	st, obs := bigNode(b, cfg)
	var plan isolation.Plan
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	low, high := obs, isolation.Observations{Containers: map[string]isolation.ContainerUsage{}, Node: obs.Node}
	for id, u := range obs.Containers {
		if u.CPU == 0.2 { // pool 1
			u.CPU = 0.3
		}
		high.Containers[id] = u
	}
	b.ReportAllocs()
	resized := 0
	i := 0
	for b.Loop() {
		o := &low
		if i%2 == 1 {
			o = &high
		}
		i++
		isolation.DecideInto(&plan, o, st, now)
		if plan.Pools[1].Resized {
			resized++
		}
		if err := st.Commit(&plan); err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if i > 10 && resized < i/2 {
		b.Fatalf("only %d of %d periods resized", resized, i)
	}
}
