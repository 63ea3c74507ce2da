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

// ioPriorityConfig: batch's IO protection switches its members to the idle
// IO class, with no bandwidth limit, engaged at IO PSI some ≥ 20 % of a
// higher pool and lifted after 3 periods below 10 %.
func ioPriorityConfig(profilePriority string) *Config {
	cfg := ioConfig()
	cfg.Pools[2].Profile.IO = IOProfile{IOPriority: profilePriority,
		Protect: &IOProtect{PSISome: 20, ReleasePSISome: 10, CalmPeriods: 3, IOPriority: "idle"}}
	return cfg
}

func ioAdmit(t *testing.T, st *State, id, pool string) Admission {
	t.Helper()
	a, err := st.Admit(ContainerRequest{ID: id, PodName: "pod-" + id, Namespace: "ns", CPURequestMilli: 500,
		Annotations: map[string]string{"strata.io/pool": pool}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ioPriorityChanges: the IO priority each member's change of p carries.
func ioPriorityChanges(p *Plan) map[string]string {
	out := map[string]string{}
	for _, ch := range p.Changes {
		if ch.Fields&FieldIOPriority != 0 {
			out[ch.ID] = ch.Settings.IOPriority + " / " + ch.Reason
		}
	}
	return out
}

// TestIOProtectionSwitchesIOPriority: the protection's ioPriority reaches
// batch's members as a change of their IO priority class in the period
// after a higher pool's IO pressure crosses the threshold — once, not
// every period — and not the online members; lifting (after the calm
// periods, the same hysteresis as the limits) changes them back to class
// none, since the profile sets none, or to the profile's class.
func TestIOProtectionSwitchesIOPriority(t *testing.T) {
	for _, tc := range []struct{ profile, base string }{{"", IOPriorityNone}, {"best-effort", "best-effort"}} {
		t.Run("profile "+tc.base, func(t *testing.T) {
			st := rdtState(t, ioPriorityConfig(tc.profile))
			if a := ioAdmit(t, st, "scan", PoolBatch); a.Settings.IOPriority != tc.base {
				t.Fatalf("batch member admitted with IO priority %q, want %q", a.Settings.IOPriority, tc.base)
			}
			if a := ioAdmit(t, st, "web", PoolOnline); a.Settings.IOPriority != "" {
				t.Fatalf("online member admitted with IO priority %q, want the runtime's", a.Settings.IOPriority)
			}
			now := time.Unix(0, 0)
			step := func(psi float64) (IOPlan, map[string]string) {
				now = now.Add(time.Second)
				p := Decide(ioObs(psi), st, now)
				if err := st.Commit(&p); err != nil {
					t.Fatal(err)
				}
				return p.Pools[2].IO, ioPriorityChanges(&p)
			}
			if b, ch := step(0); b.Throttled || b.IOPriority != tc.profile || len(ch) != 0 {
				t.Fatalf("calm: batch %+v, IO priority changes %v; want none", b, ch)
			}
			b, ch := step(35)
			if !b.Throttled || b.IOPriority != "idle" || len(b.Limits) != 0 {
				t.Fatalf("under pressure: batch %+v; want throttled, IO priority idle, no limit", b)
			}
			if len(ch) != 1 || !strings.HasPrefix(ch["scan"], "idle / IO protection: IO priority idle (throttled: pool online IO PSI some 35.0%") {
				t.Fatalf("under pressure: IO priority changes %v; want scan to idle, with the reason", ch)
			}
			for i, psi := range []float64{35, 15, 5, 5} { // held, held, calm 1, calm 2
				if b, ch = step(psi); !b.Throttled || len(ch) != 0 {
					t.Fatalf("period %d (PSI %v): batch %+v, changes %v; want it held idle, no change", i, psi, b, ch)
				}
			}
			b, ch = step(5) // calm 3 of 3: lifted
			if b.Throttled || b.IOPriority != tc.profile {
				t.Fatalf("after 3 calm periods: batch %+v; want lifted", b)
			}
			if want := tc.base + " / IO protection lifted: IO priority " + tc.base; ch["scan"] != want || len(ch) != 1 {
				t.Fatalf("lifted: IO priority changes %v; want scan %q", ch, want)
			}
			if _, ch = step(0); len(ch) != 0 {
				t.Fatalf("after the lift: changes %v; want none", ch)
			}
		})
	}
}

// A member admitted while the protection is engaged starts with the
// pool's base class (admission has no plan) and is switched the next
// period.
func TestIOProtectionIOPriorityLateMember(t *testing.T) {
	st := rdtState(t, ioPriorityConfig(""))
	p := Decide(ioObs(50), st, time.Unix(1, 0))
	if err := st.Commit(&p); err != nil {
		t.Fatal(err)
	}
	ioAdmit(t, st, "late", PoolBatch)
	p = Decide(ioObs(50), st, time.Unix(2, 0))
	if ch := ioPriorityChanges(&p); len(ch) != 1 || !strings.HasPrefix(ch["late"], "idle / ") {
		t.Fatalf("changes %v; want the late member switched to idle", ch)
	}
}

func TestIOProtectValidate(t *testing.T) {
	for _, tc := range []struct {
		protect IOProtect
		want    []string // "" : valid
	}{
		{IOProtect{IOPriority: "idle"}, nil},
		{IOProtect{IOPriority: "best-effort", Device: "/dev/vda"}, nil},
		{IOProtect{}, []string{"pools[2].profile.io.protect.device", "or set ioPriority"}},
		{IOProtect{IOPriority: "idle", ReadPercent: 20}, []string{"pools[2].profile.io.protect.device", "the limits apply to"}},
		{IOProtect{IOPriority: "lowest", Device: "/dev/vda"}, []string{"pools[2].profile.io.protect.ioPriority: lowest", "no switch", `"idle" or "best-effort"`}},
	} {
		cfg := ioConfig()
		cfg.Pools[2].Profile.IO.Protect = &tc.protect
		err := cfg.Validate()
		if len(tc.want) == 0 && err != nil {
			t.Errorf("protect %+v: %v; want valid", tc.protect, err)
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("protect %+v: Validate %v; want it to name %s", tc.protect, err, w)
			}
		}
	}
}
