package isolation_test

import (
	"fmt"
	"os"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// Admit containers on an 80-CPU two-socket machine, observe one period and
// let the controller decide.
func Example() {
	dir, err := os.MkdirTemp("", "strata-example")
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
	cfg := isolation.DefaultConfig()
	cfg.ReservedCPUs = "0,40" // core 0 and its sibling for the system
	// Only namespace shop may ask for the latency-critical pool.
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"shop"}}
	st, err := isolation.NewState(topo, cfg)
	if err != nil {
		panic(err)
	}

	pool := func(p string) map[string]string { return map[string]string{"strata.io/pool": p} }
	// A latency-critical pod asking for 4 whole CPUs gets them exclusively.
	redis, _ := st.Admit(isolation.ContainerRequest{ID: "redis", PodName: "redis-0", Namespace: "shop",
		CPURequestMilli: 4000, Annotations: pool(isolation.PoolLatencyCritical)})
	fmt.Printf("redis: pool %s, exclusive %v, CPUs %s\n", redis.Pool, redis.Exclusive, redis.CPUs)
	obs := isolation.Observations{Containers: map[string]isolation.ContainerUsage{}}
	for i := range 4 {
		id := fmt.Sprintf("web-%d", i)
		_, _ = st.Admit(isolation.ContainerRequest{ID: id, PodName: id, Namespace: "web",
			CPURequestMilli: 4000, Annotations: pool(isolation.PoolOnline)})
		obs.Containers[id] = isolation.ContainerUsage{CPU: 1.5}
	}
	_, _ = st.Admit(isolation.ContainerRequest{ID: "etl", PodName: "etl", Namespace: "jobs", CgroupsPath: "/kubepods/besteffort/pod1/etl"})
	obs.Containers["etl"] = isolation.ContainerUsage{CPU: 50}

	now := time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)
	plan := isolation.Decide(obs, st, now)
	for _, p := range plan.Pools {
		fmt.Printf("%s: %d → %d shared CPUs, load %.2f\n", p.Name, p.PrevSize, p.Size, p.Load)
	}
	fmt.Println(plan.Pools[1].Reason)
	fmt.Println(plan.Batch)
	if err := st.Commit(&plan); err != nil {
		panic(err)
	}

	// 30 s later the online pool may shrink, by at most 2 CPUs a step.
	plan = isolation.Decide(obs, st, now.Add(30*time.Second))
	fmt.Println(plan.Pools[1].Reason)
	// Output:
	// redis: pool latency-critical, exclusive true, CPUs 1-2,41-42
	// latency-critical: 0 → 0 shared CPUs, load 0.00
	// online: 16 → 16 shared CPUs, load 0.38
	// batch: 58 → 58 shared CPUs, load 0.86
	// load 0.375 below band 0.45–0.60 (usage 6.00 on 16 CPUs, predicted 0.00, request 16.00): target 12, now 16; shrink held by shrinkInterval: the pool grew for a new member, whose usage is not known yet
	// batch capacity 64.20 = 78 node CPUs − max(online usage 6.00, predicted 0.00) − watermark 7.80 (batch.watermark); batch pool holds 58 CPUs
	// load 0.375 below band 0.45–0.60 (usage 6.00 on 16 CPUs, predicted 6.26, request 16.00): target 12, now 14; shrink held by maxShrinkCores 2
}

// Configuration errors name the field, the value and what is allowed.
func ExampleParseConfig() {
	_, err := isolation.ParseConfig([]byte(`
pools:
- {name: lc, priority: 0, band: {low: 0.5, high: 0.3}, rcf: {min: 0.2, max: 1}}
- {name: batch, priority: 1, band: {low: 0.5, high: 0.8}}
classification: {annotation: strata.io/pool, default: online}
colocation: {whenDisabled: pause}
`))
	fmt.Println(err)
	// Output:
	// pools[0].band: 0.5–0.3: band.low must be below band.high
	// classification.default: "online": unknown pool; allowed: "lc", "batch"
	// colocation.whenDisabled: "pause": allowed: "suspend", "evict"
}
