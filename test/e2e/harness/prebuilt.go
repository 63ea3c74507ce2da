package harness

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-nri/strata/internal/buildcache"
)

// PrebuiltEnv names a directory of binaries built elsewhere, for machines
// that have no Go toolchain and no source tree: the cgroup v2 guest of
// test/vm runs the e2e tests this way. When it is set, BuildContainerd,
// BuildImage and GoBuild build nothing and return what the directory holds:
//
//	<dir>/containerd/<version>/{containerd,containerd-shim-runc-v2,ctr}
//	<dir>/image.tar             the test image (BuildImage's tarball)
//	<dir>/bin/<name>            main packages, by base name (GoBuild)
//
// PackPrebuilt lists the files that make up such a directory.
const PrebuiltEnv = "STRATA_E2E_PREBUILT"

func prebuiltDir() string { return os.Getenv(PrebuiltEnv) }

func prebuiltContainerd(dir, version string) (Binaries, error) {
	bin := filepath.Join(dir, "containerd", version)
	bins := Binaries{
		Version:    version,
		Containerd: filepath.Join(bin, "containerd"),
		Shim:       filepath.Join(bin, "containerd-shim-runc-v2"),
		Ctr:        filepath.Join(bin, "ctr"),
	}
	if !buildcache.AllExist(bins.Containerd, bins.Shim, bins.Ctr) {
		have, _ := filepath.Glob(filepath.Join(dir, "containerd", "*"))
		return Binaries{}, fmt.Errorf("harness: %s=%s holds no containerd v%s (want %s/{containerd,containerd-shim-runc-v2,ctr}; have %v)",
			PrebuiltEnv, dir, version, bin, have)
	}
	return bins, nil
}

func prebuiltFile(dir, rel, what string) (string, error) {
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("harness: %s=%s: no %s: %w", PrebuiltEnv, dir, what, err)
	}
	return p, nil
}

// PackPrebuilt maps the paths of a prebuilt directory (relative to it, as
// PrebuiltEnv expects them) to the host files to put there: the given
// containerd builds, the image tarball and the main-package binaries
// (placed by base name).
func PackPrebuilt(containerd []Binaries, image string, bins ...string) map[string]string {
	m := map[string]string{"image.tar": image}
	for _, b := range containerd {
		for _, p := range []string{b.Containerd, b.Shim, b.Ctr} {
			m[filepath.Join("containerd", b.Version, filepath.Base(p))] = p
		}
	}
	for _, b := range bins {
		m[filepath.Join("bin", filepath.Base(b))] = b
	}
	return m
}
