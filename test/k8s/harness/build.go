package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/strata-nri/strata/internal/buildcache"
)

// DefaultVersion is the Kubernetes release the tests run; it has a tool
// module under test/k8s/kubernetes/v<DefaultVersion>.
const DefaultVersion = "1.37.2"

// Binaries are the paths of one Kubernetes version's programs.
type Binaries struct {
	Version           string
	Etcd              string
	APIServer         string
	ControllerManager string
	Scheduler         string
	Kubelet           string
}

// BuildOptions say what to build and where.
type BuildOptions struct {
	// Version has a tool module under test/k8s/kubernetes/v<Version>.
	// Default DefaultVersion.
	Version string
	// CacheDir holds the binaries, <CacheDir>/<version>/bin. Default
	// DefaultCacheDir().
	CacheDir string
	// Logf reports progress; nil is quiet.
	Logf func(format string, args ...any)
}

// DefaultCacheDir is $STRATA_K8S_CACHE or /var/cache/strata-k8s.
func DefaultCacheDir() string {
	if d := os.Getenv("STRATA_K8S_CACHE"); d != "" {
		return d
	}
	return "/var/cache/strata-k8s"
}

// SourceDir is the test/k8s directory of the Strata checkout: from where
// this file was compiled, else found by walking up from the working
// directory.
func SourceDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Dir(filepath.Dir(file))
		if _, err := os.Stat(filepath.Join(d, "kubernetes")); err == nil {
			return d, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("k8s harness: find test/k8s: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "test", "k8s")
		if _, err := os.Stat(filepath.Join(cand, "kubernetes")); err == nil {
			return cand, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("k8s harness: no test/k8s/kubernetes above %s", wd)
		}
	}
}

// ldflags stamp the version: without it the binaries report v0.0.0-master,
// and the kubelet's and API server's version skew checks see nonsense.
func ldflags(version string) string {
	major, minor, _ := strings.Cut(version, ".")
	minor, _, _ = strings.Cut(minor, ".")
	const v = "k8s.io/component-base/version."
	return fmt.Sprintf("-X %sgitVersion=v%s -X %sgitMajor=%s -X %sgitMinor=%s", v, version, v, major, v, minor)
}

// Build builds etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and the kubelet of one version into the cache, in one `go
// build` so they share compiled packages. It does nothing when the
// binaries exist and were built from the same tool module, Go version and
// flags. A file lock serialises concurrent builds. A cold build takes
// 15-20 minutes of two CPUs; it runs at the lowest CPU priority.
func Build(ctx context.Context, opts BuildOptions) (Binaries, error) {
	version := strings.TrimPrefix(opts.Version, "v")
	if version == "" {
		version = DefaultVersion
	}
	src, err := SourceDir()
	if err != nil {
		return Binaries{}, err
	}
	modDir := filepath.Join(src, "kubernetes", "v"+version)
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		return Binaries{}, fmt.Errorf("k8s harness: Kubernetes version %q has no tool module %s: %w", version, modDir, err)
	}
	cache := opts.CacheDir
	if cache == "" {
		cache = DefaultCacheDir()
	}
	m := buildcache.Module{
		Name:     "Kubernetes v" + version,
		Dir:      modDir,
		Entry:    filepath.Join(cache, version),
		Binaries: []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"},
		LDFlags:  ldflags(version),
		Nice:     19,
		ColdHint: "a cold build takes 15-20 min on 2 CPUs",
		Logf:     opts.Logf,
	}
	if err := buildcache.BuildModule(ctx, m); err != nil {
		return Binaries{}, err
	}
	return Binaries{
		Version:           version,
		Etcd:              m.Bin("etcd"),
		APIServer:         m.Bin("kube-apiserver"),
		ControllerManager: m.Bin("kube-controller-manager"),
		Scheduler:         m.Bin("kube-scheduler"),
		Kubelet:           m.Bin("kubelet"),
	}, nil
}
