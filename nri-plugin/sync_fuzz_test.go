package nriplugin

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/containerd/nri/pkg/api"

	strcpuset "github.com/strata-nri/strata/cpuset"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// FuzzRecorded reads Strata's record annotations written by the fuzzer:
// no panic, and a record it returns names only CPU ids a machine can have.
func FuzzRecorded(f *testing.F) {
	for _, s := range []string{"", "0-3", "0-4000000000", "-1", "1,1,1", "4,44", "x"} {
		f.Add("latency-critical", s)
	}
	f.Fuzz(func(t *testing.T, pool, excl string) {
		c := &api.Container{Annotations: map[string]string{AnnotationAssignedPool: pool, AnnotationExclusiveCPUs: excl}}
		got, cpus, ok := recorded(c)
		if !ok {
			return
		}
		if got != pool {
			t.Fatalf("pool %q read back as %q", pool, got)
		}
		for _, id := range cpus.UnsortedList() {
			if id < 0 || id >= strcpuset.MaxCPUs {
				t.Fatalf("CPU id %d from %q", id, excl)
			}
		}
	})
}

// FuzzSynchronize hands the plugin, as at a restart, containers whose
// record annotations, namespace, cpuset and request the fuzzer chose, next
// to a legitimately recorded pool-0 member. Whatever the record says, no
// container outside pool 0's allow-list (namespace prod) ends in pool 0,
// and exclusive CPUs go only to pool 0 members whose request is that many
// whole CPUs.
func FuzzSynchronize(f *testing.F) {
	f.Add("dev", "latency-critical", "2,42", "2,42", int64(2000))
	f.Add("prod", "latency-critical", "0-4000000000", "1-79", int64(2000))
	f.Add("prod", "online", "5", "5", int64(1000))
	f.Add("dev", "batch", "", "", int64(0))
	f.Add("prod", "latency-critical", "4,44", "4,44", int64(2000)) // the legitimate member's CPUs
	node := newFakeNode(f, cpusettest.Intel2S20C2T)
	p, err := New(Options{Config: trusting(), SysfsRoot: node.sysfs, ProcRoot: filepath.Join(node.tree.Dir, "proc"),
		Cgroups: node.h, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	legitPod := &api.PodSandbox{Id: "legit-pod", Name: "legit", Namespace: "prod", Uid: "legit"}
	f.Fuzz(func(t *testing.T, ns, pool, excl, cpus string, milli int64) {
		legit := container(legitPod, "c", 2000, 2000)
		legit.Id = "legit"
		legit.State = api.ContainerState_CONTAINER_RUNNING
		legit.Annotations = map[string]string{AnnotationAssignedPool: isolation.PoolLatencyCritical, AnnotationExclusiveCPUs: "4,44"}
		legit.Linux.Resources.Cpu.Cpus = "4,44"
		fp := &api.PodSandbox{Id: "forged-pod", Name: "forged", Namespace: ns, Uid: "forged"}
		milli = min(max(milli, 0), 1<<20)
		forged := container(fp, "c", milli, milli)
		forged.Id = "forged"
		forged.State = api.ContainerState_CONTAINER_RUNNING
		forged.Annotations = map[string]string{AnnotationAssignedPool: pool, AnnotationExclusiveCPUs: excl}
		forged.Linux.Resources.Cpu.Cpus = cpus
		// The runtime lists containers in no particular order.
		ctrs := []*api.Container{forged, legit}
		if milli%2 == 0 {
			ctrs = []*api.Container{legit, forged}
		}
		if _, err := p.Synchronize(context.Background(), []*api.PodSandbox{legitPod, fp}, ctrs); err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.ctrs {
			if m.pool == isolation.PoolLatencyCritical && m.namespace != "prod" {
				t.Fatalf("container %s of namespace %q in pool 0 (record %q %q)", m.id, m.namespace, pool, excl)
			}
			if m.exclusive {
				want := int64(2000)
				if m.id == "forged" {
					want = milli
				}
				if m.pool != isolation.PoolLatencyCritical || int64(m.cpus.Size())*1000 != want {
					t.Fatalf("container %s: exclusive %s in pool %s for %d millicores", m.id, m.cpus, m.pool, want)
				}
			}
		}
		// Listed first, the legitimate member keeps its pool and CPUs
		// whatever the forgery claims (listed later, a well-formed
		// forgery naming the same CPUs it runs on may win them; the
		// legitimate member is then admitted afresh).
		if m := p.ctrs["legit"]; ctrs[0] == legit && (m == nil || m.pool != isolation.PoolLatencyCritical || m.cpus.String() != "4,44") {
			t.Fatalf("legitimate member listed first lost its place: %+v", m)
		}
	})
}
