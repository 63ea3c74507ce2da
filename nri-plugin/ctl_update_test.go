package nriplugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/cgroup/cgrouptest"
	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
)

// recorder is a Controller that writes down the membership hooks it gets;
// with updates set it also implements MemberUpdater.
type recorder struct {
	name string
	mu   sync.Mutex
	log  []string
}

func (r *recorder) add(format string, args ...any) error {
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	return nil
}
func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}
func (r *recorder) Name() string                               { return r.name }
func (r *recorder) Start(context.Context, ControllerEnv) error { return nil }
func (r *recorder) Stop()                                      {}
func (r *recorder) ContainerAdmitted(m Member) error           { return r.add("admit %s %s", m.ID, m.Pool) }
func (r *recorder) ContainerRemoved(m Member) error            { return r.add("remove %s", m.ID) }
func (r *recorder) Observe(*isolation.Observations) error      { return nil }
func (r *recorder) ApplyPools(*isolation.Plan) error           { return nil }
func (r *recorder) Status() ControllerStatus                   { return ControllerStatus{} }
func (r *recorder) Collectors() []prometheus.Collector         { return nil }

type updatingRecorder struct{ recorder }

func (r *updatingRecorder) ContainerUpdated(old, m Member) error {
	return r.add("update %s %s->%s egress %q->%q ips %v->%v", m.ID, old.Pool, m.Pool,
		old.Annotations["kubernetes.io/egress-bandwidth"], m.Annotations["kubernetes.io/egress-bandwidth"], old.PodIPs, m.PodIPs)
}

// The registry delivers a running member's change once, in place to a
// MemberUpdater, as removal and admission of a pool change to the others,
// and not at all when nothing changed; a Synchronize that finds a member
// changed updates it too.
func TestControllersDeliverMemberUpdates(t *testing.T) {
	plain, upd := &recorder{name: "plain"}, &updatingRecorder{recorder{name: "upd"}}
	r := newControllers(slog.New(slog.NewTextHandler(io.Discard, nil)), []Controller{plain, upd})
	r.start(context.Background(), ControllerEnv{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, prometheus.NewRegistry())
	m := Member{ID: "c1", Pool: "batch", Pod: "ns/p", PodIPs: []string{"10.0.0.2"}, Annotations: map[string]string{"a": "1"}}
	r.admitted(m)
	r.flush()
	r.admitted(m) // the same again: nothing
	r.flush()
	m2 := m
	m2.Annotations = map[string]string{"a": "1", "kubernetes.io/egress-bandwidth": "5M"}
	r.admitted(m2)
	r.flush()
	m3 := m2
	m3.Pool = "online"
	r.admitted(m3)
	r.flush()
	m4 := m3
	m4.PodIPs = []string{"10.0.0.2", "fd00::2"}
	r.resync([]Member{m4})
	r.flush()
	r.removed("c1")
	r.flush()
	wantPlain := []string{"admit c1 batch", "remove c1", "admit c1 online", "remove c1"}
	wantUpd := []string{"admit c1 batch",
		`update c1 batch->batch egress ""->"5M" ips [10.0.0.2]->[10.0.0.2]`,
		`update c1 batch->online egress "5M"->"5M" ips [10.0.0.2]->[10.0.0.2]`,
		`update c1 online->online egress "5M"->"5M" ips [10.0.0.2]->[10.0.0.2 fd00::2]`,
		"remove c1"}
	if got := plain.events(); !slices.Equal(got, wantPlain) {
		t.Errorf("controller without MemberUpdater got\n%q\nwant\n%q", got, wantPlain)
	}
	if got := upd.events(); !slices.Equal(got, wantUpd) {
		t.Errorf("MemberUpdater got\n%q\nwant\n%q", got, wantUpd)
	}
}

// Through the plugin: an update whose pod carries new annotations reaches
// the dimensions as ContainerUpdated; one that changes nothing does not,
// nor does an in-place resize within the member's pool.
func TestUpdateContainerReachesDimensions(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	upd := &updatingRecorder{recorder{name: "upd"}}
	startPlugin(t, node, rt, trusting(), func(o *Options) { o.Controllers = []Controller{upd} })
	p := pod("prod", "web", map[string]string{"strata.io/pool": isolation.PoolLatencyCritical})
	p.Ips = []string{"10.0.0.9"}
	c := container(p, "server", 2000, 2000)
	rt.startRunning(t, node, p, c)
	ctx := context.Background()
	waitFor(t, 2*time.Second, "admitted", func() bool { return len(upd.events()) == 1 })
	update := func(milli int64) {
		t.Helper()
		res := &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(uint64(milli * 1024 / 1000)), Quota: api.Int64(milli * 100), Period: api.UInt64(100000)}}
		if _, err := rt.r.UpdateContainer(ctx, &api.UpdateContainerRequest{Pod: p, Container: c, LinuxResources: res}); err != nil {
			t.Fatal(err)
		}
		c.Linux.Resources = res
	}
	update(2000) // nothing changed
	p.Annotations = map[string]string{"strata.io/pool": isolation.PoolLatencyCritical, "kubernetes.io/egress-bandwidth": "20M"}
	update(2000)
	waitFor(t, 2*time.Second, "the annotation change delivered", func() bool { return len(upd.events()) == 2 })
	want := fmt.Sprintf(`update %s %s->%s egress ""->"20M" ips [10.0.0.9]->[10.0.0.9]`, c.Id, isolation.PoolLatencyCritical, isolation.PoolLatencyCritical)
	if got := upd.events(); got[1] != want {
		t.Errorf("after the annotation change: %q, want %q", got, want)
	}
	update(4000) // resized within its pool: the dimensions keep it as it is
	time.Sleep(100 * time.Millisecond)
	if got := upd.events(); len(got) != 2 {
		t.Errorf("after a resize within the pool: %q, want no further event", got)
	}
}

// The pod's cgroup is the container's parent when the kubelet named it
// after the pod's UID, with either cgroup driver; otherwise none.
func TestPodCgroup(t *testing.T) {
	tree, err := cgrouptest.New(t.TempDir(), cgroup.V1, "0-1", "0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tree.Hierarchy()
	if err != nil {
		t.Fatal(err)
	}
	const uid = "5c1e-9f2a"
	for _, c := range []struct{ path, uid, want string }{
		{"/kubepods/burstable/pod" + uid + "/ctr1", uid, "/kubepods/burstable/pod" + uid},
		{"/kubepods/pod" + uid + "/ctr1", uid, "/kubepods/pod" + uid},
		{"kubepods-burstable-pod5c1e_9f2a.slice:cri-containerd:ctr1", uid, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5c1e_9f2a.slice"},
		{"/kubepods/burstable/pod" + uid + "/ctr1", "other-uid", ""},
		{"/strata/ctr1", uid, ""},
		{"/ctr1", uid, ""},
		{"/kubepods/pod" + uid + "/ctr1", "", ""},
	} {
		cg, err := h.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if pc := podCgroup(Member{Cgroup: cg, PodUID: c.uid}); pc != nil {
			got = pc.Path()
		}
		if got != c.want {
			t.Errorf("podCgroup(%s, uid %q) = %q, want %q", c.path, c.uid, got, c.want)
		}
	}
}
