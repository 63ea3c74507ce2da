package nriplugin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
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
}

// Evictor removes a container from the node. NRI cannot evict (the
// protocol has the message but the runtime never acts on it), so eviction
// goes through Kubernetes or the CRI.
type Evictor interface {
	Evict(ctx context.Context, e Evictee) error
}

// DryRunEvictor only logs; it is the default so that turning Strata on never
// kills anything until an operator chooses an evictor.
type DryRunEvictor struct{ Logger *slog.Logger }

// Evict logs the eviction it would carry out.
func (d DryRunEvictor) Evict(_ context.Context, e Evictee) error {
	d.Logger.Warn("eviction (dry run)", "container", e.ContainerID, "pod", e.Namespace+"/"+e.Pod, "pool", e.Pool, "reason", e.Reason)
	return nil
}

// CRIEvictor stops the container through the runtime's CRI socket, for
// nodes without Kubernetes. The kubelet, where there is one, restarts
// stopped containers, so on Kubernetes nodes prefer KubernetesEvictor.
type CRIEvictor struct {
	Endpoint string        // e.g. /run/containerd/containerd.sock
	Timeout  time.Duration // grace period given to the container (default 10 s)
}

// Evict stops the container.
func (c CRIEvictor) Evict(ctx context.Context, e Evictee) error {
	conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(c.Endpoint, "unix://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(addr, "unix://"))
		}))
	if err != nil {
		return fmt.Errorf("evict %s: CRI %s: %w", e.ContainerID, c.Endpoint, err)
	}
	defer conn.Close()
	grace := c.Timeout
	if grace == 0 {
		grace = 10 * time.Second
	}
	_, err = cri.NewRuntimeServiceClient(conn).StopContainer(ctx, &cri.StopContainerRequest{ContainerId: e.ContainerID, Timeout: int64(grace.Seconds())})
	if err != nil {
		return fmt.Errorf("evict container %s (pod %s/%s): CRI StopContainer: %w", e.ContainerID, e.Namespace, e.Pod, err)
	}
	return nil
}

// KubernetesEvictor posts an Eviction for the container's pod to the API
// server with the pod's service account (in-cluster), honouring
// PodDisruptionBudgets.
type KubernetesEvictor struct {
	APIServer string // default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
	TokenFile string // default /var/run/secrets/kubernetes.io/serviceaccount/token
	CAFile    string // default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
	Client    *http.Client
}

// Evict creates the pods/eviction subresource for the pod.
func (k KubernetesEvictor) Evict(ctx context.Context, e Evictee) error {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	if k.APIServer == "" {
		k.APIServer = "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	}
	if k.TokenFile == "" {
		k.TokenFile = sa + "token"
	}
	if k.CAFile == "" {
		k.CAFile = sa + "ca.crt"
	}
	if e.Namespace == "" || e.Pod == "" {
		return fmt.Errorf("evict container %s: no pod namespace/name to evict through Kubernetes", e.ContainerID)
	}
	token, err := os.ReadFile(k.TokenFile)
	if err != nil {
		return fmt.Errorf("evict pod %s/%s: %w", e.Namespace, e.Pod, err)
	}
	client := k.Client
	if client == nil {
		pool := x509.NewCertPool()
		if ca, err := os.ReadFile(k.CAFile); err == nil {
			pool.AppendCertsFromPEM(ca)
		}
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "policy/v1", "kind": "Eviction",
		"metadata": map[string]string{"name": e.Pod, "namespace": e.Namespace},
	})
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/eviction", strings.TrimSuffix(k.APIServer, "/"), e.Namespace, e.Pod)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("evict pod %s/%s: %w", e.Namespace, e.Pod, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("evict pod %s/%s: API server answered %s", e.Namespace, e.Pod, resp.Status)
	}
	return nil
}
