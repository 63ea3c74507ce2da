package isolation

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
)

// rdtConfig: pool 0 half the cache exclusive, online 80 % shared, batch six
// ways and 80 % bandwidth, throttled down to 2 ways and 20 %.
func rdtConfig() *Config {
	cfg := DefaultConfig()
	cfg.Protection.Levels = []ProtectionLevel{{Name: "stalled", When: Thresholds{MemorySome: 10}, Actions: []ActionKind{ActionRelease}}}
	cfg.Protection.Cooldown = Duration{2 * time.Second}
	for i := range cfg.Pools {
		switch cfg.Pools[i].Name {
		case PoolLatencyCritical:
			cfg.Pools[i].Profile.RDT = RDTProfile{L3Percent: 50}
		case PoolOnline:
			cfg.Pools[i].Profile.RDT = RDTProfile{L3Percent: 80, MBPercent: 100}
		case PoolBatch:
			cfg.Pools[i].Profile.RDT = RDTProfile{L3Ways: 6, MBPercent: 80,
				Throttle: &RDTThrottle{MinL3Ways: 2, MinMBPercent: 20, StepMBPercent: 20, RecoverPeriods: 3}}
		}
	}
	return cfg
}

func rdtState(t *testing.T, cfg *Config) *State {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	topo, err := strcpuset.Discover(cpusettest.Root(t, cpusettest.Intel2S20C2T))
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// rdtObs: an 11-way host with MBA; pool 0's memory PSI at psi.
func rdtObs(psi float64) Observations {
	host := RDTObservation{Ways: 11, MinWays: 1, Bandwidth: true}
	return Observations{Containers: map[string]ContainerUsage{}, Pools: map[string]PoolObservation{
		PoolLatencyCritical: {Pressure: PoolPressure{Memory: PSI{Some: psi}}, PressureMeasured: true, RDT: host},
		PoolOnline:          {RDT: host},
		PoolBatch:           {RDT: host},
	}}
}

func TestRDTLayout(t *testing.T) {
	st := rdtState(t, rdtConfig())
	plan := Decide(rdtObs(0), st, time.Unix(0, 0))
	got := map[string]RDTPlan{}
	for _, pp := range plan.Pools {
		got[pp.Name] = pp.RDT
	}
	// 50 % of 11 ways rounds to 6: ways 5-10 exclusive; the shared pools
	// share ways 0-4 from the bottom.
	for name, want := range map[string]RDTPlan{
		PoolLatencyCritical: {Enabled: true, Class: PoolLatencyCritical, FirstWay: 5, Ways: 6, MaxWays: 6, Exclusive: true},
		PoolOnline:          {Enabled: true, Class: PoolOnline, Ways: 5, MaxWays: 5, MBPercent: 100, MaxMBPercent: 100},
		PoolBatch:           {Enabled: true, Class: PoolBatch, Ways: 5, MaxWays: 5, MBPercent: 80, MaxMBPercent: 80},
	} {
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("%s: %+v, want %+v", name, got[name], want)
		}
	}
	// A host without RDT: classes but nothing to allocate.
	plan = Decide(Observations{}, st, time.Unix(0, 0))
	if b := plan.Pools[2].RDT; !b.Enabled || b.Ways != 0 || b.MBPercent != 0 {
		t.Errorf("no RDT: %+v", b)
	}
}

// Batch shrinks one step per period while pool 0 is at a protection
// level, never below its floors, and grows back one step per three calm
// periods once pool 0's level has cooled down.
func TestRDTThrottleFollowsPressure(t *testing.T) {
	st := rdtState(t, rdtConfig())
	now := time.Unix(1000, 0)
	type step struct{ ways, mb int }
	var got []step
	for i := 0; i < 30; i++ {
		psi := 0.0
		if i >= 3 && i < 10 {
			psi = 40
		}
		obs := rdtObs(psi)
		plan := Decide(obs, st, now)
		again := Decide(obs, st, now)
		if !reflect.DeepEqual(plan.Pools[2].RDT, again.Pools[2].RDT) {
			t.Fatalf("period %d: Decide is not pure: %+v then %+v", i, plan.Pools[2].RDT, again.Pools[2].RDT)
		}
		if err := st.Commit(&plan); err != nil {
			t.Fatal(err)
		}
		b := plan.Pools[2].RDT
		got = append(got, step{b.Ways, b.MBPercent})
		if b.Ways < 2 || b.MBPercent < 20 || b.Ways > 5 || b.MBPercent > 80 {
			t.Fatalf("period %d: batch at %d ways %d%%, outside [2, 5] ways [20, 80]%%", i, b.Ways, b.MBPercent)
		}
		if i == 3 && (!b.Pressured || !strings.Contains(b.Reason, "level stalled")) {
			t.Errorf("period 3: %+v, want pressured by pool 0's level", b)
		}
		now = now.Add(time.Second)
	}
	want := []step{
		{5, 80}, {5, 80}, {5, 80}, // calm
		{4, 60}, {3, 40}, {2, 20}, {2, 20}, {2, 20}, {2, 20}, {2, 20}, // pool 0 stalled (periods 3-9)
		{2, 20},                   // period 10: level held (cooldown 2 s since period 9)
		{2, 20}, {2, 20}, {3, 40}, // periods 11-13 calm: one step back
		{3, 40}, {3, 40}, {4, 60},
		{4, 60}, {4, 60}, {5, 80},
		{5, 80}, {5, 80}, {5, 80}, {5, 80}, {5, 80}, {5, 80}, {5, 80}, {5, 80}, {5, 80}, {5, 80},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch (ways, MB%%) per period:\n got %v\nwant %v", got, want)
	}
}

func TestRDTThrottleOnMeasuredBandwidth(t *testing.T) {
	cfg := rdtConfig()
	cfg.Pools[2].Profile.RDT.Throttle.BandwidthShare = 60
	st := rdtState(t, cfg)
	obs := rdtObs(0)
	for name, bw := range map[string]float64{PoolLatencyCritical: 1e9, PoolOnline: 1e9, PoolBatch: 8e9} {
		o := obs.Pools[name]
		o.RDT.Measured, o.RDT.BandwidthBytes = true, bw
		obs.Pools[name] = o
	}
	b := Decide(obs, st, time.Unix(0, 0)).Pools[2].RDT
	if !b.Pressured || b.Ways != 4 || b.MBPercent != 60 || !strings.Contains(b.Reason, "memory bandwidth 80%") {
		t.Fatalf("batch %+v, want shrunk by its 80%% bandwidth share", b)
	}
	o := obs.Pools[PoolBatch]
	o.RDT.BandwidthBytes = 2e9 // 50 %: below the share
	obs.Pools[PoolBatch] = o
	if b := Decide(obs, st, time.Unix(0, 0)).Pools[2].RDT; b.Pressured {
		t.Fatalf("batch %+v pressured at a 50%% share", b)
	}
}

func TestRDTProfileValidation(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		prof  RDTProfile
		field string
	}{
		{RDTProfile{L3Percent: 120}, "rdt.l3Percent"},
		{RDTProfile{L3Ways: 65}, "rdt.l3Ways"},
		{RDTProfile{L3Ways: 4, L3Percent: 50}, "rdt.l3Ways"},
		{RDTProfile{MBPercent: -1}, "rdt.mbPercent"},
		{RDTProfile{MBPercent: 50, Exclusive: &yes}, "rdt.exclusive"},
		{RDTProfile{Throttle: &RDTThrottle{}}, "rdt.throttle"},
		{RDTProfile{L3Ways: 3, Throttle: &RDTThrottle{MinL3Ways: 4}}, "rdt.throttle.minL3Ways"},
		{RDTProfile{MBPercent: 30, Throttle: &RDTThrottle{MinMBPercent: 40}}, "rdt.throttle.minMBPercent"},
		{RDTProfile{MBPercent: 30, Throttle: &RDTThrottle{BandwidthShare: 101}}, "rdt.throttle.bandwidthShare"},
		{RDTProfile{MBPercent: 30, Throttle: &RDTThrottle{RecoverPeriods: -2}}, "rdt.throttle.recoverPeriods"},
	} {
		cfg := DefaultConfig()
		cfg.Pools[2].Profile.RDT = tc.prof
		err := cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.HasSuffix(ce.Field, tc.field) || !strings.HasPrefix(ce.Field, "pools[2].profile.") {
			t.Errorf("%+v: got %v, want an error on pools[2].profile.%s", tc.prof, err, tc.field)
		}
	}
}
