package sim

import (
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/netqos"
)

// NetModel is the uplink model behind UplinkScenario, stated so its
// results can be judged. It follows htb: each pool first gets its
// guaranteed rate (up to its demand), then the higher-priority pool
// borrows what is left up to its ceiling, then the next.
//
//   - The link carries Link bits per second.
//   - Batch always wants the whole link (a bulk transfer).
//   - The online pool wants OnlineDemand while its burst runs (from Start,
//     for Length) and OnlineIdle otherwise.
//   - Counters are read after each period, so a pool's traffic in period
//     i is what Decide sees at period i+1.
type NetModel struct {
	Link                     netqos.Rate
	OnlineDemand, OnlineIdle netqos.Rate
	Start, Length            time.Duration
}

// NetSample is one period of an uplink run.
type NetSample struct {
	T                   time.Duration
	Burst               bool
	OnlineBPS, BatchBPS float64
	BatchCeil           netqos.Rate
	Throttled           bool
}

// UplinkScenario: a 1 Gbit/s uplink. Online is guaranteed 30 % and may use
// the whole link; batch is guaranteed 5 % with a 40 % ceiling, lowered to
// 10 % while online sends ≥ 30 % of the link and restored after 3 periods
// below 15 %. From 60 s to 240 s online bursts to 70 % of the link; it idles
// at 5 % otherwise. Five minutes of one-second periods.
func UplinkScenario(topo *strcpuset.Topology) (Scenario, NetModel) {
	m := NetModel{Link: netqos.Gbit, OnlineDemand: 700 * netqos.Mbit, OnlineIdle: 50 * netqos.Mbit,
		Start: 60 * time.Second, Length: 180 * time.Second}
	cfg := baseConfig()
	cfg.Network = isolation.NetworkConfig{Interface: "eth0", Link: "1G"}
	for i := range cfg.Pools {
		switch cfg.Pools[i].Name {
		case isolation.PoolOnline:
			cfg.Pools[i].Profile.Net = isolation.NetProfile{Rate: "30%"}
		case isolation.PoolBatch:
			cfg.Pools[i].Profile.Net = isolation.NetProfile{Rate: "5%", Ceil: "40%",
				Throttle: &isolation.NetThrottle{Watermark: 30, Release: 15, Ceil: "10%", CalmPeriods: 3}}
		}
	}
	s := Scenario{
		Name: "uplink", Config: cfg, Topology: topo,
		Start: Day0.Add(12 * time.Hour), Duration: 5 * time.Minute, Seed: 1,
		Workloads: []Workload{
			{Name: "web", Namespace: "web", Pool: isolation.PoolOnline, Replicas: 2, CPURequestMilli: 2000,
				MemoryRequest: gib, MemoryLimit: 2 * gib, CPU: Constant(0.8)},
			{Name: "backup", Namespace: "jobs", Pool: isolation.PoolBatch, Replicas: 2},
		},
	}
	return s, m
}

// RunNet runs s with m's traffic fed to the network dimension and returns
// one NetSample per period: the traffic carried during the period under
// that period's plan.
func RunNet(s Scenario, m NetModel) (*Result, []NetSample, error) {
	measure := func(_ time.Duration, measured *NetSample, _ *isolation.Plan, obs *isolation.Observations) {
		if measured == nil {
			return
		}
		setPool(obs, isolation.PoolOnline, isolation.PoolObservation{Net: isolation.NetObservation{Measured: true, BitsPerSecond: measured.OnlineBPS}})
		setPool(obs, isolation.PoolBatch, isolation.PoolObservation{Net: isolation.NetObservation{Measured: true, BitsPerSecond: measured.BatchBPS}})
	}
	sample := func(t time.Duration, plan *isolation.Plan) NetSample {
		cur := NetSample{T: t, Burst: t >= m.Start && t < m.Start+m.Length}
		var online, batch isolation.NetPlan
		for k := range plan.Pools {
			switch plan.Pools[k].Name {
			case isolation.PoolOnline:
				online = plan.Pools[k].Net
			case isolation.PoolBatch:
				batch = plan.Pools[k].Net
			}
		}
		want := m.OnlineIdle
		if cur.Burst {
			want = m.OnlineDemand
		}
		link := float64(m.Link)
		// Guarantees first, then online (prio 0) borrows, then batch.
		o := min(float64(want), float64(online.Rate))
		b := min(link-o, float64(batch.Rate))
		o = min(float64(want), float64(online.Ceil), link-b)
		b = min(float64(batch.Ceil), link-o)
		cur.OnlineBPS, cur.BatchBPS = o, b
		cur.BatchCeil, cur.Throttled = batch.Ceil, batch.Throttled
		return cur
	}
	return runModel(s, measure, sample)
}
