package nriplugin

import (
	"testing"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// TestQueuedUpdatesSendTheLatestRecord: batches queued behind a slow one
// are folded into one change per container carrying what its record holds
// when the updater sends, never an older plan's value; containers that
// left are dropped; drift repair sees the members as pending until the
// batch is done.
func TestQueuedUpdatesSendTheLatestRecord(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	p, err := New(Options{Config: trusting(), SysfsRoot: node.sysfs, Cgroups: node.h, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p.ctrs["a"] = &member{id: "a", pool: isolation.PoolBatch, cpus: cpuset.New(4, 5), settings: isolation.Settings{CPUShares: 2, CPUIdle: true}}
	p.ctrs["b"] = &member{id: "b", pool: isolation.PoolOnline, cpus: cpuset.New(2, 3)}
	// Three plans' changes, oldest first; "gone" left meanwhile.
	p.enqueue([]isolation.ContainerChange{{ID: "a", CPUs: cpuset.New(0), Fields: isolation.FieldCPUs, Reason: "old"}})
	p.enqueue([]isolation.ContainerChange{{ID: "b", CPUs: cpuset.New(1), Fields: isolation.FieldCPUs},
		{ID: "gone", CPUs: cpuset.New(1), Fields: isolation.FieldCPUs}})
	p.enqueue([]isolation.ContainerChange{{ID: "a", CPUs: cpuset.New(1), Fields: isolation.FieldCPUShares}})
	for _, id := range []string{"a", "b", "gone"} {
		if !p.pending.has(id) {
			t.Errorf("%s: queued but not pending", id)
		}
	}
	queued := p.drainUpdates(<-p.updates)
	if len(queued) != 4 {
		t.Fatalf("drained %d changes, want all 4 queued", len(queued))
	}
	got := p.current(queued)
	if len(got) != 2 {
		t.Fatalf("folded into %d changes, want one for each of a and b: %+v", len(got), got)
	}
	for _, ch := range got {
		m := p.ctrs[ch.ID]
		if !ch.CPUs.Equals(m.cpus) || ch.Settings != m.settings {
			t.Errorf("%s: sends cpus %s settings %+v, want the record's %s %+v", ch.ID, ch.CPUs, ch.Settings, m.cpus, m.settings)
		}
		if ch.ID == "a" && ch.Fields != isolation.FieldCPUs|isolation.FieldCPUShares {
			t.Errorf("a: fields %v, want both queued changes' fields", ch.Fields)
		}
	}
	p.pending.done(queued)
	for _, id := range []string{"a", "b", "gone"} {
		if p.pending.has(id) {
			t.Errorf("%s: still pending after the batch was sent", id)
		}
	}
}
