package isolation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-nri/strata/isolation"
)

func lcOnlyForShop() *isolation.Config {
	cfg := isolation.DefaultConfig()
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"shop", "pay-*"}, Labels: map[string]string{"tier": "lc"}}
	cfg.Classification.Namespaces = []isolation.NamespaceRule{{Namespace: "batch-*", Pool: isolation.PoolBatch}}
	return cfg
}

func TestClassifyRoutes(t *testing.T) {
	cfg := lcOnlyForShop()
	ann := func(v string) map[string]string { return map[string]string{"strata.io/pool": v} }
	cases := []struct {
		name  string
		req   isolation.ContainerRequest
		pool  string
		route string
	}{
		{"annotation inside allow-list",
			isolation.ContainerRequest{ID: "a", Namespace: "pay-eu", Labels: map[string]string{"tier": "lc"}, Annotations: ann("latency-critical")},
			"latency-critical", "annotation strata.io/pool=latency-critical"},
		{"namespace rule",
			isolation.ContainerRequest{ID: "b", Namespace: "batch-nightly", CPUShares: 1024, MemoryLimit: 1 << 30},
			"batch", "namespace rule batch-*"},
		{"qos from cgroupfs path",
			isolation.ContainerRequest{ID: "c", Namespace: "x", CgroupsPath: "/kubepods/besteffort/pod1234/abcd"},
			"batch", "qos BestEffort"},
		{"qos from systemd path",
			isolation.ContainerRequest{ID: "d", Namespace: "x", CgroupsPath: "kubepods-burstable-pod12.slice:cri-containerd:abcd"},
			"online", "qos Burstable"},
		{"qos from resources: best effort",
			isolation.ContainerRequest{ID: "e", Namespace: "x", CPUShares: 2},
			"batch", "qos BestEffort"},
		{"qos from resources: guaranteed",
			isolation.ContainerRequest{ID: "f", Namespace: "x", CPUShares: 2048, CPUQuota: 200000, CPUPeriod: 100000, MemoryLimit: 1 << 30, MemoryRequest: 1 << 30},
			"online", "qos Guaranteed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := cfg.Classify(&c.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.Pool != c.pool || got.Route != c.route {
				t.Errorf("got %+v, want pool %s route %q", got, c.pool, c.route)
			}
		})
	}
}

// A pod annotated for pool 0 but outside its allow-list is refused, with an
// error naming the pod, the pool, the annotation and the allowed pools.
func TestAnnotationOutsideAllowListRefused(t *testing.T) {
	cfg := lcOnlyForShop()
	req := isolation.ContainerRequest{ID: "ctr1", PodName: "sneaky", Namespace: "dev",
		Labels: map[string]string{"tier": "lc"}, Annotations: map[string]string{"strata.io/pool": "latency-critical"}}
	_, err := cfg.Classify(&req)
	if !errors.Is(err, isolation.ErrNotAllowed) {
		t.Fatalf("got %v, want ErrNotAllowed", err)
	}
	for _, want := range []string{"ctr1", "dev/sneaky", `"latency-critical"`, "strata.io/pool=latency-critical", "allowed pools: batch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Right namespace, missing label: refused too (namespaces AND labels).
	req.Namespace, req.Labels = "shop", nil
	if _, err := cfg.Classify(&req); !errors.Is(err, isolation.ErrNotAllowed) {
		t.Errorf("missing label: got %v, want ErrNotAllowed", err)
	}
}

func TestAnnotationOutsideAllowListFallback(t *testing.T) {
	cfg := lcOnlyForShop()
	cfg.Classification.OnDisallowed = isolation.PoolOnline
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Burstable: its rules give it online, so the fallback online is no
	// promotion (see TestFallbackNeverPromotes).
	req := isolation.ContainerRequest{ID: "ctr1", Namespace: "dev", CPUShares: 512, Annotations: map[string]string{"strata.io/pool": "latency-critical"}}
	got, err := cfg.Classify(&req)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pool != isolation.PoolOnline || !strings.HasPrefix(got.Route, "fallback") {
		t.Errorf("got %+v, want the fallback pool online", got)
	}
}

func TestUnknownPoolAnnotationListsPools(t *testing.T) {
	cfg := lcOnlyForShop()
	req := isolation.ContainerRequest{ID: "x", Namespace: "dev", Annotations: map[string]string{"strata.io/pool": "gold"}}
	_, err := cfg.Classify(&req)
	if !errors.Is(err, isolation.ErrUnknownPool) || !strings.Contains(err.Error(), `"gold"`) || !strings.Contains(err.Error(), "latency-critical, online, batch") {
		t.Errorf("got %v, want ErrUnknownPool naming gold and listing every configured pool", err)
	}
}

// A QoS rule that leads to a pool whose allow-list refuses the pod falls
// through to the default instead of promoting it.
func TestRuleNeverPromotesPastAllowList(t *testing.T) {
	cfg := lcOnlyForShop()
	cfg.Classification.QoS.Guaranteed = isolation.PoolLatencyCritical
	req := isolation.ContainerRequest{ID: "g", Namespace: "dev", CgroupsPath: "/kubepods/pod1/c1"}
	got, err := cfg.Classify(&req)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pool != isolation.PoolOnline || got.Route != "default" {
		t.Errorf("got %+v, want default pool online", got)
	}
}
