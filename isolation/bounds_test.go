package isolation_test

import (
	"math"
	"strings"
	"testing"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
)

// Hostile configurations are refused with an error naming the problem,
// within the budget (50 MiB, 100 ms).
func TestHostileConfigsWithinBudget(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += n + ": &" + n + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = n
	}
	cases := []struct{ name, yaml, want string }{
		{"alias bomb", laughs, "parse"},
		{"oversized document", "period: 1s\n" + strings.Repeat("# padding\n", 200_000), "larger than"},
		{"reserved range of billions", `reservedCPUs: "0-4000000000"`, "reservedCPUs"},
		{"reserved list repeated", `reservedCPUs: "` + strings.Repeat("0-8191,", 9000) + `0"`, "reservedCPUs"},
		{"namespace rules up to the size bound", "classification: {namespaces: [" + strings.Repeat("{namespace: a, pool: gold},", 2400) + "]}", "unknown pool"},
		{"namespace rules beyond the size bound", "classification: {namespaces: [" + strings.Repeat("{namespace: a, pool: gold},", 5000) + "]}", "larger than"},
		{"NaN watermark", `batch: {watermark: "NaN"}`, "batch.watermark"},
		{"nanosecond period", "period: 1ns", "from 10ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			testutil.WithinBudget(t, c.name, func() { _, err = isolation.ParseConfig([]byte(c.yaml)) })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseConfig = %v, want an error naming %q", err, c.want)
			}
			if len(err.Error()) > 8192 {
				t.Errorf("error of %d bytes echoes the input", len(err.Error()))
			}
		})
	}
}

// Lists built through the Go API (no size bound on a document) are
// bounded by Validate.
func TestLongListsRefused(t *testing.T) {
	cfg := isolation.DefaultConfig()
	for range isolation.MaxListLen + 1 {
		cfg.Classification.Namespaces = append(cfg.Classification.Namespaces, isolation.NamespaceRule{Namespace: "a", Pool: isolation.PoolOnline})
	}
	var err error
	testutil.WithinBudget(t, "4097 namespace rules", func() { err = cfg.Validate() })
	if err == nil || !strings.Contains(err.Error(), "classification.namespaces") || !strings.Contains(err.Error(), "at most 4096") {
		t.Errorf("Validate = %v", err)
	}
}

// A megabyte annotation or recorded pool name, with newlines and NULs,
// comes back in the refusal quoted and cut, within the budget.
func TestHostileAnnotationsWithinBudget(t *testing.T) {
	cfg := lcOnlyForShop()
	cfg.ReservedCPUs = "0"
	st := newStateWith(t, cpusettest.VM2, cfg)
	huge := "gold\nlevel=ERROR msg=forged\x00" + strings.Repeat("x", 1<<20)
	r := isolation.ContainerRequest{ID: "c\nd", PodName: "p", Namespace: "dev", Annotations: map[string]string{"strata.io/pool": huge}}
	for name, call := range map[string]func() error{
		"classify": func() error { _, err := cfg.Classify(&r); return err },
		"restore":  func() error { _, err := st.Restore(r, huge, cpuset.New()); return err },
	} {
		var err error
		testutil.WithinBudget(t, name, func() { err = call() })
		if err == nil {
			t.Fatalf("%s accepted a megabyte pool name", name)
		}
		msg := err.Error()
		if len(msg) > 2048 || strings.ContainsAny(msg, "\n\x00") {
			t.Errorf("%s: refusal of %d bytes, raw newline or NUL: %.300q", name, len(msg), msg)
		}
	}
}

// NaN and infinity in float fields set through the Go API (YAML cannot
// carry them: decoding fails) are refused, field by field.
func TestNaNRefused(t *testing.T) {
	nan := math.NaN()
	for name, set := range map[string]func(*isolation.Config){
		"pools[0].band.low":                       func(c *isolation.Config) { c.Pools[0].Band.Low = nan },
		"pools[0].rcf.max":                        func(c *isolation.Config) { c.Pools[0].RCF.Max = math.Inf(1) },
		"resize.maxGrowPercent":                   func(c *isolation.Config) { c.Resize.MaxGrowPercent = nan },
		"predictor.percentile":                    func(c *isolation.Config) { c.Predictor.Percentile = nan },
		"protection.levels[0].when.cpuLoad":       func(c *isolation.Config) { c.Protection.Levels[0].When.CPULoad = nan },
		"protection.levels[1].when.memoryPSIFull": func(c *isolation.Config) { c.Protection.Levels[1].When.MemoryFull = math.Inf(1) },
		"protection.levels[0].when.memoryUsage":   func(c *isolation.Config) { c.Protection.Levels[0].When.MemoryUsage = nan },
	} {
		cfg := isolation.DefaultConfig()
		set(cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}
