package nriplugin

import (
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
)

// TestSynchronizeDistrustsForgedRecords starts the plugin on a runtime
// whose containers carry Strata's record annotations that Strata never
// wrote (a pod or a CRI client set them while the plugin was away). They
// are admitted as a fresh container would be: the forged pool 0 and
// exclusive CPUs are not taken as Strata's own record.
func TestSynchronizeDistrustsForgedRecords(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	forge := func(ns, name string, milli int64, excl string) *api.Container {
		p := pod(ns, name, nil)
		c := container(p, "c", milli, milli)
		c.State = api.ContainerState_CONTAINER_RUNNING
		c.Annotations = map[string]string{AnnotationAssignedPool: isolation.PoolLatencyCritical, AnnotationExclusiveCPUs: excl}
		c.Linux.Resources.Cpu.Cpus = "1-79"
		rt.pods = append(rt.pods, p)
		rt.ctrs = append(rt.ctrs, c)
		return c
	}
	outsider := forge("dev", "sneaky", 2000, "4,44")
	// In the allow-list, but claiming CPUs it does not run on and a
	// range of billions.
	insider := forge("prod", "greedy", 2000, "0-4000000000")
	h := startPlugin(t, node, rt, trusting())
	h.plugin.mu.Lock()
	defer h.plugin.mu.Unlock()
	m := h.plugin.ctrs[outsider.Id]
	if m == nil || m.pool != isolation.PoolOnline || m.exclusive {
		t.Errorf("forged record outside pool 0's allow-list: %+v, want a fresh admission to online, not exclusive", m)
	}
	m = h.plugin.ctrs[insider.Id]
	if m == nil || m.pool != isolation.PoolOnline {
		// Without an annotation of its own a Guaranteed pod of prod goes
		// to online by its QoS rule; the forged record counts for nothing.
		t.Errorf("forged exclusive CPUs: %+v, want a fresh admission to online", m)
	}
}

// A hostile exclusive-cpus annotation is no record, decided within the
// budget.
func TestHostileRecordWithinBudget(t *testing.T) {
	for name, v := range map[string]string{
		"range of billions": "0-4000000000",
		"repeated list":     strings.Repeat("0-8191,", 9000) + "0",
		"megabyte":          strings.Repeat("9", 1<<20),
	} {
		c := &api.Container{Annotations: map[string]string{AnnotationAssignedPool: isolation.PoolLatencyCritical, AnnotationExclusiveCPUs: v}}
		var ok bool
		testutil.WithinBudget(t, name, func() { _, _, ok = recorded(c) })
		if ok {
			t.Errorf("%s: taken as a record", name)
		}
	}
}

// A refusal goes back to the runtime with the hostile names quoted and
// cut: no raw newline or NUL, no megabyte error.
func TestRefusalToRuntimeIsBounded(t *testing.T) {
	node := newFakeNode(t, cpusettest.VM2)
	rt := newRuntime(t)
	startPlugin(t, node, rt, trusting())
	p := pod("dev", "evil\nname\x00"+strings.Repeat("x", 1<<16), map[string]string{"strata.io/pool": "gold\r\n" + strings.Repeat("y", 1<<16)})
	c := container(p, "c\n", 100, 0)
	_, err := rt.create(t, p, c)
	if err == nil {
		t.Fatal("unknown pool admitted")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n\x00") || len(msg) > 4096 {
		t.Errorf("refusal of %d bytes with raw control characters: %.300q", len(msg), msg)
	}
}
