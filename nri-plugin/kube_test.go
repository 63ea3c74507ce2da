package nriplugin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-nri/strata/isolation"
)

// fakeAPI is an API server stand-in for the unit tests; the Kubernetes
// tier (test/k8s) runs the same code against a real one.
type fakeAPI struct {
	mu       sync.Mutex
	priority map[string]int32  // pod → spec.priority
	blocked  map[string]bool   // pod → a PDB refuses its eviction
	evicted  []string          // pods evicted, in order
	patches  []map[string]any  // node status patches
	times    []time.Time       // of the patches
	tokens   map[string]string // path → bearer token seen
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[r.URL.Path] = r.Header.Get("Authorization")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 6 && parts[4] == "pods":
		prio, ok := f.priority[parts[5]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"kind":"Status","message":"pods \"`+parts[5]+`\" not found"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"spec": map[string]any{"priority": prio}})
	case r.Method == http.MethodPost && len(parts) == 7 && parts[6] == "eviction":
		if f.blocked[parts[5]] {
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"kind":"Status","message":"Cannot evict pod as it would violate the pod's disruption budget."}`)
			return
		}
		f.evicted = append(f.evicted, parts[5])
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/status"):
		var p map[string]any
		json.NewDecoder(r.Body).Decode(&p)
		f.patches = append(f.patches, p)
		f.times = append(f.times, time.Now())
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

func newFakeAPI(t *testing.T) (*fakeAPI, *KubeClient) {
	f := &fakeAPI{priority: map[string]int32{}, blocked: map[string]bool{}, tokens: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("sa-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, &KubeClient{APIServer: srv.URL, TokenFile: tok, Client: srv.Client()}
}

func TestKubernetesEvictorPriorityAndPDB(t *testing.T) {
	f, kube := newFakeAPI(t)
	f.priority = map[string]int32{"big": 1000, "low": 100, "mid": 500}
	ev := KubernetesEvictor{Kube: kube, Logger: quietLogger()}
	target := Evictee{ContainerID: "c1", Pod: "big", Namespace: "ns", Alternatives: []Evictee{
		{ContainerID: "c2", Pod: "low", Namespace: "ns"}, {ContainerID: "c3", Pod: "mid", Namespace: "ns"},
		{ContainerID: "c4", Pod: "low", Namespace: "ns"}, // a second container of low
	}}
	got, err := ev.Evict(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.evicted) != 1 || f.evicted[0] != "low" {
		t.Fatalf("evicted %v, want [low]: lowest priority first", f.evicted)
	}
	if got.Pod != "low" || got.ContainerID != "c2" {
		t.Errorf("Evict reports %+v evicted, want low's c2 (the bookkeeping marks what it returns)", got)
	}
	if got := f.tokens["/api/v1/namespaces/ns/pods/low/eviction"]; got != "Bearer sa-token" {
		t.Errorf("eviction sent with Authorization %q, want the service-account token", got)
	}

	// A PDB protects low: the next by priority goes.
	f.evicted, f.blocked["low"] = nil, true
	if got, err = ev.Evict(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if len(f.evicted) != 1 || f.evicted[0] != "mid" || got.Pod != "mid" {
		t.Fatalf("evicted %v (reported %q), want [mid] after low's PDB refused", f.evicted, got.Pod)
	}

	// Everyone protected: nothing goes, and the error says why for each.
	f.evicted, f.blocked["mid"], f.blocked["big"] = nil, true, true
	got, err = ev.Evict(context.Background(), target)
	if got.Pod != "" {
		t.Errorf("every pod protected, yet Evict reports %s evicted", got.Pod)
	}
	if !errors.Is(err, ErrEvictionBlocked) {
		t.Fatalf("err = %v, want ErrEvictionBlocked", err)
	}
	for _, pod := range []string{"ns/low", "ns/mid", "ns/big", "disruption budget"} {
		if !strings.Contains(err.Error(), pod) {
			t.Errorf("error %q does not mention %s", err, pod)
		}
	}
	if len(f.evicted) != 0 {
		t.Errorf("evicted %v with every pod protected", f.evicted)
	}

	// A vanished pod is skipped, not fatal.
	f.blocked = map[string]bool{}
	if _, err := ev.Evict(context.Background(), Evictee{ContainerID: "x", Pod: "gone", Namespace: "ns",
		Alternatives: []Evictee{{Pod: "mid", Namespace: "ns"}}}); err != nil || len(f.evicted) != 1 || f.evicted[0] != "mid" {
		t.Errorf("gone pod: err %v, evicted %v; want mid evicted", err, f.evicted)
	}
}

func TestCapacityPublisherIntervalAndChange(t *testing.T) {
	f, kube := newFakeAPI(t)
	pub := &CapacityPublisher{Kube: kube, Node: "n1", Interval: 300 * time.Millisecond, MinChange: 100, Logger: quietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	obs := func(cpus float64) { pub.Observe(isolation.BatchCapacity{CPUs: cpus, Colocation: true}) }
	waitPub := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for pub.Published() != want {
			if time.Now().After(deadline) {
				t.Fatalf("published %d, want %d", pub.Published(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	obs(1.5)
	waitPub(1500)
	// Noise below the minimum change is not published; a real change is,
	// but not before the interval.
	for _, v := range []float64{1.45, 1.55, 1.42} {
		obs(v)
	}
	obs(1.2)
	obs(0.9) // the latest value at the end of the interval wins
	waitPub(900)
	obs(0) // to zero always counts
	waitPub(0)

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.patches) != 3 {
		t.Fatalf("%d patches, want 3 (1500, 900, 0): %v", len(f.patches), f.patches)
	}
	for i := 1; i < len(f.times); i++ {
		// The publisher spaces its requests' starts; arrival adds jitter.
		if gap := f.times[i].Sub(f.times[i-1]); gap < 280*time.Millisecond {
			t.Errorf("patches %d and %d %s apart, interval 300ms", i-1, i, gap)
		}
	}
	st := f.patches[1]["status"].(map[string]any)
	for _, k := range []string{"capacity", "allocatable"} {
		if v := st[k].(map[string]any)[DefaultBatchResource]; v != "900" {
			t.Errorf("status.%s[%s] = %v, want \"900\"", k, DefaultBatchResource, v)
		}
	}
}
