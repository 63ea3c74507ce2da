package k8s_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
	nriplugin "github.com/strata-nri/strata/nri-plugin"
	e2e "github.com/strata-nri/strata/test/e2e/harness"
	"github.com/strata-nri/strata/test/e2e/image"
	"github.com/strata-nri/strata/test/k8s/harness"
)

// repoRoot is the Strata module's root.
func repoRoot(t *testing.T) string {
	t.Helper()
	src, err := e2e.SourceDir() // <root>/test/e2e
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(src))
}

// helmBinary finds helm as the deployment tests do ($STRATA_HELM, bin/helm,
// which hack/install-deps.sh links), or in the tools cache it builds into.
func helmBinary(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("STRATA_HELM"), filepath.Join(repoRoot(t), "bin/helm")}
	cached, _ := filepath.Glob("/var/cache/strata-tools/helm-*/helm")
	for _, p := range append(cands, cached...) {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if testutil.KernelRequired() {
		t.Fatal("helm not found ($STRATA_HELM, bin/helm or /var/cache/strata-tools): hack/install-deps.sh builds it")
	}
	t.Skip("helm not found ($STRATA_HELM, bin/helm or /var/cache/strata-tools); run hack/install-deps.sh")
	return ""
}

// strataImage builds the plugin statically from the working tree, packs it
// as the one file of an image (/strata, as the chart runs it) and imports
// it into the cluster's containerd, returning the reference.
func strataImage(t *testing.T, c *harness.Cluster) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "strata")
	cmd := osexec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./nri-plugin/cmd/strata")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build strata: %v\n%s", err, out)
	}
	// Each run has a containerd of its own: a fixed tag cannot meet an
	// older image.
	opts := image.Options{Ref: "strata.local/strata:test", Entrypoint: []string{"/strata"},
		Files: []image.File{{Path: "/strata", Source: bin}, {Path: "/tmp", Dir: true, Mode: 0o1777}}}
	tarball := filepath.Join(dir, "strata.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if err := image.WriteArchive(f, opts); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st := c.Env.State()
	if out, err := osexec.Command(st.Binaries.Ctr, "--address", st.Socket, "--namespace", "k8s.io",
		"images", "import", "--snapshotter", "overlayfs", tarball).CombinedOutput(); err != nil {
		t.Fatalf("import %s: %v\n%s", opts.Ref, err, out)
	}
	return opts.Ref
}

// apiPath is where an object of the chart's kinds is created.
func apiPath(kind, ns string) (string, error) {
	switch kind {
	case "ServiceAccount", "ConfigMap":
		return fmt.Sprintf("/api/v1/namespaces/%s/%ss", ns, strings.ToLower(kind)), nil
	case "DaemonSet":
		return fmt.Sprintf("/apis/apps/v1/namespaces/%s/daemonsets", ns), nil
	case "ClusterRole", "ClusterRoleBinding":
		return "/apis/rbac.authorization.k8s.io/v1/" + strings.ToLower(kind) + "s", nil
	case "Role", "RoleBinding":
		return fmt.Sprintf("/apis/rbac.authorization.k8s.io/v1/namespaces/%s/%ss", ns, strings.ToLower(kind)), nil
	}
	return "", fmt.Errorf("the chart renders a %s, which this test does not know how to create", kind)
}

// TestE2EK8sDaemonSet deploys Strata as a cluster user would: the
// DaemonSet of deploy/helm/strata, rendered by helm with a locally built
// image, its own service account and RBAC, on the node whose containerd
// runs no other Strata. The plugin in the pod must connect to containerd's
// NRI socket, classify pods created through the API into the pools,
// publish the batch capacity on the Node with the chart's RBAC, and serve
// its status on the host socket the chart mounts.
//
// One change is made to the rendered objects: this cluster has no
// kube-proxy, so the kubernetes Service's cluster IP (what the kubelet
// puts in KUBERNETES_SERVICE_HOST) leads nowhere; the DaemonSet's
// container is told the API server's loopback address instead, as
// kubeadm's static pods would be.
func TestE2EK8sDaemonSet(t *testing.T) {
	harness.Require(t)
	helm := helmBinary(t)
	c := harness.Start(t, harness.Options{})
	ctx := context.Background()
	ref := strataImage(t, c)
	repo, tag, _ := strings.Cut(ref, ":")

	cfg := config()
	cfgYAML, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := fmt.Sprintf("/run/strata/k8s-%s.sock", c.Env.State().RunID)
	t.Cleanup(func() { os.Remove(sock) })
	values := map[string]any{
		"image":     map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"config":    json.RawMessage(mustJSON(t, cfgYAML)),
		"nriSocket": c.Env.State().NRISocket,
		"listen":    "unix:" + sock,
		"logLevel":  "debug",
		"logFormat": "text",
		// This VM has no CAP_SYS_RESOURCE to give (runc could not start
		// the container), no resctrl; network QoS is not configured.
		"privileges": map[string]any{"sysResource": false, "network": false, "bpfAndResctrl": false},
	}
	vb, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, vb, 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := osexec.Command(helm, "template", "strata", filepath.Join(repoRoot(t), "deploy/helm/strata"),
		"--namespace", "kube-system", "-f", vf)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, errb.String())
	}

	apiHost, apiPort, _ := strings.Cut(strings.TrimPrefix(c.URL, "https://"), ":")
	var dsName string
	for _, doc := range strings.Split(out.String(), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("rendered chart: %v\n%s", err, doc)
		}
		if obj == nil {
			continue
		}
		kind, _ := obj["kind"].(string)
		meta, _ := obj["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		if ns == "" {
			ns = "kube-system"
		}
		if kind == "DaemonSet" {
			dsName, _ = meta["name"].(string)
			ctrs := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
			for _, x := range ctrs {
				ct := x.(map[string]any)
				env, _ := ct["env"].([]any)
				ct["env"] = append(env, map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": apiHost},
					map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": apiPort})
			}
		}
		path, err := apiPath(kind, ns)
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Admin.Create(ctx, path, string(body)); err != nil {
			t.Fatalf("create %s %s: %v", kind, meta["name"], err)
		}
	}
	if dsName == "" {
		t.Fatal("the chart rendered no DaemonSet")
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var pods struct {
			Items []struct {
				Metadata struct{ Name string }
				Status   json.RawMessage
			}
		}
		if err := c.Admin.Do(ctx, "GET", "/api/v1/namespaces/kube-system/pods", nil, &pods); err == nil {
			for _, p := range pods.Items {
				t.Logf("pod kube-system/%s status: %s", p.Metadata.Name, p.Status)
			}
		}
		logs, _ := filepath.Glob(filepath.Join(c.Dir, "pods-logs", "kube-system_*", "*", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("--- %s ---\n%s", l, b[max(0, len(b)-4000):])
		}
	})

	// The DaemonSet's pod runs, and the plugin in it answers on the host
	// socket, connected to containerd.
	var st *nriplugin.Status
	start := time.Now()
	waitFor(t, 2*time.Minute, "Strata's DaemonSet pod serving its status, connected and synchronized", func() bool {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := nriplugin.FetchStatus(sctx, "unix:"+sock)
		if err == nil && s.Connected && s.Synced {
			st = s
			return true
		}
		return false
	})
	t.Logf("DaemonSet %s: plugin connected and synchronized %s after the objects were created (cgroup %s)",
		dsName, time.Since(start).Round(100*time.Millisecond), st.Cgroup)

	// Strata manages its own pod too (Burstable: online), and pods created
	// through the API land in their pools.
	g := run(t, c, "default", pod("guaranteed", "{requests: {cpu: 1, memory: 64Mi}, limits: {cpu: 1, memory: 64Mi}}", "sleep 3600", ""))
	be := run(t, c, "default", pod("besteffort", "", "sleep 3600", ""))
	fetch := func() *nriplugin.Status {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, err := nriplugin.FetchStatus(sctx, "unix:"+sock)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		p    *harness.Pod
		pool string
	}{{g, isolation.PoolLatencyCritical}, {be, isolation.PoolBatch}} {
		var m *nriplugin.ContainerStatus
		waitFor(t, 10*time.Second, "plugin lists "+tc.p.Metadata.Name, func() bool { m = member(fetch(), tc.p.ContainerID("c")); return m != nil })
		if m.Pool != tc.pool {
			t.Errorf("pod %s: pool %q, want %q", tc.p.Metadata.Name, m.Pool, tc.pool)
		}
	}
	gc := follow(t, c, g)
	waitFor(t, 5*time.Second, "guaranteed pod on one exclusive CPU", func() bool { return gc.cpus().Size() == 1 })

	// A Burstable pod asking for the batch pool by annotation: the kubelet
	// gives it an oom_score_adj below 1000, Strata's batch profile 1000,
	// written through the host's /proc the chart mounts.
	bb := run(t, c, "default", strings.Replace(pod("burstable-batch", "{requests: {cpu: 100m, memory: 32Mi}}", "sleep 3600", ""),
		"metadata: {name: burstable-batch,", "metadata: {annotations: {strata.io/pool: batch}, name: burstable-batch,", 1))
	bbc := follow(t, c, bb)
	oom := func() string {
		pids, err := bbc.cg.Procs()
		if err != nil || len(pids) == 0 {
			return fmt.Sprintf("no process (%v)", err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pids[0]))
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(string(b))
	}
	waitFor(t, 10*time.Second, "burstable batch member's oom_score_adj 1000 (Strata's batch profile)", func() bool { return oom() == "1000" })

	// The chart's RBAC lets the plugin publish the batch capacity.
	waitFor(t, 60*time.Second, "batch capacity on the node", func() bool {
		n, err := c.Admin.Node(ctx, harness.NodeName)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := n.Status.Allocatable[nriplugin.DefaultBatchResource]
		return ok
	})
	if t.Failed() {
		var b strings.Builder
		fetch().Print(&b)
		t.Log(b.String())
	}
}

func mustJSON(t *testing.T, y []byte) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
