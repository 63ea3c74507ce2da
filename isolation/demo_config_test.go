package isolation_test

import (
	"testing"

	"github.com/strata-nri/strata/isolation"
)

// The demo's configuration file must stay valid and say what it claims.
func TestDemoConfig(t *testing.T) {
	cfg, err := isolation.LoadConfig("../examples/demo/strata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pools) != 3 || cfg.Pools[2].MinCPUs != 0 || len(cfg.Pools[0].Allow.Namespaces) != 1 || cfg.Pools[0].Allow.Namespaces[0] != "demo" {
		t.Errorf("demo config: %d pools, batch minCPUs %d, pool 0 allow %+v", len(cfg.Pools), cfg.Pools[2].MinCPUs, cfg.Pools[0].Allow)
	}
	if cfg.Period.Duration.String() != "500ms" {
		t.Errorf("period %s, want 500ms", cfg.Period.Duration)
	}
}
