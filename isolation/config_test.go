package isolation_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/isolation"
)

func TestDefaultConfigIsLARs(t *testing.T) {
	cfg := isolation.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	want := []isolation.Band{{Low: 0.30, High: 0.50}, {Low: 0.45, High: 0.60}, {Low: 0.50, High: 0.80}}
	if len(cfg.Pools) != 3 {
		t.Fatalf("got %d pools, want 3", len(cfg.Pools))
	}
	for i, p := range cfg.Pools {
		if p.Priority != i || p.Band != want[i] {
			t.Errorf("pool %d: priority %d band %+v, want priority %d band %+v", i, p.Priority, p.Band, i, want[i])
		}
	}
	if cfg.Resize.MaxGrowCores != 10 || cfg.Resize.MaxShrinkCores != 2 || cfg.Resize.ShrinkInterval.Duration != 30*time.Second {
		t.Errorf("resize defaults %+v, want katalyst's 10 up / 2 down / 30s", cfg.Resize)
	}
}

const exampleYAML = `
period: 500ms
reservedCPUs: "0-1"
pools:
- name: lc
  priority: 0
  band: {low: 0.3, high: 0.5}
  rcf: {min: 0.2, max: 1}
  exclusiveCores: true
  allow:
    namespaces: ["shop", "pay-*"]
  profile:
    memory: {min: request}
- name: be
  priority: 1
  band: {low: 0.5, high: 0.8}
  rcf: {min: 0.1, max: 1}
  minCPUs: 2
  profile:
    cpu: {shares: 2, idle: true}
    oomScoreAdj: 1000
    memory: {high: "90%"}
    pageCache: {reclaimable: true}
classification:
  annotation: example.com/pool
  namespaces:
  - {namespace: "batch-*", pool: be}
  qos: {bestEffort: be}
  default: be
  onDisallowed: be
protection:
  levels:
  - name: hot
    when: {memoryUsage: 0.9}
    actions: [release, reclaimPageCache, evict]
batch:
  watermark: "4"
  schedule:
  - {from: "23:00", to: "07:00", watermark: "2%"}
  timeZone: Asia/Shanghai
`

func TestParseConfig(t *testing.T) {
	cfg, err := isolation.ParseConfig([]byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Period.Duration != 500*time.Millisecond || cfg.ReservedCPUs != "0-1" {
		t.Errorf("period %s reserved %q", cfg.Period.Duration, cfg.ReservedCPUs)
	}
	if len(cfg.Pools) != 2 || cfg.Pools[1].MinCPUs != 2 || *cfg.Pools[1].Profile.OOMScoreAdj != 1000 {
		t.Errorf("pools not replaced as a whole: %+v", cfg.Pools)
	}
	if len(cfg.Protection.Levels) != 1 || len(cfg.Batch.Schedule) != 1 {
		t.Errorf("levels %d schedule %d, want the file's 1 and 1", len(cfg.Protection.Levels), len(cfg.Batch.Schedule))
	}
	// Fields left out keep the defaults.
	if cfg.Resize.MaxGrowCores != 10 || cfg.Predictor.Percentile != 0.95 {
		t.Errorf("defaults lost: resize %+v predictor %+v", cfg.Resize, cfg.Predictor)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(path, []byte(exampleYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := isolation.LoadConfig(path); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("period: 0s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := isolation.LoadConfig(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "period") {
		t.Errorf("error %v should name the file and the field", err)
	}
	if _, err := isolation.LoadConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

// Each invalid configuration must be rejected with a message that names
// the offending field (and, for enumerations, the allowed values).
func TestInvalidConfigs(t *testing.T) {
	pools := func(extra string) string {
		return `pools:
- {name: a, priority: 0, band: {low: 0.3, high: 0.5}, rcf: {min: 0.2, max: 1}` + extra + `}
- {name: b, priority: 1, band: {low: 0.5, high: 0.8}}
classification: {annotation: strata.io/pool, default: b, qos: {guaranteed: "", burstable: "", bestEffort: ""}}
`
	}
	cases := []struct {
		name, yaml string
		field      string // must appear in the error
		allowed    string // must appear too, when not empty
	}{
		{"zero period", "period: 0s", "period", ""},
		{"bad duration", "period: fast", "duration", "1s"},
		{"reserved CPUs", `reservedCPUs: "0-x"`, "reservedCPUs", ""},
		{"one pool", "pools:\n- {name: a, priority: 0, band: {low: 0.3, high: 0.5}, rcf: {min: 0.2, max: 1}}", "pools", "need 2..64 pools"},
		{"band inverted", strings.Replace(pools(""), "band: {low: 0.3, high: 0.5}", "band: {low: 0.6, high: 0.5}", 1), "pools[0].band", ""},
		{"band above 1", strings.Replace(pools(""), "high: 0.8", "high: 1.8", 1), "pools[1].band.high", "(0, 1]"},
		{"rcf above 1", strings.Replace(pools(""), "max: 1}", "max: 1.5}", 1), "pools[0].rcf.max", "(0, 1]"},
		{"rcf missing on an online pool", strings.Replace(pools(""), ", rcf: {min: 0.2, max: 1}", "", 1), "pools[0].rcf.min", "(0, 1]"},
		{"rcf min > max", strings.Replace(pools(""), "min: 0.2, max: 1", "min: 0.9, max: 0.5", 1), "pools[0].rcf", "rcf.min"},
		{"duplicate priority", strings.Replace(pools(""), "priority: 1", "priority: 0", 1), "pools[1].priority", "unique"},
		{"duplicate name", strings.Replace(pools(""), "name: b", "name: a", 1), "pools[1].name", "duplicate"},
		{"exclusive lowest", strings.Replace(pools(""), "high: 0.8}}", "high: 0.8}, exclusiveCores: true}", 1), "pools[1].exclusiveCores", ""},
		{"unknown default pool", strings.Replace(pools(""), "default: b", "default: gold", 1), "classification.default", `"a", "b"`},
		{"unknown onDisallowed", strings.Replace(pools(""), "default: b,", "default: b, onDisallowed: maybe,", 1), "classification.onDisallowed", `"refuse"`},
		{"quota policy", pools(", profile: {cpu: {quota: half}}"), "pools[0].profile.cpu.quota", `"keep"`},
		{"shares range", pools(", profile: {cpu: {shares: 1}}"), "pools[0].profile.cpu.shares", "2..262144"},
		{"oom score", pools(", profile: {oomScoreAdj: 2000}"), "pools[0].profile.oomScoreAdj", "-1000..1000"},
		{"memory policy", pools(", profile: {memory: {low: lots}}"), "pools[0].profile.memory.low", `"request"`},
		{"unknown action", "protection: {levels: [{name: x, when: {memoryUsage: 0.9}, actions: [panic]}]}", "protection.levels[0].actions[0]", `"release"`},
		{"actions out of order", "protection: {levels: [{name: x, when: {memoryUsage: 0.9}, actions: [evict]}, {name: y, when: {memoryUsage: 0.95}, actions: [release]}]}", "protection.levels[1].actions[0]", "escalate"},
		{"level without threshold", "protection: {levels: [{name: x, when: {}, actions: [evict]}]}", "protection.levels[0].when", "cpuLoad"},
		{"memory threshold", "protection: {levels: [{name: x, when: {memoryUsage: 80}, actions: [evict]}]}", "protection.levels[0].when.memoryUsage", "[0, 1]"},
		{"watermark", `batch: {watermark: "120%"}`, "batch.watermark", "10%"},
		{"schedule time", `batch: {schedule: [{from: "25:00", to: "06:00", watermark: "5%"}]}`, "batch.schedule[0].from", "HH:MM"},
		{"time zone", `batch: {timeZone: Mars/Olympus}`, "batch.timeZone", "IANA"},
		{"whenDisabled", `colocation: {whenDisabled: pause}`, "colocation.whenDisabled", `"suspend"`},
		{"predictor percentile", `predictor: {percentile: 95}`, "predictor.percentile", "(0, 1]"},
		{"resize", `resize: {maxShrinkCores: 0}`, "resize.maxShrinkCores", "1..8192"},
		{"period too short", "period: 1ns", "period", "from 10ms to 1h0m0s"},
		{"period too long", "period: 48h", "period", "from 10ms to 1h0m0s"},
		{"negative interval", "protection: {cooldown: -1s}", "protection.cooldown", "from 0s to 24h0m0s"},
		{"interval of years", "resize: {shrinkInterval: 87600h}", "resize.shrinkInterval", "from 0s to 24h0m0s"},
		{"half-life", "predictor: {halfLife: 1ms}", "predictor.halfLife", "from 1s to 720h0m0s"},
		{"grow percent", "resize: {maxGrowPercent: 1e308}", "resize.maxGrowPercent", "[0, 1000]"},
		{"grow cores", "resize: {maxGrowCores: 9223372036854775807}", "resize.maxGrowCores", "1..8192"},
		{"NaN watermark", `batch: {watermark: "NaN%"}`, "batch.watermark", "0%..100%"},
		{"infinite watermark", `batch: {watermark: "+Inf"}`, "batch.watermark", "0..8192"},
		{"NaN schedule watermark", `batch: {schedule: [{from: "22:00", to: "06:00", watermark: "nan"}]}`, "batch.schedule[0].watermark", "0%..100%"},
		{"NaN memory policy", pools(", profile: {memory: {high: \"NaN%\"}}"), "pools[0].profile.memory.high", `"request"`},
		{"priority bound", strings.Replace(pools(""), "priority: 1", "priority: 4611686018427387904", 1), "pools[1].priority", "0..1000"},
		{"minCPUs bound", pools(", minCPUs: 100000"), "pools[0].minCPUs", "0..8192"},
		{"reserved CPU beyond any machine", `reservedCPUs: "9000"`, "reservedCPUs", "beyond 8191"},
		{"reserved range of billions", `reservedCPUs: "0-4000000000"`, "reservedCPUs", "beyond 8191"},
		{"reserved negative", `reservedCPUs: "-1"`, "reservedCPUs", "negative"},
		{"reserved repeated", `reservedCPUs: "` + strings.Repeat("0-8191,", 1000) + `0"`, "reservedCPUs", "more than 8192 ids"},
		{"namespace pattern", pools(", allow: {namespaces: [" + strings.Repeat("a", 300) + "]}"), "pools[0].allow.namespaces[0]", "shell pattern"},
		{"unknown field", "poools: []", "poools", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := isolation.ParseConfig([]byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.yaml)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, c.field) || !strings.Contains(msg, c.allowed) {
				t.Errorf("error %q should name %q and %q", msg, c.field, c.allowed)
			}
			var ce *isolation.ConfigError
			if errors.As(err, &ce) && !strings.Contains(ce.Field, strings.SplitN(c.field, "[", 2)[0]) {
				t.Errorf("ConfigError.Field %q, want it to name %q", ce.Field, c.field)
			}
		})
	}
}

// default.yaml documents the defaults for operators: it must
// parse to exactly DefaultConfig.
func TestDefaultYAMLIsDefaultConfig(t *testing.T) {
	cfg, err := isolation.ParseConfig(isolation.DefaultConfigYAML)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, isolation.DefaultConfig()) {
		t.Errorf("default.yaml differs from DefaultConfig:\n%+v\n%+v", cfg, isolation.DefaultConfig())
	}
}

// configLeaves calls visit for every field of v that holds a value (a
// non-zero scalar, a non-nil slice, map or pointer), with its YAML path;
// it walks into structs, pointers and list elements.
func configLeaves(v reflect.Value, path string, visit func(path string, f reflect.Value)) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			p := path
			if !sf.Anonymous {
				if name == "" {
					name = sf.Name
				}
				if p != "" {
					p += "."
				}
				p += name
			}
			configLeaves(v.Field(i), p, visit)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			visit(path, v)
			if !v.IsNil() { // visit may have cleared it
				configLeaves(v.Elem(), path, visit)
			}
		}
	case reflect.Slice:
		if !v.IsNil() {
			visit(path, v)
			for i := range v.Len() {
				configLeaves(v.Index(i), path+"["+strconv.Itoa(i)+"]", visit)
			}
		}
	case reflect.Map:
		if !v.IsNil() {
			visit(path, v)
		}
	default:
		if !v.IsZero() {
			visit(path, v)
		}
	}
}

// A configuration written from Go (sigs.k8s.io/yaml, as the colocation
// benchmark does) reads back unchanged: DefaultConfig and the example file's
// configuration themselves, and each with every one of its fields in turn
// cleared to its zero value, wherever that is still a valid configuration.
// A field written with omitempty whose default is not its zero value would
// be dropped on writing and come back as the default on reading: an
// explicit "" or false or 0 silently turned into something else.
func TestConfigRoundTripClearedFields(t *testing.T) {
	roundTrip := func(t *testing.T, want *isolation.Config) {
		t.Helper()
		b, err := yaml.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := isolation.ParseConfig(b)
		if err != nil {
			t.Fatalf("written configuration does not load: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip changed the configuration:\n%s", b)
		}
	}
	bases := []struct {
		name string
		cfg  func() *isolation.Config
		// least fields the walk must find, and least that clear validly
		fields, valid int
	}{
		{"default", isolation.DefaultConfig, 70, 35},
		{"example", func() *isolation.Config {
			cfg, err := isolation.ParseConfig([]byte(exampleYAML))
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		}, 50, 20},
	}
	for _, base := range bases {
		t.Run(base.name, func(t *testing.T) {
			roundTrip(t, base.cfg())
			var paths []string
			configLeaves(reflect.ValueOf(base.cfg()).Elem(), "", func(p string, _ reflect.Value) { paths = append(paths, p) })
			cleared := 0
			for i, path := range paths {
				cfg := base.cfg()
				n := 0
				configLeaves(reflect.ValueOf(cfg).Elem(), "", func(_ string, f reflect.Value) {
					if n == i {
						f.SetZero()
					}
					n++
				})
				if cfg.Validate() != nil {
					// Refused when cleared: it cannot be written and read
					// back, nor is it silently changed.
					continue
				}
				cleared++
				t.Run("cleared "+path, func(t *testing.T) { roundTrip(t, cfg) })
			}
			// The walk must have found the configuration's fields.
			if len(paths) < base.fields || cleared < base.valid {
				t.Errorf("walked %d fields, %d cleared validly; want at least %d and %d: the walk missed fields", len(paths), cleared, base.fields, base.valid)
			}
			t.Logf("%d fields set, %d cleared to a valid configuration and round-tripped", len(paths), cleared)
		})
	}
}
