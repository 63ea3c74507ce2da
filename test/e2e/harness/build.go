package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/strata-nri/strata/internal/buildcache"
	"github.com/strata-nri/strata/test/e2e/image"
)

// buildTags leave out snapshotters that need C libraries or kernel modules
// this machine does not have; overlayfs is all the tests use.
const buildTags = "no_btrfs no_devmapper no_zfs"

// Binaries are the paths of one containerd version's programs.
type Binaries struct {
	Version    string // e.g. "2.4.2"
	Containerd string
	Shim       string // containerd-shim-runc-v2; its directory goes on containerd's PATH
	Ctr        string
}

// BuildOptions say what to build and where.
type BuildOptions struct {
	// Version is a containerd version with a tool module under
	// test/e2e/containerd/v<Version>, e.g. "2.4.2".
	Version string
	// CacheDir holds the binaries, <CacheDir>/<version>/bin. Default
	// DefaultCacheDir().
	CacheDir string
	// Static builds without cgo (CGO_ENABLED=0), for machines without
	// shared libraries such as the test/vm guest, into
	// <CacheDir>/<version>-static/bin. The harness's own environments
	// (New) use static builds too, so the host and the guest share one.
	Static bool
	// Logf reports progress (build start and duration); nil is quiet.
	Logf func(format string, args ...any)
}

// DefaultCacheDir is $STRATA_E2E_CACHE or /var/cache/strata-e2e.
func DefaultCacheDir() string {
	if d := os.Getenv("STRATA_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/strata-e2e"
}

// SourceDir is the test/e2e directory of the Strata checkout: from
// $STRATA_E2E_SRC, else from where this file was compiled, else found by
// walking up from the working directory.
func SourceDir() (string, error) {
	if d := os.Getenv("STRATA_E2E_SRC"); d != "" {
		return d, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Dir(filepath.Dir(file))
		if _, err := os.Stat(filepath.Join(d, "containerd")); err == nil {
			return d, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: find test/e2e: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "test", "e2e")
		if _, err := os.Stat(filepath.Join(cand, "containerd")); err == nil {
			return cand, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("harness: no test/e2e/containerd above %s; set STRATA_E2E_SRC", wd)
		}
	}
}

// Versions lists the containerd versions that have a tool module, newest
// first (e.g. ["2.4.2", "2.1.4"]).
func Versions() ([]string, error) {
	src, err := SourceDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(src, "containerd"))
	if err != nil {
		return nil, fmt.Errorf("harness: list tool modules: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "v") {
			out = append(out, strings.TrimPrefix(e.Name(), "v"))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, nil
}

// BuildContainerd builds containerd, containerd-shim-runc-v2 and ctr of one
// version into the cache, in one `go build` so they share compiled
// packages. It does nothing when the binaries exist and were built from the
// same tool module (go.mod, go.sum, main packages), Go version and tags. A
// file lock serialises concurrent builds of the same version.
func BuildContainerd(ctx context.Context, opts BuildOptions) (Binaries, error) {
	version := strings.TrimPrefix(opts.Version, "v")
	if d := prebuiltDir(); d != "" {
		return prebuiltContainerd(d, version)
	}
	src, err := SourceDir()
	if err != nil {
		return Binaries{}, err
	}
	modDir := filepath.Join(src, "containerd", "v"+version)
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		have, _ := Versions()
		return Binaries{}, fmt.Errorf("harness: containerd version %q has no tool module %s (have %v): %w", opts.Version, modDir, have, err)
	}
	cache := opts.CacheDir
	if cache == "" {
		cache = DefaultCacheDir()
	}
	m := buildcache.Module{
		Name:     "containerd v" + version,
		Dir:      modDir,
		Entry:    filepath.Join(cache, version),
		Binaries: []string{"containerd", "containerd-shim-runc-v2", "ctr"},
		Tags:     buildTags,
		ColdHint: "cold build takes ~2 min",
		Logf:     opts.Logf,
	}
	if opts.Static {
		m.Name += " (static)"
		m.Entry += "-static"
		m.Env = []string{"CGO_ENABLED=0"}
	}
	if err := buildcache.BuildModule(ctx, m); err != nil {
		return Binaries{}, err
	}
	return Binaries{
		Version:    version,
		Containerd: m.Bin("containerd"),
		Shim:       m.Bin("containerd-shim-runc-v2"),
		Ctr:        m.Bin("ctr"),
	}, nil
}

// ImageRef is the reference of the test image: a static pause program at
// /pause (its default command, and the pinned sandbox image) and
// busybox-static at /bin/busybox with a symlink per applet in /bin.
const ImageRef = "strata.local/e2e/base:1"

// BuildImage builds the pause program (statically, CGO_ENABLED=0) and packs
// it with the host's busybox-static into an image tarball in
// <cacheDir>/image, returning the tarball's path. The tarball is named by
// its content hash, so it is rebuilt only when pause or busybox change.
func BuildImage(ctx context.Context, cacheDir string, logFn func(string, ...any)) (string, error) {
	if d := prebuiltDir(); d != "" {
		return prebuiltFile(d, "image.tar", "test image image.tar")
	}
	src, err := SourceDir()
	if err != nil {
		return "", err
	}
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	dir := filepath.Join(cacheDir, "image")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("harness: image cache: %w", err)
	}
	unlock, err := buildcache.Lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	busybox, err := findBusybox()
	if err != nil {
		return "", err
	}
	pause := filepath.Join(dir, "pause")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", pause, "./pause")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: build pause in %s: %w\n%s", src, err, out)
	}
	applets, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("harness: %s --list: %w", busybox, err)
	}
	files := []image.File{
		{Path: "/pause", Source: pause},
		{Path: "/bin/busybox", Source: busybox},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
		{Path: "/etc", Dir: true},
		{Path: "/proc", Dir: true},
		{Path: "/sys", Dir: true},
		{Path: "/dev", Dir: true},
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" {
			files = append(files, image.File{Path: "/bin/" + a, Linkname: "busybox"})
		}
	}
	opts := image.Options{Ref: ImageRef, Files: files, Cmd: []string{"/pause"}, Env: []string{"PATH=/bin"}}
	hash, err := image.ContentHash(opts)
	if err != nil {
		return "", err
	}
	tarball := filepath.Join(dir, "base-"+hash[:16]+".tar")
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil
	}
	f, err := os.CreateTemp(dir, "base-*.tmp")
	if err != nil {
		return "", fmt.Errorf("harness: image tarball: %w", err)
	}
	defer os.Remove(f.Name())
	if err := image.WriteArchive(f, opts); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("harness: write %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), tarball); err != nil {
		return "", fmt.Errorf("harness: install %s: %w", tarball, err)
	}
	logf(logFn, "packed test image %s into %s", ImageRef, tarball)
	return tarball, nil
}

func findBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("harness: busybox not found in /bin or /usr/bin: install the apt package busybox-static (see test/e2e/apt-packages.txt)")
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}

// GoBuild builds a main package of the Strata module (pkg relative to the
// module root, e.g. "./test/e2e/noopplugin" or "./nri-plugin/cmd/strata")
// into outDir and returns the binary's path. Plugins are built this way so
// tests always run the plugin of the working tree.
func GoBuild(ctx context.Context, pkg, outDir string) (string, error) {
	if d := prebuiltDir(); d != "" {
		return prebuiltFile(d, filepath.Join("bin", filepath.Base(pkg)), "binary of "+pkg)
	}
	src, err := SourceDir()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(filepath.Dir(src))
	out := filepath.Join(outDir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: go build %s in %s: %w\n%s", pkg, root, err, b)
	}
	return out, nil
}
