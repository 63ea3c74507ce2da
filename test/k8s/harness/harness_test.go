package harness

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"sigs.k8s.io/yaml"

	e2e "github.com/strata-nri/strata/test/e2e/harness"
)

// The certificates chain to the CA with the usages the components check:
// the API server's serves 127.0.0.1 and the service IP, the kubelet's
// client certificate names its node in the system:nodes group.
func TestPKI(t *testing.T) {
	p, err := newPKI(t.TempDir(), NodeName)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatal("CA file holds no certificate")
	}
	leaf := func(cert, key string) *x509.Certificate {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	srv := leaf(p.APIServerCert, p.APIServerKey)
	for _, host := range []string{"127.0.0.1", serviceIP, "kubernetes.default.svc"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("API server certificate for %s: %v", host, err)
		}
	}
	kl := leaf(p.KubeletCert, p.KubeletKey)
	if _, err := kl.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("kubelet client certificate: %v", err)
	}
	if kl.Subject.CommonName != "system:node:"+NodeName || len(kl.Subject.Organization) != 1 || kl.Subject.Organization[0] != "system:nodes" {
		t.Errorf("kubelet certificate subject %v, want system:node:%s in system:nodes", kl.Subject, NodeName)
	}
	if ad := leaf(p.AdminCert, p.AdminKey); ad.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin certificate subject %v, want group system:masters", ad.Subject)
	}
}

// The kubelet configuration is YAML with the fields that make a cgroup v1,
// 2-CPU test node work.
func TestKubeletConfig(t *testing.T) {
	s := kubeletConfig(e2e.State{CgroupRoot: "/strata-e2e-x", Socket: "/tmp/x/c.sock"}, &pki{CA: "/ca.crt"}, 10250, "/tmp/x/k8s")
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	for k, want := range map[string]any{"failCgroupV1": false, "cgroupDriver": "cgroupfs", "cgroupRoot": "/strata-e2e-x",
		"containerRuntimeEndpoint": "unix:///tmp/x/c.sock", "imageGCHighThresholdPercent": float64(100)} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if _, ok := m["kubeReserved"]; ok {
		t.Error("kubeReserved set: the 2-CPU node must offer both CPUs")
	}
}

func TestLdflags(t *testing.T) {
	if got, want := ldflags("1.37.2"), "-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"; got != want {
		t.Errorf("ldflags = %q, want %q", got, want)
	}
}
