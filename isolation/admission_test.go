package isolation_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"k8s.io/utils/cpuset"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// Every path into a pool goes through one admission check. These tests
// walk each path with a pod that should not get in.

// defaultWithAllowList: the default pool (online) admits only namespace
// prod; batch takes namespace batch-* by rule; latency-critical has no
// allow-list.
func defaultWithAllowList() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.Pools[1].Allow = isolation.AllowList{Namespaces: []string{"prod"}}
	cfg.Classification.QoS = isolation.QoSRules{}
	cfg.Classification.Namespaces = []isolation.NamespaceRule{{Namespace: "batch-*", Pool: isolation.PoolBatch}}
	return cfg
}

// When the rules refuse a pod (the default pool's allow-list does not
// admit it), an annotation cannot get it into a pool without an
// allow-list: there is no rules pool it would not be promoted above.
func TestRulesRefusePodAnnotationCannotGetIn(t *testing.T) {
	cfg := defaultWithAllowList()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	dev := isolation.ContainerRequest{ID: "c1", PodName: "p", Namespace: "dev", CPUShares: 1024}
	if _, err := cfg.Classify(&dev); !errors.Is(err, isolation.ErrNotAllowed) || !strings.Contains(err.Error(), "default pool's allow-list") {
		t.Errorf("no annotation: got %v, want the default pool's refusal", err)
	}
	for _, pool := range []string{isolation.PoolLatencyCritical, isolation.PoolBatch} {
		dev.Annotations = map[string]string{"strata.io/pool": pool}
		if cl, err := cfg.Classify(&dev); !errors.Is(err, isolation.ErrNotAllowed) || !strings.Contains(err.Error(), "rules admit the pod to no pool") {
			t.Errorf("annotation %s: got %+v, %v; want a refusal", pool, cl, err)
		}
	}
	// A pool whose allow-list names the pod takes it by annotation.
	cfg.Pools[2].Allow = isolation.AllowList{Namespaces: []string{"dev"}}
	dev.Annotations = map[string]string{"strata.io/pool": isolation.PoolBatch}
	if cl, err := cfg.Classify(&dev); err != nil || cl.Pool != isolation.PoolBatch {
		t.Errorf("batch naming dev: got %+v, %v", cl, err)
	}
	// The rules' own pools still work: prod by default, batch-x by rule.
	prod := isolation.ContainerRequest{ID: "c2", Namespace: "prod"}
	if cl, err := cfg.Classify(&prod); err != nil || cl.Pool != isolation.PoolOnline || cl.Route != "default" {
		t.Errorf("prod: %+v, %v", cl, err)
	}
}

// The onDisallowed fallback is reached through the pod's annotation: it
// must not take the pod above the pool its rules give it.
func TestFallbackNeverPromotes(t *testing.T) {
	cfg := lcOnlyForShop()
	cfg.Classification.OnDisallowed = isolation.PoolOnline
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{"strata.io/pool": isolation.PoolLatencyCritical}
	// BestEffort: its rules give batch; the fallback online would be a
	// promotion, so it stays in batch.
	be := isolation.ContainerRequest{ID: "be", Namespace: "dev", CPUShares: 2, Annotations: ann}
	cl, err := cfg.Classify(&be)
	if err != nil || cl.Pool != isolation.PoolBatch || !strings.Contains(cl.Route, "would promote") {
		t.Errorf("best effort: got %+v, %v; want its rules pool batch", cl, err)
	}
	// Burstable: rules give online; the fallback online is fine.
	bu := isolation.ContainerRequest{ID: "bu", Namespace: "dev", CPUShares: 512, Annotations: ann}
	if cl, err := cfg.Classify(&bu); err != nil || cl.Pool != isolation.PoolOnline || !strings.HasPrefix(cl.Route, "fallback") {
		t.Errorf("burstable: got %+v, %v; want the fallback online", cl, err)
	}
	// Rules refusing the pod and a fallback: still refused.
	cfg = defaultWithAllowList()
	cfg.Classification.OnDisallowed = isolation.PoolBatch
	dev := isolation.ContainerRequest{ID: "d", Namespace: "dev", Annotations: ann}
	if cl, err := cfg.Classify(&dev); !errors.Is(err, isolation.ErrNotAllowed) {
		t.Errorf("refused by rules, with fallback: got %+v, %v; want a refusal", cl, err)
	}
}

// A QoS rule into an allow-listed pool falls through, the default too:
// the rules path applies allow-lists.
func TestRulesApplyAllowLists(t *testing.T) {
	cfg := defaultWithAllowList()
	cfg.Classification.QoS.BestEffort = isolation.PoolOnline
	be := isolation.ContainerRequest{ID: "be", Namespace: "batch-7", CPUShares: 2}
	if cl, err := cfg.Classify(&be); err != nil || cl.Pool != isolation.PoolBatch {
		t.Errorf("namespace rule first: %+v, %v", cl, err)
	}
	be.Namespace = "x"
	if _, err := cfg.Classify(&be); !errors.Is(err, isolation.ErrNotAllowed) {
		t.Errorf("QoS rule and default into online, which does not admit x: got %v", err)
	}
}

// Restore after a restart takes the pool and exclusive CPUs from
// annotations any pod or CRI client could have written. Forged records
// get no more than a fresh admission would.
func TestRestoreForgedRecords(t *testing.T) {
	cfg := lcOnlyForShop() // pool 0: shop and pay-* with tier=lc
	cfg.ReservedCPUs = "0"
	topoState := func() *isolation.State { return newStateAsIs(t, cpusettest.Intel2S20C2T, cfg) }
	shop := func(id string, milli int64) isolation.ContainerRequest {
		return isolation.ContainerRequest{ID: id, PodName: id, Namespace: "shop", Labels: map[string]string{"tier": "lc"}, CPURequestMilli: milli}
	}
	dev := func(id string, milli int64) isolation.ContainerRequest {
		return isolation.ContainerRequest{ID: id, PodName: id, Namespace: "dev", CPURequestMilli: milli}
	}
	cases := []struct {
		name string
		req  isolation.ContainerRequest
		pool string
		excl cpuset.CPUSet
		cur  cpuset.CPUSet
		want error // nil: restored as recorded
	}{
		{"legitimate exclusive record", shop("ok", 2000), isolation.PoolLatencyCritical, cpuset.New(4, 44), cpuset.New(4, 44), nil},
		{"legitimate shared record", dev("web", 1500), isolation.PoolOnline, cpuset.New(), cpuset.New(), nil},
		{"legitimate demotion", dev("down", 1500), isolation.PoolBatch, cpuset.New(), cpuset.New(), nil},
		{"forged pool 0 outside its allow-list", dev("f1", 2000), isolation.PoolLatencyCritical, cpuset.New(), cpuset.New(), isolation.ErrNotAllowed},
		{"forged pool 0 with exclusive CPUs", dev("f2", 2000), isolation.PoolLatencyCritical, cpuset.New(6, 46), cpuset.New(6, 46), isolation.ErrNotAllowed},
		{"forged unknown pool", dev("f3", 1000), "gold", cpuset.New(), cpuset.New(), isolation.ErrUnknownPool},
		{"exclusive CPUs in a pool that does not pin", dev("f4", 2000), isolation.PoolOnline, cpuset.New(8, 48), cpuset.New(8, 48), isolation.ErrNoExclusiveCPUs},
		{"more exclusive CPUs than requested", shop("f5", 1000), isolation.PoolLatencyCritical, cpuset.New(10, 11, 12), cpuset.New(10, 11, 12), isolation.ErrNoExclusiveCPUs},
		{"exclusive CPUs for a fractional request", shop("f6", 1500), isolation.PoolLatencyCritical, cpuset.New(12), cpuset.New(12), isolation.ErrNoExclusiveCPUs},
		{"exclusive CPUs it does not run on", shop("f7", 1000), isolation.PoolLatencyCritical, cpuset.New(14), cpuset.New(1, 2, 3), isolation.ErrNoExclusiveCPUs},
		{"exclusive reserved CPU", shop("f8", 1000), isolation.PoolLatencyCritical, cpuset.New(0), cpuset.New(), isolation.ErrNoExclusiveCPUs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := topoState()
			c.req.CurrentCPUs = c.cur
			a, err := st.Restore(c.req, c.pool, c.excl)
			if c.want == nil {
				if err != nil || a.Pool != c.pool || !a.CPUs.Equals(c.excl) && c.excl.Size() > 0 {
					t.Fatalf("got %+v, %v; want restored in %s", a, err, c.pool)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %+v, %v; want %v", a, err, c.want)
			}
			if len(st.Containers()) != 0 {
				t.Errorf("refused restore left a container behind")
			}
			// What the plugin does next: admit afresh. The result obeys
			// the same admission rules.
			fresh, err := st.Admit(c.req)
			if err == nil {
				checkAdmissible(t, cfg, &c.req, fresh.Pool)
			}
		})
	}
}

// newStateAsIs builds a state for cfg without newState's opening of empty
// allow-lists to namespace "ns".
func newStateAsIs(tb testing.TB, shape cpusettest.Shape, cfg *isolation.Config) *isolation.State {
	tb.Helper()
	return newStateWith(tb, shape, cfg)
}

// rulesPool is an independent statement of what the operator's rules give
// a pod: the first namespace rule, QoS rule or default whose pool's
// allow-list admits it; "" when none does.
func rulesPool(cfg *isolation.Config, r *isolation.ContainerRequest) string {
	byName := map[string]*isolation.PoolConfig{}
	for i := range cfg.Pools {
		byName[cfg.Pools[i].Name] = &cfg.Pools[i]
	}
	ok := func(name string) bool { p := byName[name]; return p != nil && p.Allow.Admits(r.Namespace, r.Labels) }
	for _, rule := range cfg.Classification.Namespaces {
		if m, _ := path.Match(rule.Namespace, r.Namespace); m && ok(rule.Pool) {
			return rule.Pool
		}
	}
	q := cfg.Classification.QoS
	byQoS := map[isolation.QoSClass]string{isolation.QoSGuaranteed: q.Guaranteed, isolation.QoSBurstable: q.Burstable, isolation.QoSBestEffort: q.BestEffort}[r.QoS()]
	if byQoS != "" && ok(byQoS) {
		return byQoS
	}
	if ok(cfg.Classification.Default) {
		return cfg.Classification.Default
	}
	return ""
}

// admissible states the invariant: a pod may be in pool only if the
// pool's allow-list admits it, and, unless that allow-list names it, the
// pool is not above the pool its rules give it (and the rules give it
// one).
func admissible(cfg *isolation.Config, r *isolation.ContainerRequest, pool string) error {
	var p *isolation.PoolConfig
	for i := range cfg.Pools {
		if cfg.Pools[i].Name == pool {
			p = &cfg.Pools[i]
		}
	}
	if p == nil {
		return fmt.Errorf("pool %q does not exist", pool)
	}
	if !p.Allow.Admits(r.Namespace, r.Labels) {
		return fmt.Errorf("pool %s's allow-list refuses namespace %q labels %v", pool, r.Namespace, r.Labels)
	}
	if !p.Allow.Empty() {
		return nil
	}
	base := rulesPool(cfg, r)
	if base == "" {
		return fmt.Errorf("pool %s has no allow-list and the rules give the pod no pool", pool)
	}
	for _, q := range cfg.Pools {
		if q.Name == base && p.Priority < q.Priority {
			return fmt.Errorf("pool %s (priority %d) is above the rules pool %s (priority %d)", pool, p.Priority, base, q.Priority)
		}
	}
	return nil
}

func checkAdmissible(tb testing.TB, cfg *isolation.Config, r *isolation.ContainerRequest, pool string) {
	tb.Helper()
	if err := admissible(cfg, r, pool); err != nil {
		tb.Fatalf("request %+v ended in pool %s: %v", *r, pool, err)
	}
}

// randomConfig draws a valid configuration of 2..4 pools with random
// allow-lists, rules and fallback; ok is false when the draw is invalid.
func randomConfig(rng *rand.Rand) (*isolation.Config, bool) {
	cfg := isolation.DefaultConfig()
	n := 2 + rng.IntN(3)
	prios := rng.Perm(n)
	namespaces := []string{"a", "b", "t-*", "c"}
	cfg.Pools = nil
	var names []string
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		names = append(names, name)
		pc := isolation.PoolConfig{Name: name, Priority: prios[i], Band: isolation.Band{Low: 0.3, High: 0.6},
			RCF: isolation.RCFBounds{Min: 0.2, Max: 1}, ExclusiveCores: rng.IntN(2) == 0}
		switch rng.IntN(4) {
		case 1:
			pc.Allow.Namespaces = []string{namespaces[rng.IntN(len(namespaces))]}
		case 2:
			pc.Allow.Labels = map[string]string{"tier": "lc"}
		case 3:
			pc.Allow.Namespaces = []string{namespaces[rng.IntN(len(namespaces))]}
			pc.Allow.Labels = map[string]string{"tier": "lc"}
		}
		cfg.Pools = append(cfg.Pools, pc)
	}
	for i := range cfg.Pools {
		if cfg.Pools[i].Priority == n-1 {
			cfg.Pools[i].ExclusiveCores = false
		}
	}
	pick := func() string {
		if rng.IntN(4) == 0 {
			return ""
		}
		return names[rng.IntN(n)]
	}
	cl := &cfg.Classification
	cl.Namespaces = nil
	for range rng.IntN(3) {
		cl.Namespaces = append(cl.Namespaces, isolation.NamespaceRule{Namespace: namespaces[rng.IntN(len(namespaces))], Pool: names[rng.IntN(n)]})
	}
	cl.QoS = isolation.QoSRules{Guaranteed: pick(), Burstable: pick(), BestEffort: pick()}
	cl.Default = names[rng.IntN(n)]
	cl.OnDisallowed = isolation.OnDisallowedRefuse
	if rng.IntN(2) == 0 {
		cl.OnDisallowed = names[rng.IntN(n)]
	}
	return cfg, cfg.Validate() == nil
}

func randomRequest(rng *rand.Rand, cfg *isolation.Config, i int) isolation.ContainerRequest {
	namespaces := []string{"a", "b", "c", "t-1", "x"}
	r := isolation.ContainerRequest{ID: fmt.Sprintf("c%d", i), Namespace: namespaces[rng.IntN(len(namespaces))]}
	if rng.IntN(2) == 0 {
		r.Labels = map[string]string{"tier": "lc"}
	}
	switch rng.IntN(4) {
	case 0: // best effort
	case 1:
		r.CPUShares = 512
	case 2:
		r.CgroupsPath = "/kubepods/pod1/c"
		r.CPURequestMilli = 2000
	case 3:
		r.CgroupsPath = "/kubepods/burstable/pod1/c"
		r.CPURequestMilli = 1500
	}
	switch k := rng.IntN(len(cfg.Pools) + 2); {
	case k < len(cfg.Pools):
		r.Annotations = map[string]string{cfg.Classification.Annotation: cfg.Pools[k].Name}
	case k == len(cfg.Pools):
		r.Annotations = map[string]string{cfg.Classification.Annotation: "gold"}
	}
	return r
}

// TestAdmissionInvariant classifies a million random requests under
// random configurations: none ends in a pool its allow-list or the
// no-promotion rule refuses, and a pod without annotation always gets its
// rules pool.
func TestAdmissionInvariant(t *testing.T) {
	classifications := 1_000_000
	if testing.Short() {
		classifications = 20_000
	}
	rng := rand.New(rand.NewPCG(17, 17))
	done, admitted, configs := 0, 0, 0
	for done < classifications {
		cfg, ok := randomConfig(rng)
		if !ok {
			continue
		}
		configs++
		for i := range 1000 {
			r := randomRequest(rng, cfg, i)
			cl, err := cfg.Classify(&r)
			done++
			if err != nil {
				var ae *isolation.AdmissionError
				if !errors.As(err, &ae) {
					t.Fatalf("refusal is not an *AdmissionError: %v", err)
				}
				continue
			}
			admitted++
			checkAdmissible(t, cfg, &r, cl.Pool)
			if _, annotated := r.Annotations[cfg.Classification.Annotation]; !annotated && cl.Pool != rulesPool(cfg, &r) {
				t.Fatalf("request %+v without annotation got %s, rules say %s", r, cl.Pool, rulesPool(cfg, &r))
			}
		}
	}
	t.Logf("%d classifications over %d configurations, %d admitted, invariant held", done, configs, admitted)
}

// TestRestoreInvariant restores random records (pools and exclusive CPUs
// a pod may have forged) under random configurations: a restored
// container is admissible, and it holds exclusive CPUs only in a pool that
// pins, for a whole-CPU request of that many CPUs.
func TestRestoreInvariant(t *testing.T) {
	restores := 20_000
	if testing.Short() {
		restores = 2_000
	}
	rng := rand.New(rand.NewPCG(18, 18))
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.VM2))
	if err != nil {
		t.Fatal(err)
	}
	done, restored := 0, 0
	for done < restores {
		cfg, ok := randomConfig(rng)
		if !ok {
			continue
		}
		st, err := isolation.NewState(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			r := randomRequest(rng, cfg, i)
			pool := cfg.Pools[rng.IntN(len(cfg.Pools))].Name
			excl := cpuset.New()
			if rng.IntN(2) == 0 {
				excl = cpuset.New(rng.IntN(2))
			}
			if rng.IntN(2) == 0 {
				r.CurrentCPUs = excl
			}
			a, err := st.Restore(r, pool, excl)
			done++
			if err != nil {
				continue
			}
			restored++
			checkAdmissible(t, cfg, &r, a.Pool)
			if a.Exclusive {
				var pins bool
				for _, p := range cfg.Pools {
					pins = pins || p.Name == a.Pool && p.ExclusiveCores
				}
				if !pins || r.CPURequest() != int64(a.CPUs.Size())*1000 {
					t.Fatalf("restored %+v with exclusive CPUs %s in pool %s (pins: %v)", r, a.CPUs, a.Pool, pins)
				}
			}
			st.Remove(r.ID)
		}
	}
	t.Logf("%d restores, %d accepted, invariant held", done, restored)
}
