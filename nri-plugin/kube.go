package nriplugin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/strata-nri/strata/isolation"
	"github.com/strata-nri/strata/netqos"
)

// KubeClient talks to the Kubernetes API server as the plugin's service
// account: a bearer token read from TokenFile for every request (projected
// tokens are rotated on disk) over TLS verified with CAFile. It speaks
// plain JSON over net/http; client-go would more than double the plugin's
// dependencies for the three requests Strata makes (evict a pod, read a
// pod, patch its node's status).
type KubeClient struct {
	APIServer string // default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
	TokenFile string // default /var/run/secrets/kubernetes.io/serviceaccount/token
	CAFile    string // default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
	// Client overrides the HTTP client built from CAFile.
	Client *http.Client

	once   sync.Once
	client *http.Client
	err    error
}

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount/"

// KubeError is an answer outside 2xx: the status code and the API server's
// Status message ("Cannot evict pod as it would violate the pod's
// disruption budget.").
type KubeError struct {
	Method, Path string
	Code         int
	Message      string
}

func (e *KubeError) Error() string {
	return fmt.Sprintf("%s %s: API server answered %d: %s", e.Method, e.Path, e.Code, e.Message)
}

func (k *KubeClient) init() error {
	k.once.Do(func() {
		if k.APIServer == "" {
			host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
			if host == "" || port == "" {
				k.err = fmt.Errorf("kubernetes: no API server given and KUBERNETES_SERVICE_HOST/PORT unset (not in a pod?)")
				return
			}
			k.APIServer = "https://" + net.JoinHostPort(host, port)
		}
		k.APIServer = strings.TrimSuffix(k.APIServer, "/")
		if k.TokenFile == "" {
			k.TokenFile = serviceAccountDir + "token"
		}
		if k.CAFile == "" {
			k.CAFile = serviceAccountDir + "ca.crt"
		}
		if k.client = k.Client; k.client != nil {
			return
		}
		ca, err := os.ReadFile(k.CAFile)
		if err != nil {
			k.err = fmt.Errorf("kubernetes: CA file: %w", err)
			return
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			k.err = fmt.Errorf("kubernetes: CA file %s holds no PEM certificate", k.CAFile)
			return
		}
		k.client = &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	})
	return k.err
}

// do sends a request with a JSON body (nil: none) and decodes a 2xx answer
// into out (nil: discarded). Other answers are *KubeError.
func (k *KubeClient) do(ctx context.Context, method, path, contentType string, body, out any) error {
	if err := k.init(); err != nil {
		return err
	}
	token, err := os.ReadFile(k.TokenFile)
	if err != nil {
		return fmt.Errorf("kubernetes: service-account token: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.APIServer+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("kubernetes: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("kubernetes: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var st struct{ Message string }
		if json.Unmarshal(data, &st) != nil || st.Message == "" {
			st.Message = strings.TrimSpace(string(data))
		}
		return &KubeError{Method: method, Path: path, Code: resp.StatusCode, Message: st.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("kubernetes: %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// DefaultBatchResource is the extended resource the batch capacity is
// published as, in millicores.
const DefaultBatchResource = "strata.io/batch-cpu"

// CapacityPublisher publishes the batch capacity view on the plugin's Node
// as an extended resource (status.capacity and status.allocatable), so
// batch pods can request it and the scheduler places them against it. It
// publishes at most once per Interval and only when the value moved by at
// least MinChange millicores (or to or from 0), so the node object does not
// churn with every period's noise.
//
// The loop hands it each plan's view through Observe, which never blocks;
// Run does the API traffic.
type CapacityPublisher struct {
	Kube *KubeClient
	Node string
	// Resource is the extended resource name (DefaultBatchResource).
	Resource string
	// Interval is the least time between two updates (default 30 s);
	// MinChange the least change in millicores worth an update (default
	// 100).
	Interval  time.Duration
	MinChange int64
	Logger    *slog.Logger

	mu        sync.Mutex
	latest    int64 // millicores; -1 before the first observation
	published int64 // -1 before the first successful update
	wake      chan struct{}
	once      sync.Once
}

func (c *CapacityPublisher) init() {
	c.once.Do(func() {
		c.latest, c.published = -1, -1
		c.wake = make(chan struct{}, 1)
		if c.Resource == "" {
			c.Resource = DefaultBatchResource
		}
		if c.Interval <= 0 {
			c.Interval = 30 * time.Second
		}
		if c.MinChange <= 0 {
			c.MinChange = 100
		}
		if c.Logger == nil {
			c.Logger = slog.Default()
		}
	})
}

// Observe records a plan's batch capacity. It never blocks.
func (c *CapacityPublisher) Observe(b isolation.BatchCapacity) {
	c.init()
	v := int64(math.Round(max(b.CPUs, 0) * 1000))
	c.mu.Lock()
	c.latest = v
	due := c.meaningful(v)
	c.mu.Unlock()
	if due {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// meaningful: is v worth publishing over what is published? Caller holds mu.
func (c *CapacityPublisher) meaningful(v int64) bool {
	if v < 0 {
		return false
	}
	if c.published < 0 {
		return true
	}
	d := v - c.published
	return d >= c.MinChange || -d >= c.MinChange || (v == 0) != (c.published == 0)
}

// Published returns the last value published (-1: none yet).
func (c *CapacityPublisher) Published() int64 {
	c.init()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.published
}

// Run publishes until ctx ends.
func (c *CapacityPublisher) Run(ctx context.Context) {
	c.init()
	log := c.Logger.With("node", c.Node, "resource", c.Resource)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		if wait := c.Interval - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		c.mu.Lock()
		v, due := c.latest, c.meaningful(c.latest)
		c.mu.Unlock()
		if !due {
			continue
		}
		last = time.Now()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.publish(pctx, v)
		cancel()
		if err != nil {
			log.Warn("cannot publish the batch capacity; retrying after the interval", "millicores", v, "err", err, "interval", c.Interval)
			// Retry on the next tick even if nothing changes.
			select {
			case c.wake <- struct{}{}:
			default:
			}
			continue
		}
		c.mu.Lock()
		prev := c.published
		c.published = v
		c.mu.Unlock()
		log.Info("batch capacity published", "millicores", v, "previous", prev)
	}
}

// publish merge-patches the node's status. The kubelet keeps extended
// resources it does not manage as they are written.
func (c *CapacityPublisher) publish(ctx context.Context, millis int64) error {
	q := fmt.Sprint(millis)
	patch := map[string]any{"status": map[string]any{
		"capacity":    map[string]string{c.Resource: q},
		"allocatable": map[string]string{c.Resource: q},
	}}
	return c.Kube.do(ctx, http.MethodPatch, "/api/v1/nodes/"+c.Node+"/status", "application/merge-patch+json", patch, nil)
}

// PodAnnotationSink receives what a PodWatcher sees of the node's pods;
// *Plugin is one.
type PodAnnotationSink interface {
	// PodAnnotations gives the watched annotations a pod (by UID) has on
	// the API server now (an empty map: none of them); nil means the pod
	// is gone. It must not block.
	PodAnnotations(uid string, annotations map[string]string)
}

// Bounds of a PodWatcher.
const (
	// DefaultMaxWatchedPods is how many pods a watcher follows at most
	// (the kubelet's default max-pods is 110).
	DefaultMaxWatchedPods = 1024
	// maxWatchEvent bounds one event of the watch stream (a pod object).
	maxWatchEvent = 4 << 20
	// maxAnnotationValue bounds a followed annotation's value; a longer
	// one is passed on cut, and fails validation with its start shown.
	maxAnnotationValue = 256
)

// watchedAnnotations are the pod annotations a PodWatcher follows: the
// Kubernetes bandwidth annotations, which the net dimension applies.
var watchedAnnotations = []string{netqos.EgressBandwidthAnnotation, netqos.IngressBandwidthAnnotation}

// PodWatcher follows this node's pods on the API server (a list, then a
// watch with fieldSelector spec.nodeName) and tells Sink when one of the
// watched annotations (the Kubernetes bandwidth annotations) changes on a
// pod. containerd reports a pod's annotations as
// they were when its sandbox was created, so `kubectl annotate pod …
// kubernetes.io/egress-bandwidth=…` on a running pod reaches Strata only
// this way. The watch is re-opened where it ended (from the last
// resourceVersion), re-listed when the API server answers 410 Gone, and
// retried with a backoff up to 30 s on errors; a relist reports the pods
// that vanished meanwhile as gone.
type PodWatcher struct {
	Kube *KubeClient
	Node string
	Sink PodAnnotationSink
	// MaxPods bounds the pods followed (default DefaultMaxWatchedPods);
	// pods beyond it are skipped with a warning.
	MaxPods int
	Logger  *slog.Logger

	known map[string]map[string]string // uid -> followed annotations last passed on
	rv    string
	full  bool // MaxPods reached (warned once)
}

// watchPod is the part of a Pod object a PodWatcher reads.
type watchPod struct {
	Metadata struct {
		Name, Namespace, UID, ResourceVersion string
		Annotations                           map[string]string
	}
}

// errGone is the API server's 410: the resourceVersion is too old.
var errGone = errors.New("kubernetes: watch resourceVersion expired (410 Gone)")

func (w *PodWatcher) init() {
	if w.MaxPods <= 0 {
		w.MaxPods = DefaultMaxWatchedPods
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	w.known = map[string]map[string]string{}
}

// Run follows the node's pods until ctx ends.
func (w *PodWatcher) Run(ctx context.Context) {
	w.init()
	log := w.Logger.With("node", w.Node)
	backoff := time.Second
	listed := false
	for ctx.Err() == nil {
		var err error
		if !listed {
			if err = w.list(ctx); err == nil {
				listed = true
				log.Info("following the node's pods for annotation changes", "pods", len(w.known), "annotations", watchedAnnotations)
			}
		}
		if err == nil {
			err = w.watch(ctx)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil: // the API server ended the watch (timeoutSeconds)
			backoff = time.Second
			continue
		case errors.Is(err, errGone):
			log.Info("pod watch expired; listing again", "resourceVersion", w.rv)
			listed, backoff = false, time.Second
			continue
		}
		log.Warn("pod watch failed; retrying", "err", err, "in", backoff)
		listed = false
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (w *PodWatcher) query() string {
	return "/api/v1/pods?fieldSelector=" + url.QueryEscape("spec.nodeName="+w.Node)
}

// list reads the node's pods, passes on every change, and reports the
// pods it knew that are gone.
func (w *PodWatcher) list(ctx context.Context) error {
	seen := map[string]bool{}
	cont := ""
	for {
		var page struct {
			Metadata struct{ ResourceVersion, Continue string }
			Items    []watchPod
		}
		q := w.query() + "&limit=500"
		if cont != "" {
			q += "&continue=" + url.QueryEscape(cont)
		}
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := w.Kube.do(lctx, http.MethodGet, q, "", nil, &page)
		cancel()
		if err != nil {
			return err
		}
		for i := range page.Items {
			seen[page.Items[i].Metadata.UID] = true
			w.observe(&page.Items[i])
		}
		w.rv = page.Metadata.ResourceVersion
		if cont = page.Metadata.Continue; cont == "" {
			break
		}
	}
	for uid := range w.known {
		if !seen[uid] {
			w.gone(uid)
		}
	}
	return nil
}

// watch streams events from w.rv until the API server ends the stream.
func (w *PodWatcher) watch(ctx context.Context) error {
	if err := w.Kube.init(); err != nil {
		return err
	}
	token, err := os.ReadFile(w.Kube.TokenFile)
	if err != nil {
		return fmt.Errorf("kubernetes: service-account token: %w", err)
	}
	path := w.query() + "&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" + url.QueryEscape(w.rv)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.Kube.APIServer+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	// The client's 10 s timeout would cut the stream; ctx and the API
	// server's timeoutSeconds end it instead.
	client := *w.Kube.client
	client.Timeout = 0
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("kubernetes: watch pods: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		return errGone
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &KubeError{Method: http.MethodGet, Path: path, Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxWatchEvent)
	for sc.Scan() {
		var ev struct {
			Type   string
			Object json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("kubernetes: watch pods: decode event: %w", err)
		}
		if ev.Type == "ERROR" {
			var st struct {
				Code    int
				Message string
			}
			_ = json.Unmarshal(ev.Object, &st)
			if st.Code == http.StatusGone {
				return errGone
			}
			return fmt.Errorf("kubernetes: watch pods: API server error %d: %s", st.Code, st.Message)
		}
		var p watchPod
		if err := json.Unmarshal(ev.Object, &p); err != nil {
			return fmt.Errorf("kubernetes: watch pods: decode %s object: %w", ev.Type, err)
		}
		if p.Metadata.ResourceVersion != "" {
			w.rv = p.Metadata.ResourceVersion
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			w.observe(&p)
		case "DELETED":
			w.gone(p.Metadata.UID)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("kubernetes: watch pods: %w", err)
	}
	return nil
}

// observe passes a pod's followed annotations on when they changed.
func (w *PodWatcher) observe(p *watchPod) {
	uid := p.Metadata.UID
	if uid == "" {
		return
	}
	ann := map[string]string{}
	for _, k := range watchedAnnotations {
		if v, ok := p.Metadata.Annotations[k]; ok {
			if len(v) > maxAnnotationValue {
				v = v[:maxAnnotationValue]
			}
			ann[k] = v
		}
	}
	old, ok := w.known[uid]
	if ok && maps.Equal(old, ann) {
		return
	}
	if !ok && len(w.known) >= w.MaxPods {
		if !w.full {
			w.full = true
			w.Logger.Warn("too many pods on the node to follow their annotations; later ones are not followed", "max", w.MaxPods, "pod", p.Metadata.Namespace+"/"+p.Metadata.Name)
		}
		return
	}
	w.known[uid] = ann
	if ok {
		w.Logger.Info("pod annotations changed on the API server", "pod", p.Metadata.Namespace+"/"+p.Metadata.Name, "annotations", ann, "were", old)
	}
	w.Sink.PodAnnotations(uid, maps.Clone(ann))
}

func (w *PodWatcher) gone(uid string) {
	if _, ok := w.known[uid]; !ok {
		return
	}
	delete(w.known, uid)
	if len(w.known) < w.MaxPods {
		w.full = false
	}
	w.Sink.PodAnnotations(uid, nil)
}

// PodAnnotations implements PodAnnotationSink: the API server's values of
// the followed annotations override what the runtime reported for the
// pod's members (the values at sandbox creation), and the dimensions
// learn of a change as of any other member update (MemberUpdater), so a
// malformed value is refused there, logged and shown in status, and the
// old limits stay. It never blocks on the runtime.
func (p *Plugin) PodAnnotations(uid string, annotations map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if annotations == nil {
		delete(p.kubeAnn, uid)
	} else {
		if p.kubeAnn == nil {
			p.kubeAnn = map[string]map[string]string{}
		}
		p.kubeAnn[uid] = annotations
	}
	for _, m := range p.ctrs {
		if m.podUID != uid || annotations == nil {
			continue
		}
		m.kubeAnn = annotations
		if m.started {
			p.dims.admitted(m.info())
		}
	}
}

// podAnnotations is what controllers see of a member's pod annotations:
// the runtime's, with the keys the API server was watched for laid over
// (present there: its value; absent there: removed).
func (m *member) podAnnotations() map[string]string {
	if m.kubeAnn == nil {
		return m.annotations
	}
	out := maps.Clone(m.annotations)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range watchedAnnotations {
		delete(out, k)
	}
	maps.Copy(out, m.kubeAnn)
	return out
}
