package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the cluster's certificates, generated at start into one directory:
// a CA, the API server's serving certificate, client certificates for the
// admin (system:masters: tests, scheduler, controller manager) and the
// kubelet (system:node:<node>), and the service-account signing key.
type pki struct {
	Dir               string
	CA                string
	APIServerCert     string
	APIServerKey      string
	AdminCert         string
	AdminKey          string
	KubeletCert       string
	KubeletKey        string
	ServiceAccountKey string // RSA private key (PEM), signs tokens
	ServiceAccountPub string
	caCert            *x509.Certificate
	caKey             *ecdsa.PrivateKey
	serial            int64
}

// newPKI generates the cluster's certificates; sans are further addresses
// the API server's certificate must name (the host as a VM guest reaches
// it).
func newPKI(dir, node string, sans ...net.IP) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("k8s harness: pki dir: %w", err)
	}
	p := &pki{Dir: dir}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("k8s harness: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "strata-k8s-test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("k8s harness: CA certificate: %w", err)
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	p.caKey, p.serial = key, 1
	p.CA = filepath.Join(dir, "ca.crt")
	if err := writePEM(p.CA, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	if p.APIServerCert, p.APIServerKey, err = p.issue("apiserver", pkix.Name{CommonName: "kube-apiserver"},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		append([]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)}, sans...), x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if p.AdminCert, p.AdminKey, err = p.issue("admin", pkix.Name{CommonName: "strata-test-admin", Organization: []string{"system:masters"}},
		nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	if p.KubeletCert, p.KubeletKey, err = p.issue("kubelet", pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
		nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("k8s harness: service-account key: %w", err)
	}
	p.ServiceAccountKey, p.ServiceAccountPub = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := writePEM(p.ServiceAccountKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sa)); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.ServiceAccountPub, "PUBLIC KEY", pub); err != nil {
		return nil, err
	}
	return p, nil
}

// serviceIP is the first address of the service range, the "kubernetes"
// service's ClusterIP, which the API server's certificate must name.
const serviceIP = "10.96.0.1"

func (p *pki) issue(name string, subj pkix.Name, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("k8s harness: %s key: %w", name, err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      subj,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(47 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return "", "", fmt.Errorf("k8s harness: %s certificate: %w", name, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(p.Dir, name+".crt"), filepath.Join(p.Dir, name+".key")
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	return certPath, keyPath, writePEM(keyPath, "EC PRIVATE KEY", kder)
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("k8s harness: write %s: %w", path, err)
	}
	return nil
}

// kubeconfig writes a kubeconfig for the API server at url with a client
// certificate.
func writeKubeconfig(path, url, ca, cert, key string) error {
	s := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: strata
  cluster: {server: %q, certificate-authority: %q}
users:
- name: user
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: strata
  context: {cluster: strata, user: user}
current-context: strata
`, url, ca, cert, key)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		return fmt.Errorf("k8s harness: write %s: %w", path, err)
	}
	return nil
}
