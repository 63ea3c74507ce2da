package isolation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-nri/strata/isolation"
)

// With the default configuration, whose pools have no allow-lists, a pod's
// annotation can keep it in its own pool or move it down, but never
// promote it: otherwise any pod could claim exclusive cores.
func TestAnnotationCannotPromoteWithoutAllowList(t *testing.T) {
	cfg := isolation.DefaultConfig()
	burstable := func(pool string) *isolation.ContainerRequest {
		return &isolation.ContainerRequest{ID: "c", PodName: "p", Namespace: "anyone", CPURequestMilli: 2000,
			Annotations: map[string]string{"strata.io/pool": pool}}
	}
	_, err := cfg.Classify(burstable(isolation.PoolLatencyCritical))
	if !errors.Is(err, isolation.ErrNotAllowed) {
		t.Fatalf("burstable pod annotated latency-critical: %v, want ErrNotAllowed", err)
	}
	for _, want := range []string{"no allow-list", `above pool "online"`, "allowed pools: online, batch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, pool := range []string{isolation.PoolOnline, isolation.PoolBatch} {
		if got, err := cfg.Classify(burstable(pool)); err != nil || got.Pool != pool {
			t.Errorf("burstable pod annotated %s: %+v, %v; want it placed there", pool, got, err)
		}
	}
	// Once the operator lists the namespace, the annotation works.
	cfg.Pools[0].Allow = isolation.AllowList{Namespaces: []string{"anyone"}}
	if got, err := cfg.Classify(burstable(isolation.PoolLatencyCritical)); err != nil || got.Pool != isolation.PoolLatencyCritical {
		t.Errorf("allow-listed pod: %+v, %v; want latency-critical", got, err)
	}
	// A configured fallback places instead of refusing.
	cfg.Pools[0].Allow = isolation.AllowList{}
	cfg.Classification.OnDisallowed = isolation.PoolBatch
	if got, err := cfg.Classify(burstable(isolation.PoolLatencyCritical)); err != nil || got.Pool != isolation.PoolBatch {
		t.Errorf("with fallback: %+v, %v; want batch", got, err)
	}
}
