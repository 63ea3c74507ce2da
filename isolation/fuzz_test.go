package isolation_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// FuzzParseConfig parses arbitrary YAML: no panic; what it accepts
// validates; what it refuses is refused with a *ConfigError or a parse
// error, never silently.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"", "period: 500ms", "period: 1ns", "reservedCPUs: \"0-4000000000\"",
		"pools:\n- {name: a, priority: 0, band: {low: 0.3, high: 0.5}, rcf: {min: 0.2, max: 1}}\n- {name: b, priority: 1, band: {low: 0.5, high: 0.8}}\nclassification: {annotation: strata.io/pool, default: b}\n",
		"batch: {watermark: \"NaN%\"}", "resize: {maxGrowPercent: .inf}", "a: &a [*a, *a]",
		"protection: {levels: [{name: x, when: {cpuLoad: .nan}, actions: [evict]}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := isolation.ParseConfig(data)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a configuration Validate refuses: %v", err)
		}
	})
}

// FuzzClassify draws a configuration from seed and classifies a request
// whose namespace, labels, annotation and QoS come from the fuzzer: the
// admission invariant holds (see admissible).
func FuzzClassify(f *testing.F) {
	f.Add(uint64(1), "a", "p0", true, uint8(0))
	f.Add(uint64(2), "t-1", "p1", false, uint8(2))
	f.Add(uint64(3), "x", "gold", false, uint8(3))
	f.Add(uint64(4), "b", "", true, uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, ns, annotation string, label bool, qos uint8) {
		rng := rand.New(rand.NewPCG(seed, seed))
		cfg, ok := randomConfig(rng)
		if !ok {
			return
		}
		r := isolation.ContainerRequest{ID: "c", Namespace: ns}
		if label {
			r.Labels = map[string]string{"tier": "lc"}
		}
		if annotation != "" {
			r.Annotations = map[string]string{cfg.Classification.Annotation: annotation}
		}
		switch qos % 4 {
		case 1:
			r.CPUShares = 512
		case 2:
			r.CgroupsPath, r.CPURequestMilli = "/kubepods/pod1/c", 2000
		case 3:
			r.CgroupsPath = "/kubepods/besteffort/pod1/c"
		}
		cl, err := cfg.Classify(&r)
		if err != nil {
			var ae *isolation.AdmissionError
			if !errors.As(err, &ae) {
				t.Fatalf("refusal is not an *AdmissionError: %v", err)
			}
			if len(err.Error()) > 4096 {
				t.Fatalf("refusal of %d bytes", len(err.Error()))
			}
			return
		}
		checkAdmissible(t, cfg, &r, cl.Pool)
	})
}

// FuzzRestore restores a container from a record the fuzzer writes (the
// pool annotation, the exclusive-cpus list, the cpuset it runs on), as
// Synchronize does after a restart: it is restored only where the
// admission check admits it, with exclusive CPUs only in a pool that pins
// and for a whole request of that size.
func FuzzRestore(f *testing.F) {
	f.Add(uint64(1), "a", "p0", "1", "1", int64(1000))
	f.Add(uint64(2), "x", "p1", "0-4000000000", "", int64(2000))
	f.Add(uint64(3), "t-1", "p2", "0,1", "0-1", int64(2000))
	f.Add(uint64(4), "b", "gold", "", "0", int64(500))
	topo, err := strcpuset.Discover(cpusettest.Root(f, cpusettest.VM2))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, seed uint64, ns, pool, exclusive, current string, milli int64) {
		rng := rand.New(rand.NewPCG(seed, seed))
		cfg, ok := randomConfig(rng)
		if !ok {
			return
		}
		st, err := isolation.NewState(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		excl, err := strcpuset.ParseList(exclusive)
		if err != nil {
			return // the plugin drops a malformed record (see nri-plugin's recorded)
		}
		cur, _ := strcpuset.ParseList(current)
		r := isolation.ContainerRequest{ID: "c", Namespace: ns, CPURequestMilli: max(milli, 0), CurrentCPUs: cur}
		a, err := st.Restore(r, pool, excl)
		if err != nil {
			if len(st.Containers()) != 0 {
				t.Fatal("refused restore left a container")
			}
			return
		}
		checkAdmissible(t, cfg, &r, a.Pool)
		if a.Exclusive && r.CPURequest() != int64(a.CPUs.Size())*1000 {
			t.Fatalf("exclusive CPUs %s for a request of %d millicores", a.CPUs, r.CPURequest())
		}
	})
}
