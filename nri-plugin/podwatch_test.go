package nriplugin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/strata-nri/strata/cpuset/cpusettest"
	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/netqos"
)

// podAPI serves a node's pods: a list (the pods in pods) and watches,
// each fed the event lines sent on its channel until the channel closes.
type podAPI struct {
	t       *testing.T
	mu      sync.Mutex
	pods    []string // JSON pod objects the next list answers
	rv      string
	watches chan chan string
	queries []string
}

func podJSON(uid, rv string, ann map[string]string) string {
	var kv []string
	for k, v := range ann {
		kv = append(kv, fmt.Sprintf("%q: %q", k, v))
	}
	return fmt.Sprintf(`{"metadata": {"name": "p-%s", "namespace": "ns", "uid": %q, "resourceVersion": %q, "annotations": {%s}}}`,
		uid, uid, rv, strings.Join(kv, ", "))
}

func (a *podAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.queries = append(a.queries, r.URL.RawQuery)
	if r.URL.Path != "/api/v1/pods" || r.URL.Query().Get("fieldSelector") != "spec.nodeName=node1" || r.Header.Get("Authorization") != "Bearer tok" {
		a.mu.Unlock()
		http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
		return
	}
	if r.URL.Query().Get("watch") == "" {
		fmt.Fprintf(w, `{"metadata": {"resourceVersion": %q}, "items": [%s]}`, a.rv, strings.Join(a.pods, ","))
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	var events chan string
	select {
	case events = <-a.watches:
	case <-r.Context().Done():
		return
	}
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case line, ok := <-events:
			if !ok {
				return
			}
			fmt.Fprintln(w, line)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

type sinkEvent struct {
	uid string
	ann map[string]string
}

type recordingSink chan sinkEvent

func (s recordingSink) PodAnnotations(uid string, ann map[string]string) { s <- sinkEvent{uid, ann} }

func (s recordingSink) next(t *testing.T) sinkEvent {
	t.Helper()
	select {
	case e := <-s:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no annotation event after 5 s")
	}
	return sinkEvent{}
}

func (s recordingSink) none(t *testing.T) {
	t.Helper()
	select {
	case e := <-s:
		t.Fatalf("unexpected annotation event %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestPodWatcherFollowsBandwidthAnnotations(t *testing.T) {
	eg := netqos.EgressBandwidthAnnotation
	api := &podAPI{t: t, rv: "10", watches: make(chan chan string),
		pods: []string{podJSON("a", "8", map[string]string{eg: "10M", "other": "x"}), podJSON("b", "9", nil)}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := make(recordingSink, 16)
	w := &PodWatcher{Kube: &KubeClient{APIServer: srv.URL, TokenFile: tok, Client: srv.Client()}, Node: "node1", Sink: sink, Logger: quietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// The list passes every pod on, with only the followed keys.
	got := map[string]string{}
	for range 2 {
		e := sink.next(t)
		got[e.uid] = fmt.Sprint(e.ann)
	}
	if want := map[string]string{"a": "map[" + eg + ":10M]", "b": "map[]"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the list: %v, want %v", got, want)
	}

	events := make(chan string)
	api.watches <- events
	events <- `{"type": "MODIFIED", "object": ` + podJSON("b", "11", map[string]string{"other": "y"}) + `}`
	events <- `{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}`
	events <- `{"type": "MODIFIED", "object": ` + podJSON("a", "13", map[string]string{eg: "10M", "other": "z"}) + `}`
	sink.none(t) // neither touched a followed annotation
	events <- `{"type": "MODIFIED", "object": ` + podJSON("a", "14", map[string]string{eg: "5M"}) + `}`
	if e := sink.next(t); e.uid != "a" || e.ann[eg] != "5M" {
		t.Fatalf("annotate a: got %+v, want a with %s=5M", e, eg)
	}
	// A value that will not parse is passed on as it is: the net
	// dimension refuses it with the error (and keeps the old limit).
	events <- `{"type": "MODIFIED", "object": ` + podJSON("a", "15", map[string]string{eg: "10X"}) + `}`
	if e := sink.next(t); e.ann[eg] != "10X" {
		t.Fatalf("got %+v, want the malformed value passed on", e)
	}

	// The API server ends the stream: the next watch resumes at 15.
	close(events)
	events = make(chan string)
	api.watches <- events
	api.mu.Lock()
	last := api.queries[len(api.queries)-1]
	// Meanwhile b was deleted and a re-annotated; the watch is too old.
	api.pods = []string{podJSON("a", "20", map[string]string{eg: "2M"})}
	api.rv = "21"
	api.mu.Unlock()
	if !strings.Contains(last, "resourceVersion=15") {
		t.Errorf("re-opened watch %q does not resume at resourceVersion 15", last)
	}
	events <- `{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}`
	got = map[string]string{}
	for range 2 {
		e := sink.next(t)
		got[e.uid] = fmt.Sprint(e.ann)
		if e.ann == nil {
			got[e.uid] = "gone"
		}
	}
	if want := map[string]string{"a": "map[" + eg + ":2M]", "b": "gone"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the relist: %v, want %v", got, want)
	}
	events = make(chan string)
	api.watches <- events
	events <- `{"type": "DELETED", "object": ` + podJSON("a", "22", map[string]string{eg: "2M"}) + `}`
	if e := sink.next(t); e.uid != "a" || e.ann != nil {
		t.Fatalf("delete a: got %+v, want a gone (nil)", e)
	}
	close(events)
}

func TestPodWatcherBounded(t *testing.T) {
	sink := make(recordingSink, 16)
	w := &PodWatcher{Sink: sink, MaxPods: 2, Logger: quietLogger()}
	w.init()
	long := strings.Repeat("9", 1001)
	for i, uid := range []string{"a", "b", "c"} {
		var p watchPod
		p.Metadata.UID = uid
		p.Metadata.Annotations = map[string]string{netqos.IngressBandwidthAnnotation: long[:1+i*500]}
		w.observe(&p)
	}
	if len(w.known) != 2 {
		t.Fatalf("following %d pods, want MaxPods 2", len(w.known))
	}
	sink.next(t)
	if e := sink.next(t); len(e.ann[netqos.IngressBandwidthAnnotation]) != maxAnnotationValue {
		t.Fatalf("a 501-byte value passed on as %d bytes, want it cut to %d", len(e.ann[netqos.IngressBandwidthAnnotation]), maxAnnotationValue)
	}
	sink.none(t)
}

// Through the plugin: the API server's bandwidth annotations override the
// runtime's (the values at sandbox creation) and reach the dimensions as
// ContainerUpdated; a later runtime update still carrying the creation's
// value does not undo them, and a key removed on the API server is
// removed for the dimensions too.
func TestPodAnnotationsFromTheAPIServerReachDimensions(t *testing.T) {
	node := newFakeNode(t, cpusettest.Intel2S20C2T)
	rt := newRuntime(t)
	upd := &updatingRecorder{recorder{name: "upd"}}
	h := startPlugin(t, node, rt, trusting(), func(o *Options) { o.Controllers = []Controller{upd} })
	eg := netqos.EgressBandwidthAnnotation
	p := pod("prod", "web", map[string]string{"strata.io/pool": isolation.PoolOnline, eg: "20M"})
	p.Ips = []string{"10.0.0.9"}
	c := container(p, "server", 1000, 0)
	rt.startRunning(t, node, p, c)
	ctx := context.Background()
	waitFor(t, 2*time.Second, "admitted", func() bool { return len(upd.events()) == 1 })
	h.plugin.PodAnnotations("someone-else", map[string]string{eg: "1M"})
	h.plugin.PodAnnotations(p.Uid, map[string]string{eg: "20M"}) // as created: no change
	h.plugin.PodAnnotations(p.Uid, map[string]string{eg: "5M"})
	waitFor(t, 2*time.Second, "the API server's value delivered", func() bool { return len(upd.events()) == 2 })
	want := fmt.Sprintf(`update %s online->online egress "20M"->"5M" ips [10.0.0.9]->[10.0.0.9]`, c.Id)
	if got := upd.events(); got[1] != want {
		t.Fatalf("after the API server's change: %q, want %q", got[1], want)
	}
	// The runtime still reports the creation's 20M on an update.
	res := &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(1024), Period: api.UInt64(100000)}}
	if _, err := rt.r.UpdateContainer(ctx, &api.UpdateContainerRequest{Pod: p, Container: c, LinuxResources: res}); err != nil {
		t.Fatal(err)
	}
	h.plugin.PodAnnotations(p.Uid, map[string]string{})
	waitFor(t, 2*time.Second, "the removal delivered", func() bool { return len(upd.events()) == 3 })
	want = fmt.Sprintf(`update %s online->online egress "5M"->"" ips [10.0.0.9]->[10.0.0.9]`, c.Id)
	if got := upd.events(); got[2] != want {
		t.Fatalf("after the API server removed the annotation: %q (all %q), want %q", got[2], got, want)
	}
}
