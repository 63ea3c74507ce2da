package isolation

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"k8s.io/utils/cpuset"

	"github.com/strata-nri/strata/cgroup"
	"github.com/strata-nri/strata/internal/safetext"
)

// ContainerRequest is what the runtime tells us about a container being
// created (or found running after a restart). CPU and memory come from its
// OCI resources.
type ContainerRequest struct {
	ID          string
	Name        string
	PodUID      string
	PodName     string
	Namespace   string
	Annotations map[string]string // pod annotations
	Labels      map[string]string // pod labels
	CgroupsPath string
	// CPURequestMilli is the CPU request in millicores. When 0 it is derived
	// from CPUShares the way the kubelet set them (shares × 1000 / 1024).
	CPURequestMilli int64
	CPUShares       uint64
	// CPUQuota/CPUPeriod in microseconds; quota ≤ 0 means no limit.
	CPUQuota  int64
	CPUPeriod uint64
	// Memory in bytes; MemoryLimit ≤ 0 means no limit.
	MemoryRequest int64
	MemoryLimit   int64
	// OOMScoreAdj is the value the runtime would give the container.
	OOMScoreAdj int
	// CurrentCPUs is the cpuset a running container has now, when known.
	// Restore uses it to rebuild the container's pool around the CPUs it
	// already runs on, so a plugin restart moves nothing. Admit ignores it.
	CurrentCPUs cpuset.CPUSet
}

// CPURequest returns the CPU request in millicores.
func (r *ContainerRequest) CPURequest() int64 {
	if r.CPURequestMilli > 0 {
		return r.CPURequestMilli
	}
	return cgroup.SharesToMilliCPU(r.CPUShares)
}

func (r *ContainerRequest) pod() string {
	if r.Namespace == "" {
		return r.PodName
	}
	return r.Namespace + "/" + r.PodName
}

// QoSClass is the Kubernetes QoS class.
type QoSClass string

// QoS classes.
const (
	QoSGuaranteed QoSClass = "Guaranteed"
	QoSBurstable  QoSClass = "Burstable"
	QoSBestEffort QoSClass = "BestEffort"
)

// QoS infers the Kubernetes QoS class: from the cgroup path when it has the
// kubelet's layout (cgroupfs "/kubepods/burstable/pod…" or systemd
// "kubepods-besteffort-pod….slice"), else from the resources.
func (r *ContainerRequest) QoS() QoSClass {
	p := strings.ToLower(r.CgroupsPath)
	if strings.Contains(p, "kubepods") {
		switch {
		case strings.Contains(p, "besteffort"):
			return QoSBestEffort
		case strings.Contains(p, "burstable"):
			return QoSBurstable
		default:
			return QoSGuaranteed
		}
	}
	req := r.CPURequest()
	if req == 0 && r.MemoryRequest <= 0 && r.MemoryLimit <= 0 && r.CPUQuota <= 0 {
		return QoSBestEffort
	}
	if r.CPUQuota > 0 && r.CPUPeriod > 0 && r.MemoryLimit > 0 &&
		r.CPUQuota*1000/int64(r.CPUPeriod) == req &&
		(r.MemoryRequest == 0 || r.MemoryRequest == r.MemoryLimit) {
		return QoSGuaranteed
	}
	return QoSBurstable
}

// Admission refusals. They are wrapped in *AdmissionError; test with
// errors.Is.
var (
	// ErrNotAllowed: the pod is outside the pool's allow-list.
	ErrNotAllowed = errors.New("not allowed in pool")
	// ErrUnknownPool: the annotation names a pool that does not exist.
	ErrUnknownPool = errors.New("unknown pool")
	// ErrNoExclusiveCPUs: the pool pins whole-CPU members but not enough
	// CPUs can be taken from lower pools.
	ErrNoExclusiveCPUs = errors.New("no exclusive CPUs left")
)

// AdmissionError explains a refusal: which container of which pod, which
// pool, what the annotation said, and the allowed pools.
type AdmissionError struct {
	Container  string
	Pod        string // namespace/name
	Pool       string
	Annotation string // annotation key and value, "strata.io/pool=latency-critical", if it played a part
	Allowed    []string
	Detail     string
	Err        error
}

func (e *AdmissionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "container %s of pod %s: %v %s", safetext.Name(e.Container), safetext.Name(e.Pod), e.Err, safetext.Quote(e.Pool))
	if e.Annotation != "" {
		fmt.Fprintf(&b, " (annotation %s)", e.Annotation)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	switch {
	case len(e.Allowed) > 0 && errors.Is(e.Err, ErrUnknownPool):
		fmt.Fprintf(&b, "; configured pools: %s", strings.Join(e.Allowed, ", "))
	case len(e.Allowed) > 0:
		fmt.Fprintf(&b, "; allowed pools: %s", strings.Join(e.Allowed, ", "))
	}
	return b.String()
}

func (e *AdmissionError) Unwrap() error { return e.Err }

// Classification is the chosen pool and the route that chose it.
type Classification struct {
	Pool string
	// Route says why: "annotation strata.io/pool=online",
	// "namespace rule batch-*", "qos BestEffort", "default",
	// "fallback (not allowed in latency-critical)".
	Route string
}

// Admits reports whether the allow-list admits a pod.
func (a AllowList) Admits(namespace string, labels map[string]string) bool {
	if len(a.Namespaces) > 0 {
		ok := false
		for _, p := range a.Namespaces {
			if m, _ := path.Match(p, namespace); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k, v := range a.Labels {
		if got, has := labels[k]; !has || got != v {
			return false
		}
	}
	return true
}

// Classify chooses the pool of a new container: the annotation first, then
// namespace rules, the QoS class, the default pool. A pool whose allow-list
// does not admit the pod is never chosen: an annotation naming one is
// refused, or sent to classification.onDisallowed's fallback pool; a rule
// naming one falls through to the next rule.
//
// Every pool Classify returns has passed gate, the one admission check
// (Restore passes the same one): operator rules must satisfy the pool's
// allow-list; anything the pod controls — its annotation, the fallback its
// annotation triggers — must also satisfy the no-promotion rule.
func (c *Config) Classify(r *ContainerRequest) (Classification, error) {
	cl := &c.Classification
	v, annotated := r.Annotations[cl.Annotation]
	if !annotated {
		return c.classifyByRules(r)
	}
	ann := cl.Annotation + "=" + safetext.Name(v)
	p := c.pool(v)
	if p == nil {
		// The annotation's allowed values are the configured pools.
		names := make([]string, len(c.Pools))
		for i := range c.Pools {
			names[i] = c.Pools[i].Name
		}
		return Classification{}, &AdmissionError{Container: r.ID, Pod: r.pod(), Pool: v, Annotation: ann,
			Allowed: names, Err: ErrUnknownPool}
	}
	detail := c.gate(r, p, true)
	if detail == "" {
		return Classification{Pool: p.Name, Route: "annotation " + ann}, nil
	}
	if cl.OnDisallowed == "" || cl.OnDisallowed == OnDisallowedRefuse {
		return Classification{}, &AdmissionError{Container: r.ID, Pod: r.pod(), Pool: v, Annotation: ann,
			Allowed: c.allowedPools(r), Err: ErrNotAllowed, Detail: detail}
	}
	// The fallback is reached through the pod's own annotation, so it is
	// held to the same rule: a fallback pool above the pod's rules pool
	// would be a way up for any pod that asks for a pool it may not have.
	fb := c.pool(cl.OnDisallowed)
	if fb != nil && c.gate(r, fb, true) == "" {
		return Classification{Pool: fb.Name, Route: "fallback (" + ann + " not allowed)"}, nil
	}
	if base, err := c.classifyByRules(r); err == nil {
		base.Route = "rules (" + ann + " not allowed; fallback " + strconv.Quote(cl.OnDisallowed) + " would promote the pod): " + base.Route
		return base, nil
	}
	return Classification{}, &AdmissionError{Container: r.ID, Pod: r.pod(), Pool: v, Annotation: ann,
		Allowed: c.allowedPools(r), Err: ErrNotAllowed, Detail: detail}
}

// gate is the admission check. It returns "" when pool p may take the pod,
// else why not. Every pool is held to its allow-list. A pool the pod asked
// for (requested: its annotation, the fallback that annotation triggers, a
// pool recorded in annotations at restore) must in addition be one the
// operator named the pod for — a non-empty allow-list that admits it — or
// not be above the pool the operator's rules give the pod. When the rules
// give it no pool at all, there is nothing to compare with, and only an
// allow-list that names the pod will do: a refused pod does not get in by
// asking.
func (c *Config) gate(r *ContainerRequest, p *PoolConfig, requested bool) string {
	if !p.Allow.Admits(r.Namespace, r.Labels) {
		return "namespace and labels are outside the pool's allow-list"
	}
	if !requested || !p.Allow.Empty() {
		return ""
	}
	// A pod writes its own annotations. Without an allow-list that names
	// it, an annotation may keep a pod where its rules put it or move it
	// down, never promote it: otherwise any pod could claim the top pool
	// and its exclusive cores.
	base, err := c.classifyByRules(r)
	if err != nil {
		return fmt.Sprintf("pool %q has no allow-list and the rules admit the pod to no pool; "+
			"list its namespace or labels in the allow of the pool it should have", p.Name)
	}
	if p.Priority < c.pool(base.Pool).Priority {
		return fmt.Sprintf("pool %q has no allow-list, so the annotation cannot promote the pod above pool %q (%s); "+
			"list its namespace or labels in the pool's allow", p.Name, base.Pool, base.Route)
	}
	return ""
}

// classifyByRules chooses a pool without the annotation: namespace rules,
// the QoS class, the default, each only where the pool's allow-list admits
// the pod.
func (c *Config) classifyByRules(r *ContainerRequest) (Classification, error) {
	cl := &c.Classification
	for _, rule := range cl.Namespaces {
		if m, _ := path.Match(rule.Namespace, r.Namespace); m {
			if c.admits(rule.Pool, r) {
				return Classification{Pool: rule.Pool, Route: "namespace rule " + rule.Namespace}, nil
			}
		}
	}
	var byQoS string
	q := r.QoS()
	switch q {
	case QoSGuaranteed:
		byQoS = cl.QoS.Guaranteed
	case QoSBurstable:
		byQoS = cl.QoS.Burstable
	case QoSBestEffort:
		byQoS = cl.QoS.BestEffort
	}
	if byQoS != "" && c.admits(byQoS, r) {
		return Classification{Pool: byQoS, Route: "qos " + string(q)}, nil
	}
	if c.admits(cl.Default, r) {
		return Classification{Pool: cl.Default, Route: "default"}, nil
	}
	return Classification{}, &AdmissionError{Container: r.ID, Pod: r.pod(), Pool: cl.Default,
		Allowed: c.namedPools(r), Err: ErrNotAllowed, Detail: "no rule matched and the default pool's allow-list does not admit the pod"}
}

func (c *Config) admits(pool string, r *ContainerRequest) bool {
	p := c.pool(pool)
	return p != nil && p.Allow.Admits(r.Namespace, r.Labels)
}

// allowedPools lists the pools the pod may ask for by annotation: those
// the admission check lets it into.
func (c *Config) allowedPools(r *ContainerRequest) []string {
	var out []string
	for i := range c.Pools {
		if c.gate(r, &c.Pools[i], true) == "" {
			out = append(out, c.Pools[i].Name)
		}
	}
	return out
}

// namedPools lists the pools whose non-empty allow-list admits the pod:
// where it may ask to go when the rules give it no pool.
func (c *Config) namedPools(r *ContainerRequest) []string {
	var out []string
	for _, p := range c.Pools {
		if !p.Allow.Empty() && p.Allow.Admits(r.Namespace, r.Labels) {
			out = append(out, p.Name)
		}
	}
	return out
}
