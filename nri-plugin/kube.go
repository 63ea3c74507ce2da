package nriplugin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/strata-nri/strata/isolation"
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
