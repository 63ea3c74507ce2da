package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Evictee is what an evictor needs to know about the container to evict.
type Evictee struct {
	ContainerID string
	Container   string
	Pod         string
	Namespace   string
	Pool        string
	Reason      string
	// Alternatives are other members of the same pool, in the
	// controller's order, that an evictor may take instead (a
	// PodDisruptionBudget protects the evictee).
	Alternatives []Evictee
}

// Evictor removes a container from the node. NRI cannot evict (the
// protocol has the message but the runtime never acts on it), so eviction
// goes through Kubernetes or the CRI.
type Evictor interface {
	// Evict evicts e or one of e.Alternatives and returns the one it
	// evicted (or found already on its way out), so the plugin marks that
	// one and not the controller's proposal; the zero Evictee when it
	// evicted none (a dry run; every candidate protected, with the reasons
	// in the error).
	Evict(ctx context.Context, e Evictee) (Evictee, error)
}

// DryRunEvictor only logs; it is the default so that turning Strata on never
// kills anything until an operator chooses an evictor.
type DryRunEvictor struct{ Logger *slog.Logger }

// Evict logs the eviction it would carry out and evicts nothing.
func (d DryRunEvictor) Evict(_ context.Context, e Evictee) (Evictee, error) {
	d.Logger.Warn("eviction (dry run)", "container", e.ContainerID, "pod", e.Namespace+"/"+e.Pod, "pool", e.Pool, "reason", e.Reason)
	return Evictee{}, nil
}

// CRIEvictor stops the container through the runtime's CRI socket, for
// nodes without Kubernetes. The kubelet, where there is one, restarts
// stopped containers, so on Kubernetes nodes prefer KubernetesEvictor.
type CRIEvictor struct {
	Endpoint string        // e.g. /run/containerd/containerd.sock
	Timeout  time.Duration // grace period given to the container (default 10 s)
}

// Evict stops the container.
func (c CRIEvictor) Evict(ctx context.Context, e Evictee) (Evictee, error) {
	conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(c.Endpoint, "unix://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(addr, "unix://"))
		}))
	if err != nil {
		return Evictee{}, fmt.Errorf("evict %s: CRI %s: %w", e.ContainerID, c.Endpoint, err)
	}
	defer conn.Close()
	grace := c.Timeout
	if grace == 0 {
		grace = 10 * time.Second
	}
	_, err = cri.NewRuntimeServiceClient(conn).StopContainer(ctx, &cri.StopContainerRequest{ContainerId: e.ContainerID, Timeout: int64(grace.Seconds())})
	if err != nil {
		return Evictee{}, fmt.Errorf("evict container %s (pod %s/%s): CRI StopContainer: %w", e.ContainerID, e.Namespace, e.Pod, err)
	}
	e.Alternatives = nil
	return e, nil
}

// ErrEvictionBlocked: the API server refused every candidate's eviction
// (a PodDisruptionBudget allows no disruption, 429). Evict wraps it in an
// error that names each pod and the API server's reason.
var ErrEvictionBlocked = errors.New("eviction blocked")

// KubernetesEvictor evicts pods through the Eviction API (pods/eviction)
// as the plugin's service account, so PodDisruptionBudgets are honoured.
// The evictee and its Alternatives (other members of the same pool, in
// the controller's order) are candidates: lowest Kubernetes priority
// first (spec.priority; the controller's order among equals), the first
// whose eviction the API server accepts is evicted, and a candidate a
// PodDisruptionBudget protects (429) is passed over for the next. The
// controller only ever proposes members of a pool below the one under
// pressure, never of pool 0, and candidates are never taken from another
// pool.
type KubernetesEvictor struct {
	Kube   *KubeClient
	Logger *slog.Logger
}

// Evict evicts the first candidate the API server lets go and returns it.
func (k KubernetesEvictor) Evict(ctx context.Context, e Evictee) (Evictee, error) {
	log := k.Logger
	if log == nil {
		log = slog.Default()
	}
	type cand struct {
		Evictee
		priority int32
		order    int
	}
	seen := map[string]bool{}
	var cands []cand
	var refusals []string
	for i, c := range append([]Evictee{e}, e.Alternatives...) {
		key := c.Namespace + "/" + c.Pod
		if c.Namespace == "" || c.Pod == "" || seen[key] {
			continue // not a Kubernetes pod, or a second container of one
		}
		seen[key] = true
		var pod struct {
			Metadata struct{ DeletionTimestamp *string }
			Spec     struct{ Priority *int32 }
		}
		err := k.Kube.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/namespaces/%s/pods/%s", c.Namespace, c.Pod), "", nil, &pod)
		var ke *KubeError
		switch {
		case errors.As(err, &ke) && ke.Code == http.StatusNotFound:
			refusals = append(refusals, key+": pod is gone")
			continue
		case err != nil:
			return Evictee{}, fmt.Errorf("evict pod %s (container %s): %w", key, c.ContainerID, err)
		case pod.Metadata.DeletionTimestamp != nil:
			// Already on its way out; evicting it again frees nothing
			// more, so the next candidate is not evicted either.
			log.Info("eviction candidate is already terminating", "pod", key)
			c.Alternatives = nil
			return c, nil
		}
		var prio int32
		if pod.Spec.Priority != nil {
			prio = *pod.Spec.Priority
		}
		cands = append(cands, cand{Evictee: c, priority: prio, order: i})
	}
	if len(cands) == 0 {
		if len(refusals) == 0 {
			return Evictee{}, fmt.Errorf("evict container %s: no pod namespace/name to evict through Kubernetes", e.ContainerID)
		}
		return Evictee{}, fmt.Errorf("evict container %s: no candidate left: %s", e.ContainerID, strings.Join(refusals, "; "))
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].priority < cands[j].priority })
	for _, c := range cands {
		body := map[string]any{
			"apiVersion": "policy/v1", "kind": "Eviction",
			"metadata": map[string]string{"name": c.Pod, "namespace": c.Namespace},
		}
		err := k.Kube.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/eviction", c.Namespace, c.Pod), "", body, nil)
		var ke *KubeError
		switch {
		case err == nil:
			if c.order != 0 || len(refusals) > 0 {
				log.Warn("evicted another candidate", "pod", c.Namespace+"/"+c.Pod, "priority", c.priority,
					"proposed", e.Namespace+"/"+e.Pod, "passedOver", strings.Join(refusals, "; "))
			}
			c.Alternatives = nil
			return c.Evictee, nil
		case errors.As(err, &ke) && ke.Code == http.StatusTooManyRequests:
			refusals = append(refusals, fmt.Sprintf("%s/%s (priority %d): %s", c.Namespace, c.Pod, c.priority, ke.Message))
		case errors.As(err, &ke) && ke.Code == http.StatusNotFound:
			refusals = append(refusals, c.Namespace+"/"+c.Pod+": pod is gone")
		default:
			return Evictee{}, fmt.Errorf("evict pod %s/%s (container %s): %w", c.Namespace, c.Pod, c.ContainerID, err)
		}
	}
	return Evictee{}, fmt.Errorf("evict container %s: %w: %s", e.ContainerID, ErrEvictionBlocked, strings.Join(refusals, "; "))
}

// evictionAlternatives lists the other members of target's pool, most
// memory first (the controller's own victim order), for an evictor to fall
// back on. Called by the loop goroutine, which owns the sampler.
func (p *Plugin) evictionAlternatives(target member) []Evictee {
	obs := p.sampler.obs.Containers
	p.mu.Lock()
	var out []Evictee
	for id, m := range p.ctrs {
		if id != target.id && m.pool == target.pool && m.pod != "" {
			out = append(out, Evictee{ContainerID: id, Container: m.name, Pod: m.pod, Namespace: m.namespace, Pool: m.pool})
		}
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		mi, mj := obs[out[i].ContainerID].MemoryBytes, obs[out[j].ContainerID].MemoryBytes
		return mi > mj || mi == mj && out[i].ContainerID < out[j].ContainerID
	})
	return out
}

// settleEviction corrects the controller's bookkeeping after an evictor
// acted on proposed's eviction: every container of the pod it evicted is
// marked as leaving, proposed (if it was not among them) is not. Called
// by the loop goroutine, outside mu.
func (p *Plugin) settleEviction(proposed string, evicted Evictee) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id, m := range p.ctrs {
		if id == evicted.ContainerID || evicted.Pod != "" && m.pod == evicted.Pod && m.namespace == evicted.Namespace {
			ids = append(ids, id)
		}
	}
	p.state.Evicted(proposed, ids...)
}
