package isolation_test

import (
	"reflect"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/isolation"
)

// A configuration built in Go reaches the plugin as YAML (the test tiers
// write one for `strata run --config`): marshalled and parsed again it must
// be the same configuration. A cleared watermark schedule used to be left
// out of the YAML, so parsing brought back the default night window.
func TestConfigSurvivesYAMLRoundTrip(t *testing.T) {
	cleared := isolation.DefaultConfig()
	cleared.Batch.Schedule = nil
	own := isolation.DefaultConfig()
	own.Batch.Schedule = []isolation.WatermarkWindow{{From: "01:00", To: "02:00", Watermark: "20%"}}
	for name, cfg := range map[string]*isolation.Config{"default": isolation.DefaultConfig(), "schedule cleared": cleared, "own schedule": own} {
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := isolation.ParseConfig(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		if !reflect.DeepEqual(got, cfg) {
			t.Errorf("%s: round trip changed the configuration: batch %+v, want %+v", name, got.Batch, cfg.Batch)
		}
	}
}

// With the schedule cleared, batch.watermark applies at night too; with
// the default schedule, 23:00 is in the 5 % window.
func TestClearedScheduleKeepsTheWatermarkAtNight(t *testing.T) {
	night := time.Date(2026, 1, 5, 23, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		yaml string
		from string
		want float64 // watermark, share of the 79 pool CPUs
	}{
		{"default", `reservedCPUs: "0"`, "batch.schedule[0]", 0.05},
		{"cleared", "reservedCPUs: \"0\"\nbatch: {schedule: []}", "batch.watermark", 0.10},
		{"null", "reservedCPUs: \"0\"\nbatch: {schedule: null}", "batch.watermark", 0.10},
	} {
		cfg, err := isolation.ParseConfig([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(cfg) // as the test tiers hand it to the plugin
		if err != nil {
			t.Fatal(err)
		}
		if cfg, err = isolation.ParseConfig(b); err != nil {
			t.Fatal(err)
		}
		n := newNode(t, cfg)
		n.now = night
		p := n.step(t)
		if p.Batch.WatermarkFrom != tc.from || p.Batch.Watermark != 79*tc.want {
			t.Errorf("%s: at 23:00 watermark %.2f from %s, want %.2f from %s", tc.name, p.Batch.Watermark, p.Batch.WatermarkFrom, 79*tc.want, tc.from)
		}
	}
}
