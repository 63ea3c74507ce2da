package rdt

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-nri/strata/rdt/rdttest"
)

func TestMonitoring(t *testing.T) {
	r := open(t, rdttest.AMDEPYC)
	if err := r.Apply(map[string]ClassConfig{"batch": {Schemata: Schemata{MB: {0: 64}}}}); err != nil {
		t.Fatal(err)
	}
	batch, _ := r.Class("batch")
	if _, err := batch.AddTasks(10, 11, 12); err != nil {
		t.Fatal(err)
	}
	c1, err := batch.CreateMonGroup("ctr-1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := batch.CreateMonGroup("ctr-1"); err != nil || again.Dir() != c1.Dir() {
		t.Fatalf("second create: %v %v", again, err)
	}
	if _, err := c1.AddTasks(11, 12); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(r.Root(), "strata-batch/mon_groups/ctr-1/tasks")); got != "11\n12\n" {
		t.Fatalf("mon group tasks %q", got)
	}
	if ctrl, mon, err := r.TaskGroup(12); err != nil || ctrl != "strata-batch" || mon != "ctr-1" {
		t.Fatalf("TaskGroup(12) = %q %q %v", ctrl, mon, err)
	}
	// The kernel's counters, on two of the 16 L3 domains.
	rdttest.SetMonData(t, c1.Dir(), 0, LLCOccupancy, "1048576")
	rdttest.SetMonData(t, c1.Dir(), 0, MBMTotalBytes, "5000000000")
	rdttest.SetMonData(t, c1.Dir(), 17, LLCOccupancy, "524288")
	rdttest.SetMonData(t, c1.Dir(), 17, MBMTotalBytes, "Unavailable")
	d, err := c1.MonData()
	if err != nil {
		t.Fatal(err)
	}
	sum := d.Sum()
	if sum.LLCOccupancy != 1572864 || sum.MBMTotalBytes != 5e9 || !slices.Equal(sum.Missing, []string{"mbm_total_bytes@17"}) {
		t.Fatalf("sum %+v", sum)
	}
	prev := sum
	rdttest.SetMonData(t, c1.Dir(), 0, MBMTotalBytes, "7000000000")
	d, _ = c1.MonData()
	if bw := d.Sum().Bandwidth(prev, 2*time.Second); bw != 1e9 {
		t.Fatalf("bandwidth %v, want 1e9 B/s", bw)
	}
	rdttest.SetMonData(t, c1.Dir(), 0, LLCOccupancy, "lots")
	if _, err := c1.MonData(); err == nil || !strings.Contains(err.Error(), "lots") {
		t.Fatalf("malformed counter: %v", err)
	}
	// The container goes: its RMID is released.
	if err := c1.Delete(); err != nil {
		t.Fatal(err)
	}
	if groups, _ := batch.MonGroups(); len(groups) != 0 {
		t.Fatalf("mon groups left: %v", groups)
	}
	if err := c1.Delete(); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

func TestRMIDBudget(t *testing.T) {
	m := rdttest.IntelL3MBA
	mon := *m.Mon
	mon.NumRMIDs = 4
	m.Mon = &mon
	r := open(t, m)
	// default group + one class + two monitoring groups = 4 RMIDs.
	if err := r.Apply(map[string]ClassConfig{"batch": {Schemata: Schemata{MB: {0: 50}}}}); err != nil {
		t.Fatal(err)
	}
	batch, _ := r.Class("batch")
	for _, name := range []string{"a", "b"} {
		if _, err := batch.CreateMonGroup(name); err != nil {
			t.Fatal(err)
		}
	}
	_, err := batch.CreateMonGroup("c")
	var be *BudgetError
	if !errors.As(err, &be) || be.Kind != "RMID" || be.InUse != 4 || !strings.Contains(err.Error(), `"batch/c"`) {
		t.Fatalf("got %v, want an RMID budget error for batch/c", err)
	}
	if _, err := os.Stat(filepath.Join(batch.Dir(), "mon_groups", "c")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("mon group c was created")
	}
	// A new class needs an RMID too.
	if err := r.Apply(map[string]ClassConfig{"web": {Schemata: Schemata{MB: {0: 50}}}}); !errors.Is(err, ErrBudget) {
		t.Fatalf("got %v, want ErrBudget", err)
	}
}

func TestMonitoringOnly(t *testing.T) {
	r := open(t, rdttest.MonitoringOnly)
	err := r.Apply(map[string]ClassConfig{"batch": {Schemata: Schemata{L3: {0: 1}}}})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "monitoring only") {
		t.Fatalf("got %v", err)
	}
	g, err := r.Default().CreateMonGroup("ctr-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.AddTasks(42); err != nil {
		t.Fatal(err)
	}
	rdttest.SetMonData(t, g.Dir(), 0, LLCOccupancy, "3145728")
	d, err := g.MonData()
	if err != nil || d[0].LLCOccupancy != 3145728 {
		t.Fatalf("mon data %v %v", d, err)
	}
	if ctrl, mon, _ := r.TaskGroup(42); ctrl != "" || mon != "ctr-1" {
		t.Fatalf("TaskGroup(42) = %q %q", ctrl, mon)
	}
	if err := r.Default().Delete(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("deleting the default group: %v", err)
	}
}
