package isolation

import (
	"strings"
	"testing"
	"time"
)

// ioConfig: batch has a 100 MiB/s read limit on /dev/vda and the IO
// protection: 1 MiB/s reads while a higher pool's IO PSI some ≥ 20 %,
// lifted after 3 periods below 10 %.
func ioConfig() *Config {
	cfg := rdtConfig()
	for i := range cfg.Pools {
		cfg.Pools[i].Profile.RDT = RDTProfile{}
		if cfg.Pools[i].Name == PoolBatch {
			cfg.Pools[i].Profile.IO = IOProfile{
				Limits:  []IODeviceLimit{{Device: "/dev/vda", ReadBPS: 100 << 20, WritePercent: 50}},
				Protect: &IOProtect{PSISome: 20, ReleasePSISome: 10, CalmPeriods: 3, Device: "/dev/vda", ReadBPS: 1 << 20},
			}
		}
	}
	return cfg
}

func ioObs(onlinePSI float64) Observations {
	capacity := map[string]IOCapacity{"/dev/vda": {ReadBPS: 800 << 20, WriteBPS: 400 << 20}}
	return Observations{Containers: map[string]ContainerUsage{}, Pools: map[string]PoolObservation{
		PoolLatencyCritical: {IO: IOObservation{Measured: true}},
		PoolOnline:          {IO: IOObservation{Measured: true, PSISome: onlinePSI}},
		PoolBatch:           {IO: IOObservation{Measured: true, Capacity: capacity}},
	}}
}

// TestIOProtectionHysteresis drives the batch pool's IO protection through
// pressure, a dip that is not calm enough, and calm periods: it engages at
// once, holds while PSI stays between the thresholds, and lifts only after
// CalmPeriods periods below the release threshold.
func TestIOProtectionHysteresis(t *testing.T) {
	st := ioState(t)
	now := time.Unix(0, 0)
	step := func(psi float64) IOPlan {
		now = now.Add(time.Second)
		p := Decide(ioObs(psi), st, now)
		if err := st.Commit(&p); err != nil {
			t.Fatal(err)
		}
		return p.Pools[2].IO
	}
	b := step(0)
	if b.Throttled || b.Weight != DefaultBatchIOWeight || len(b.Limits) != 1 || b.Limits[0].ReadBPS != 100<<20 || b.Limits[0].WriteBPS != 200<<20 {
		t.Fatalf("calm batch = %+v; want the default low weight, 100 MiB/s reads and 50 %% of 400 MiB/s writes", b)
	}
	b = step(35)
	if !b.Throttled || b.Weight != 10 || b.Limits[0].ReadBPS != 1<<20 || !strings.Contains(b.Reason, "online IO PSI some 35.0%") {
		t.Fatalf("under pressure: %+v; want throttled to 1 MiB/s reads, weight 10, reason naming the pool", b)
	}
	for i, psi := range []float64{15, 12, 5, 5} { // 15, 12: between thresholds
		b = step(psi)
		if !b.Throttled {
			t.Fatalf("period %d (PSI %v): lifted early: %+v", i, psi, b)
		}
	}
	if b = step(5); b.Throttled || b.Limits[0].ReadBPS != 100<<20 || b.Weight != DefaultBatchIOWeight {
		t.Fatalf("after 3 calm periods: %+v; want the profile back", b)
	}
	if b = step(8); b.Throttled {
		t.Fatalf("PSI 8 %% below the engage threshold re-engaged: %+v", b)
	}
	// Online pools are never throttled by it, and keep the runtime's weight.
	p := Decide(ioObs(50), st, now.Add(time.Second))
	if o := p.Pools[1].IO; o.Throttled || o.Weight != 0 {
		t.Errorf("online IO plan = %+v", o)
	}
}

func ioState(t *testing.T) *State { return rdtState(t, ioConfig()) }

// TestIOProtectionAtLevel places IO protection in the escalation order:
// with AtLevel "stalled", batch is throttled while pool 0 is at that level.
func TestIOProtectionAtLevel(t *testing.T) {
	cfg := ioConfig()
	cfg.Pools[2].Profile.IO.Protect.AtLevel = "stalled"
	cfg.Pools[2].Profile.IO.Protect.PSISome = 90
	st := rdtState(t, cfg)
	obs := ioObs(0)
	po := obs.Pools[PoolLatencyCritical]
	po.Pressure, po.PressureMeasured = PoolPressure{Memory: PSI{Some: 50}}, true
	obs.Pools[PoolLatencyCritical] = po
	p := Decide(obs, st, time.Unix(1, 0))
	if b := p.Pools[2].IO; !b.Throttled || !strings.Contains(b.Reason, "protection level stalled") {
		t.Fatalf("batch with pool 0 at level stalled: %+v", b)
	}
}

func TestIOProfileValidate(t *testing.T) {
	cfg := ioConfig()
	cfg.Pools[2].Profile.IO.Weight = 5000
	cfg.Pools[2].Profile.IO.Protect.ReleasePSISome = 50
	cfg.Pools[1].Profile.IO.Limits = []IODeviceLimit{{Device: ""}, {Device: "/dev/sda", ReadPercent: 150}}
	err := cfg.Validate()
	for _, want := range []string{"pools[2].profile.io.weight", "5000", "releasePSISome", "limits[0].device", "readPercent", "150"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to name %q", err, want)
		}
	}
}
