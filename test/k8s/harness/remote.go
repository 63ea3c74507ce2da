package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RemoteEnv names the directory describing a control plane that runs
// elsewhere (StartControlPlane wrote it). When it is set, Start runs only
// the node — containerd, Strata and the kubelet — and joins that control
// plane: the cgroup v2 guest of test/vm runs the Kubernetes tier's tests
// this way, against etcd, the API server, the controller manager and the
// scheduler on the host, which the guest reaches over qemu's user network.
// The directory holds:
//
//	remote.json                    the API server's URL as the node reaches it, the node's IP
//	ca.crt, admin.{crt,key}        the cluster CA and a system:masters client
//	kubelet.{crt,key}              the kubelet's client certificate (system:node:<NodeName>)
//	strata.token                   a token of Strata's service account
//	bin/kubelet, cni/loopback      the kubelet and the CNI loopback plugin
//
// One control plane serves the node of every test in turn: Start removes
// what an earlier test left in the API (pods, the Node) before its kubelet
// starts, and the teardown does the same after it stops.
const RemoteEnv = "STRATA_K8S_REMOTE"

// TimeScaleEnv stretches the harness's and the tests' waits, and the tests'
// loop period, by a whole factor where every runtime call is slow (the
// qemu TCG guest of test/vm): claims stated in periods stay the same
// claims.
const TimeScaleEnv = "STRATA_K8S_TIME_SCALE"

// Scaled is d times the time scale (TimeScaleEnv, default 1).
func Scaled(d time.Duration) time.Duration {
	if n, err := strconv.Atoi(os.Getenv(TimeScaleEnv)); err == nil && n > 1 {
		return d * time.Duration(n)
	}
	return d
}

const (
	remoteFile    = "remote.json"
	remoteToken   = "strata.token"
	remoteKubelet = "bin/kubelet"
	remoteCNI     = "cni/loopback"
)

// remote is a control plane described by a RemoteEnv directory.
type remote struct {
	dir string
	// URL is the API server as the node reaches it.
	URL string `json:"url"`
	// NodeIP is the address the kubelet registers (--node-ip).
	NodeIP string `json:"node_ip,omitempty"`
}

func (r *remote) path(rel string) string { return filepath.Join(r.dir, rel) }

// loadRemote reads $RemoteEnv's description; nil when it is unset.
func loadRemote() (*remote, error) {
	dir := os.Getenv(RemoteEnv)
	if dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, remoteFile))
	if err != nil {
		return nil, fmt.Errorf("k8s harness: %s=%s: %w", RemoteEnv, dir, err)
	}
	r := &remote{dir: dir}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("k8s harness: %s: %w", filepath.Join(dir, remoteFile), err)
	}
	if r.URL == "" {
		return nil, fmt.Errorf("k8s harness: %s: no url", filepath.Join(dir, remoteFile))
	}
	for _, f := range []string{"ca.crt", "admin.crt", "admin.key", "kubelet.crt", "kubelet.key", remoteToken, remoteKubelet} {
		if _, err := os.Stat(r.path(f)); err != nil {
			return nil, fmt.Errorf("k8s harness: %s=%s: %w", RemoteEnv, dir, err)
		}
	}
	return r, nil
}

func (r *remote) binaries() Binaries {
	return Binaries{Version: DefaultVersion, Kubelet: r.path(remoteKubelet)}
}

func (r *remote) pki() *pki {
	return &pki{Dir: r.dir, CA: r.path("ca.crt"), AdminCert: r.path("admin.crt"), AdminKey: r.path("admin.key"),
		KubeletCert: r.path("kubelet.crt"), KubeletKey: r.path("kubelet.key")}
}

// join waits for the remote API server and clears what an earlier node
// left in it.
func (c *Cluster) join(ctx context.Context, pki *pki) error {
	admin, err := NewClient(c.URL, pki.CA, pki.AdminCert, pki.AdminKey, "")
	if err != nil {
		return err
	}
	c.Admin = admin
	if err := Poll(ctx, Scaled(time.Minute), 500*time.Millisecond, func() (bool, string, error) {
		err := admin.Do(ctx, http.MethodGet, "/readyz", nil, nil)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	}); err != nil {
		return fmt.Errorf("API server %s not ready: %w", c.URL, err)
	}
	return c.clear(ctx)
}

// clear deletes every pod at once (grace period 0: no kubelet is left to
// stop them), every PodDisruptionBudget and every PriorityClass but the
// built-in system-* ones (a test's own, e.g. the eviction test's, would
// otherwise meet the next test: on the host each test has a fresh etcd),
// and the Node, so the next kubelet registers afresh and runs nothing of
// an earlier test's.
func (c *Cluster) clear(ctx context.Context) error {
	type object struct {
		Metadata struct{ Name, Namespace string }
	}
	var pods struct {
		Items []Pod `json:"items"`
	}
	if err := c.Admin.Do(ctx, http.MethodGet, "/api/v1/pods", nil, &pods); err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		err := c.Admin.Do(ctx, http.MethodDelete, "/api/v1/namespaces/"+p.Metadata.Namespace+"/pods/"+p.Metadata.Name,
			`{"gracePeriodSeconds": 0}`, nil)
		if err != nil && !IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s: %w", p.Metadata.Namespace, p.Metadata.Name, err)
		}
	}
	var pdbs, classes struct {
		Items []object `json:"items"`
	}
	if err := c.Admin.Do(ctx, http.MethodGet, "/apis/policy/v1/poddisruptionbudgets", nil, &pdbs); err != nil {
		return fmt.Errorf("list PodDisruptionBudgets: %w", err)
	}
	for _, p := range pdbs.Items {
		err := c.Admin.Do(ctx, http.MethodDelete, "/apis/policy/v1/namespaces/"+p.Metadata.Namespace+"/poddisruptionbudgets/"+p.Metadata.Name, nil, nil)
		if err != nil && !IsNotFound(err) {
			return fmt.Errorf("delete PodDisruptionBudget %s/%s: %w", p.Metadata.Namespace, p.Metadata.Name, err)
		}
	}
	if err := c.Admin.Do(ctx, http.MethodGet, "/apis/scheduling.k8s.io/v1/priorityclasses", nil, &classes); err != nil {
		return fmt.Errorf("list PriorityClasses: %w", err)
	}
	deletedClasses := 0
	for _, p := range classes.Items {
		if strings.HasPrefix(p.Metadata.Name, "system-") {
			continue
		}
		err := c.Admin.Do(ctx, http.MethodDelete, "/apis/scheduling.k8s.io/v1/priorityclasses/"+p.Metadata.Name, nil, nil)
		if err != nil && !IsNotFound(err) {
			return fmt.Errorf("delete PriorityClass %s: %w", p.Metadata.Name, err)
		}
		deletedClasses++
	}
	if err := c.Admin.Do(ctx, http.MethodDelete, "/api/v1/nodes/"+NodeName, nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", NodeName, err)
	}
	if n := len(pods.Items) + len(pdbs.Items) + deletedClasses; n > 0 {
		c.logf("cleared %d pods, %d PodDisruptionBudgets, %d PriorityClasses and node %s from the control plane",
			len(pods.Items), len(pdbs.Items), deletedClasses, NodeName)
	}
	return nil
}

// reset is clear at teardown, reported rather than fatal.
func (c *Cluster) reset() {
	if c.Admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.clear(ctx); err != nil {
		c.tb.Errorf("k8s: clear the control plane at teardown: %v", err)
	}
}

// ControlPlaneOptions configure StartControlPlane.
type ControlPlaneOptions struct {
	// Version is the Kubernetes version (DefaultVersion when empty).
	Version string
	// Host is the address at which the node reaches this host's loopback
	// (qemu's user network: 10.0.2.2); the API server's certificate names
	// it and the node's URL uses it.
	Host string
	// NodeIP is the address the node's kubelet registers.
	NodeIP string
	// Dir receives the description (RemoteEnv's layout) and the
	// components' data and logs.
	Dir string
	// Logf reports progress; nil is quiet.
	Logf func(format string, args ...any)
}

// ControlPlane is a cluster without a node: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler on 127.0.0.1, and Strata's
// service account, for a node elsewhere to join (RemoteEnv).
type ControlPlane struct {
	*Cluster
	// Remote is the description directory, to be $RemoteEnv on the node.
	Remote string
	// Files are the node's files besides Remote's own (the kubelet, the
	// CNI loopback plugin), by their paths relative to it → host paths.
	Files map[string]string
}

// StartControlPlane builds the Kubernetes binaries (or finds them cached),
// starts a control plane and writes its description for a node; its
// teardown is registered with tb.Cleanup.
func StartControlPlane(tb testing.TB, opts ControlPlaneOptions) *ControlPlane {
	tb.Helper()
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { tb.Logf("k8s: "+format, args...) }
	}
	ip := net.ParseIP(opts.Host)
	if ip == nil {
		tb.Fatalf("k8s: control plane: Host %q is not an IP address", opts.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	bins, err := Build(ctx, BuildOptions{Version: opts.Version, Logf: opts.Logf})
	if err != nil {
		tb.Fatal(err)
	}
	loopback, err := cniLoopback()
	if err != nil {
		tb.Fatal(err)
	}
	rdir := filepath.Join(opts.Dir, "remote")
	for _, d := range []string{rdir, filepath.Join(opts.Dir, "k8s")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	pki, err := newPKI(filepath.Join(opts.Dir, "pki"), NodeName, ip)
	if err != nil {
		tb.Fatal(err)
	}
	ports, err := freePorts(5)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{Bins: bins, Dir: filepath.Join(opts.Dir, "k8s"), URL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]), CA: pki.CA,
		StrataToken: filepath.Join(rdir, remoteToken), StrataPlugin: -1,
		tb: tb, logf: opts.Logf, procs: map[string]*exec.Cmd{}, done: map[string]chan struct{}{}, logs: map[string]string{}}
	tb.Cleanup(c.stop)
	if err := c.controlPlane(ctx, pki, ports); err != nil {
		tb.Fatalf("k8s: %v", err)
	}
	for dst, src := range map[string]string{"ca.crt": pki.CA, "admin.crt": pki.AdminCert, "admin.key": pki.AdminKey,
		"kubelet.crt": pki.KubeletCert, "kubelet.key": pki.KubeletKey} {
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(rdir, dst), b, 0o600)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	r := remote{URL: "https://" + net.JoinHostPort(opts.Host, strconv.Itoa(ports[0])), NodeIP: opts.NodeIP}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(rdir, remoteFile), b, 0o644); err != nil {
		tb.Fatal(err)
	}
	opts.Logf("control plane up in %s (API server %s, for the node %s)", time.Since(start).Round(100*time.Millisecond), c.URL, r.URL)
	return &ControlPlane{Cluster: c, Remote: rdir, Files: map[string]string{remoteKubelet: bins.Kubelet, remoteCNI: loopback}}
}
