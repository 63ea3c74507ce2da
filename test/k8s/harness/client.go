package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Client is a small REST client for the API server: JSON in and out, YAML
// accepted for bodies. The tests use it instead of client-go, which would
// bring Kubernetes' dependencies into Strata's module.
type Client struct {
	URL   string
	HTTP  *http.Client
	Token string // bearer token; empty when the client certificate authenticates
}

// NewClient authenticates with a client certificate (certFile, keyFile) or,
// when those are empty, with token.
func NewClient(url, caFile, certFile, keyFile, token string) (*Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("k8s harness: CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tc := &tls.Config{RootCAs: pool}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("k8s harness: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return &Client{URL: url, Token: token, HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
}

// APIError is a non-2xx answer.
type APIError struct {
	Method, Path string
	Code         int
	Reason       string // the Status object's reason, e.g. "TooManyRequests"
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Code, e.Reason, e.Message)
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}

// Do sends body (nil; []byte or string of YAML or JSON; or a value to
// marshal) and decodes the answer into out (when not nil). contentType
// defaults to application/json; PATCH defaults to a merge patch.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.DoType(ctx, method, path, "", body, out)
}

// DoType is Do with an explicit content type.
func (c *Client) DoType(ctx context.Context, method, path, contentType string, body, out any) error {
	var rd io.Reader
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.Marshal(v); err != nil {
				return fmt.Errorf("k8s harness: %s %s: encode body: %w", method, path, err)
			}
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return fmt.Errorf("k8s harness: %s %s: body is neither JSON nor YAML: %w", method, path, err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, rd)
	if err != nil {
		return err
	}
	if contentType == "" {
		contentType = "application/json"
		if method == http.MethodPatch {
			contentType = "application/merge-patch+json"
		}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("k8s harness: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("k8s harness: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var st struct{ Reason, Message string }
		_ = json.Unmarshal(data, &st)
		if st.Message == "" {
			st.Message = strings.TrimSpace(string(data))
		}
		return &APIError{Method: method, Path: path, Code: resp.StatusCode, Reason: st.Reason, Message: st.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("k8s harness: %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Create POSTs a manifest (YAML or JSON) to the collection path, e.g.
// "/api/v1/namespaces/default/pods".
func (c *Client) Create(ctx context.Context, path, manifest string) error {
	return c.Do(ctx, http.MethodPost, path, manifest, nil)
}

// Pod is the part of a Pod the tests read.
type Pod struct {
	Metadata struct {
		Name, Namespace, UID string
		DeletionTimestamp    *string
	}
	Spec struct {
		NodeName   string
		Priority   *int32
		Containers []struct {
			Name      string
			Resources struct{ Requests, Limits map[string]string }
		}
	}
	Status struct {
		Phase      string
		QOSClass   string
		Reason     string
		Message    string
		Conditions []struct {
			Type, Status, Reason, Message string
		}
		ContainerStatuses []struct {
			Name        string
			ContainerID string // containerd://<id>
			Ready       bool
			Resources   *struct{ Requests, Limits map[string]string }
		}
		Resize string
	}
}

// ContainerID returns the runtime ID of container name ("" when not
// started).
func (p *Pod) ContainerID(name string) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			_, id, _ := strings.Cut(cs.ContainerID, "://")
			return id
		}
	}
	return ""
}

// Pod fetches a pod.
func (c *Client) Pod(ctx context.Context, ns, name string) (*Pod, error) {
	var p Pod
	if err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/namespaces/%s/pods/%s", ns, name), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Node is the part of a Node the tests read.
type Node struct {
	Metadata struct{ Name string }
	Status   struct {
		Capacity, Allocatable map[string]string
		Conditions            []struct{ Type, Status, Reason, Message string }
	}
}

// Node fetches a node.
func (c *Client) Node(ctx context.Context, name string) (*Node, error) {
	var n Node
	if err := c.Do(ctx, http.MethodGet, "/api/v1/nodes/"+name, nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// Ready reports the node's Ready condition.
func (n *Node) Ready() (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True", c.Reason + ": " + c.Message
		}
	}
	return false, "no Ready condition yet"
}

// Poll calls check every interval until it returns true, an error, or
// timeout passes; the last reason given is in the timeout error.
func Poll(ctx context.Context, timeout, interval time.Duration, check func() (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ok, why, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		last = why
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s: %s", timeout, last)
		case <-time.After(interval):
		}
	}
}
