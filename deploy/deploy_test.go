package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/isolation"
)

const chart = "helm/strata"

func helm(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("STRATA_HELM"), "../bin/helm"} {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	if testutil.KernelRequired() {
		t.Fatalf("helm not found ($STRATA_HELM or bin/helm): hack/install-deps.sh builds it")
	}
	t.Skip("helm not found ($STRATA_HELM or bin/helm); run hack/install-deps.sh")
	return ""
}

func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	// No repositories, no cache outside the test.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

// nonDefault exercises every switch of values.yaml away from its default.
const nonDefault = `
image: {repository: registry.local/strata, tag: test, pullPolicy: Always}
config:
  period: 500ms
  pools:
  - {name: lc, priority: 0, band: {low: 0.3, high: 0.5}, rcf: {min: 0.2, max: 1}, exclusiveCores: true, allow: {namespaces: [shop]}}
  - {name: batch, priority: 1, band: {low: 0.5, high: 0.8}, rcf: {min: 0.1, max: 1}, profile: {cpu: {shares: 2, idle: true}}}
  classification: {default: batch, qos: {guaranteed: batch, burstable: batch, bestEffort: batch}}
evictor: cri
listen: 127.0.0.1:9464
logLevel: debug
privileges: {base: [DAC_OVERRIDE], sysResource: false, network: false, bpfAndResctrl: false}
serviceAccount: {create: false, name: strata-sa}
rbac: {create: false}
nodeSelector: {strata.io/enabled: "true"}
tolerations: []
podAnnotations: {team: infra}
`

func TestHelmLint(t *testing.T) {
	for name, values := range map[string]string{"default": "", "non-default": nonDefault} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chart}
			if values != "" {
				f := filepath.Join(t.TempDir(), "values.yaml")
				os.WriteFile(f, []byte(values), 0o644)
				args = append(args, "-f", f)
			}
			if out, err := runHelm(t, args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// objects renders the chart and decodes every document strictly into its
// Kubernetes type: a misspelt or misplaced field fails.
func render(t *testing.T, values string) map[string]any {
	t.Helper()
	args := []string{"template", "strata", chart, "--namespace", "kube-system"}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		os.WriteFile(f, []byte(values), 0o644)
		args = append(args, "-f", f)
	}
	out, err := runHelm(t, args...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	return decode(t, out)
}

func decode(t *testing.T, manifests string) map[string]any {
	t.Helper()
	objs := map[string]any{}
	for _, doc := range strings.Split(manifests, "\n---") {
		if onlyComments(doc) {
			continue
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, doc)
		}
		var obj any
		switch meta.Kind {
		case "DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		default:
			t.Fatalf("unexpected kind %q in the chart", meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s is not a valid object: %v\n%s", meta.Kind, err, doc)
		}
		objs[meta.Kind] = obj
	}
	return objs
}

func TestHelmTemplateDefault(t *testing.T) {
	objs := render(t, "")
	for _, k := range []string{"DaemonSet", "ConfigMap", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} {
		if objs[k] == nil {
			t.Errorf("default render lacks a %s", k)
		}
	}
	ds := objs["DaemonSet"].(*appsv1.DaemonSet)
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	if !spec.HostPID || !spec.HostNetwork {
		t.Errorf("hostPID %v hostNetwork %v: the plugin writes other containers' /proc and the host's qdiscs", spec.HostPID, spec.HostNetwork)
	}
	if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || *sc.Privileged || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("the container must drop ALL capabilities and not be privileged: %+v", c.SecurityContext)
	}
	caps := map[corev1.Capability]bool{}
	for _, cp := range c.SecurityContext.Capabilities.Add {
		caps[cp] = true
	}
	for _, want := range []corev1.Capability{"DAC_OVERRIDE", "SYS_RESOURCE", "NET_ADMIN", "BPF", "SYS_ADMIN"} {
		if !caps[want] {
			t.Errorf("default capabilities %v lack %s", c.SecurityContext.Capabilities.Add, want)
		}
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--listen=unix:/run/strata/strata.sock") {
		t.Errorf("endpoints must default to a unix socket: %v", c.Args)
	}
	cm := objs["ConfigMap"].(*corev1.ConfigMap)
	if _, err := isolation.ParseConfig([]byte(cm.Data["strata.yaml"])); err != nil {
		t.Errorf("the chart's default configuration is refused by Strata: %v", err)
	}
	role := objs["ClusterRole"].(*rbacv1.ClusterRole)
	verbs := map[string]bool{}
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				verbs[res+":"+v] = true
			}
			if res == "*" {
				t.Errorf("RBAC must name resources: %+v", r)
			}
		}
	}
	for _, want := range []string{"pods/eviction:create", "nodes/status:patch", "pods:get", "pods:watch"} {
		if !verbs[want] {
			t.Errorf("ClusterRole lacks %s", want)
		}
	}
	if verbs["pods:delete"] || verbs["nodes:patch"] {
		t.Errorf("ClusterRole grants more than needed: %v", verbs)
	}
}

func TestHelmTemplateNonDefault(t *testing.T) {
	objs := render(t, nonDefault)
	if objs["ServiceAccount"] != nil || objs["ClusterRole"] != nil {
		t.Errorf("serviceAccount.create=false and rbac.create=false still render them")
	}
	ds := objs["DaemonSet"].(*appsv1.DaemonSet)
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	if spec.ServiceAccountName != "strata-sa" || c.Image != "registry.local/strata:test" || spec.NodeSelector["strata.io/enabled"] != "true" {
		t.Errorf("values not applied: sa %q image %q nodeSelector %v", spec.ServiceAccountName, c.Image, spec.NodeSelector)
	}
	if got := c.SecurityContext.Capabilities.Add; len(got) != 1 || got[0] != "DAC_OVERRIDE" {
		t.Errorf("capabilities with every dimension off: %v, want [DAC_OVERRIDE]", got)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--evictor=cri", "--listen=127.0.0.1:9464", "--log-level=debug"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	cfg, err := isolation.ParseConfig([]byte(objs["ConfigMap"].(*corev1.ConfigMap).Data["strata.yaml"]))
	if err != nil {
		t.Fatalf("non-default configuration refused: %v", err)
	}
	if len(cfg.Pools) != 2 || cfg.Period.Duration.String() != "500ms" {
		t.Errorf("configuration not carried through: %+v", cfg)
	}
}

// A routable listen address is refused unless the operator accepts
// unauthenticated endpoints explicitly.
func TestHelmRefusesRemoteListen(t *testing.T) {
	f := filepath.Join(t.TempDir(), "v.yaml")
	os.WriteFile(f, []byte("listen: 0.0.0.0:9464\n"), 0o644)
	out, err := runHelm(t, "template", "strata", chart, "-f", f)
	if err == nil || !strings.Contains(out, "carry no authentication") {
		t.Fatalf("listen 0.0.0.0:9464 rendered (err %v):\n%.300s", err, out)
	}
	os.WriteFile(f, []byte("listen: 0.0.0.0:9464\nallowRemoteListen: true\n"), 0o644)
	if out, err := runHelm(t, "template", "strata", chart, "-f", f); err != nil {
		t.Fatalf("allowRemoteListen=true still refused: %v\n%s", err, out)
	}
}

// deploy/kubernetes/strata.yaml is the chart rendered with its defaults,
// for operators without Helm; it must not drift from the chart.
func TestRenderedManifestsUpToDate(t *testing.T) {
	out, err := runHelm(t, "template", "strata", chart, "--namespace", "kube-system")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Generated: helm template strata deploy/helm/strata --namespace kube-system\n" + out
	got, err := os.ReadFile("kubernetes/strata.yaml")
	if err != nil || string(got) != want {
		t.Fatalf("deploy/kubernetes/strata.yaml is stale (%v): run\n  (echo '# Generated: helm template strata deploy/helm/strata --namespace kube-system'; bin/helm template strata deploy/helm/strata --namespace kube-system) > deploy/kubernetes/strata.yaml", err)
	}
	decode(t, string(got))
}

// The pre-installed plugin's configuration and the systemd unit's
// command line are accepted by Strata.
func TestHostArtefacts(t *testing.T) {
	if _, err := isolation.LoadConfig("nri/50-strata.conf"); err != nil {
		t.Errorf("nri/50-strata.conf: %v", err)
	}
	unit, err := os.ReadFile("systemd/strata.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/strata run", "--listen unix:/run/strata/strata.sock", "Restart=always"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("strata.service lacks %q", want)
		}
	}
}

func onlyComments(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}
