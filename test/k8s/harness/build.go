package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	e2e "github.com/strata-nri/strata/test/e2e/harness"
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
	dir := filepath.Join(cache, version)
	bin := filepath.Join(dir, "bin")
	bins := Binaries{
		Version:           version,
		Etcd:              filepath.Join(bin, "etcd"),
		APIServer:         filepath.Join(bin, "kube-apiserver"),
		ControllerManager: filepath.Join(bin, "kube-controller-manager"),
		Scheduler:         filepath.Join(bin, "kube-scheduler"),
		Kubelet:           filepath.Join(bin, "kubelet"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("k8s harness: cache dir: %w", err)
	}
	unlock, err := e2e.LockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()

	flags := ldflags(version)
	hash, err := e2e.HashTree(modDir, runtime.Version(), flags)
	if err != nil {
		return Binaries{}, err
	}
	stamp := filepath.Join(dir, "source.sha256")
	if old, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(old)) == hash &&
		e2e.AllExist(bins.Etcd, bins.APIServer, bins.ControllerManager, bins.Scheduler, bins.Kubelet) {
		return bins, nil
	}
	logf(opts.Logf, "building Kubernetes v%s from %s into %s (a cold build takes 15-20 min on 2 CPUs)", version, modDir, bin)
	start := time.Now()
	tmp := bin + ".tmp"
	_ = os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "nice", "-n", "19", "go", "build", "-trimpath", "-ldflags", flags, "-o", tmp+"/", "./cmd/...")
	cmd.Dir = modDir
	// -mod=mod resolves from the committed go.mod/go.sum, which are
	// complete: a build changes nothing in the tree.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Binaries{}, fmt.Errorf("k8s harness: build Kubernetes v%s in %s: %w\n%s", version, modDir, err, out.String())
	}
	_ = os.RemoveAll(bin)
	if err := os.Rename(tmp, bin); err != nil {
		return Binaries{}, fmt.Errorf("k8s harness: install Kubernetes v%s: %w", version, err)
	}
	if err := os.WriteFile(stamp, []byte(hash+"\n"), 0o644); err != nil {
		return Binaries{}, fmt.Errorf("k8s harness: write %s: %w", stamp, err)
	}
	logf(opts.Logf, "built Kubernetes v%s in %s", version, time.Since(start).Round(time.Second))
	return bins, nil
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
